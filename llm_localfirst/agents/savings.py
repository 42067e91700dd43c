"""The savings ledger: tokens processed locally, and what they would have cost in the cloud.

This module owns :class:`SavingsReport` and :func:`savings_report`, which the
Worker (``Worker.savings()``), the MCP resource ``audit://savings`` and the proxy's
admin API all use, so they always agree.

What it counts, precisely:

- **Tokens processed locally** are the ``tokens_in`` and ``tokens_out`` of every
  audit row whose destination was local (``locality = local``), from *all faces*
  by default (Python, CLI, MCP, proxy and the worker): any token that ran on the
  user's hardware is a token not bought from a cloud API. Pass ``face="worker"``
  for the worker's share alone; the report also breaks totals down by face.
- **The reference cloud model** prices those tokens: the first cloud destination
  with a price in the policy's ``default`` target (its ``to`` arms, then its
  ``fallback``), which is where ordinary work would have gone without a local
  model; failing that, the most expensive priced cloud destination (an upper
  bound); failing that, none, and the cost is reported as unknown (``None``).
- **Local cost** uses the local destinations' own ``price`` when the policy gives
  one (electricity, a rented GPU); usually zero.

- **Cloud tokens a director never spent** (:class:`DelegationSavings`), from the
  row each delegation writes (tag ``delegation``): with ``paths`` or
  ``documents``, the whole source (the director never read it nor wrote it into a
  tool call); with inline ``source``, only what the worker produced (the director
  already held the text and paid to write it into the call). Priced at the
  reference destination's input rate, a lower bound.

Prices are the policy's ``price`` table (USD per million tokens), so editing the
policy edits the ledger. Rows read are those durable in the shared audit store,
so the ledger covers every process on the machine that writes to it.

It must never write to the audit store or call a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..audit.record import FACES
from ..audit.store import MAX_LIMIT, AuditFilter, AuditStore, TokenTotals
from ..policy import Policy
from ..registry import Destination

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["DelegationSavings", "SavingsReport", "reference_destination", "savings_report"]

_PER = 1_000_000


@dataclass(frozen=True, slots=True)
class DelegationSavings:
    """Cloud tokens delegation kept away from the director, by how the source was given.

    Attributes:
        by_reference: Delegations that named ``paths`` or ``documents``.
        inline: Delegations given the text in ``source``.
        files: Files read by reference.
        bytes_read: Their bytes.
        source_tokens: Estimated tokens of the sources read by reference (saved whole).
        answer_tokens: Estimated tokens the worker produced for inline sources (saved).
    """

    by_reference: int = 0
    inline: int = 0
    files: int = 0
    bytes_read: int = 0
    source_tokens: int = 0
    answer_tokens: int = 0

    @property
    def tokens_saved(self) -> int:
        """Cloud tokens the director never had to read or write."""
        return self.source_tokens + self.answer_tokens


@dataclass(frozen=True, slots=True)
class SavingsReport:
    """Local token totals and their cloud-equivalent cost.

    Attributes:
        requests: Audit rows counted (local destination).
        tokens_in: Input tokens processed locally.
        tokens_out: Output tokens generated locally.
        reference: The cloud destination used for pricing, if any.
        reference_model: Its model id.
        price_in: Its USD price per million input tokens.
        price_out: Its USD price per million output tokens.
        cloud_cost_usd: What the local tokens would have cost on the reference
            destination; ``None`` when no cloud destination has a price.
        local_cost_usd: What the local destinations' own prices make them cost.
        saved_usd: ``cloud_cost_usd - local_cost_usd``; ``None`` when unknown.
        face: The face the totals were limited to (``None`` = all faces).
        since: Inclusive lower time bound, if any (ISO-8601 UTC).
        until: Exclusive upper time bound, if any.
        by_destination: Totals per local destination.
        by_face: Totals per face (empty when limited to one face).
    """

    requests: int
    tokens_in: int
    tokens_out: int
    reference: str | None
    reference_model: str | None
    price_in: float | None
    price_out: float | None
    cloud_cost_usd: float | None
    local_cost_usd: float
    saved_usd: float | None
    face: str | None = None
    since: str | None = None
    until: str | None = None
    by_destination: Mapping[str, TokenTotals] = field(default_factory=dict)
    by_face: Mapping[str, TokenTotals] = field(default_factory=dict)
    delegation: DelegationSavings = DelegationSavings()

    @property
    def tokens(self) -> int:
        """Input plus output tokens processed locally."""
        return self.tokens_in + self.tokens_out

    def to_dict(self) -> dict[str, object]:
        """The JSON-friendly form (MCP ``audit://savings``, the admin API)."""

        def totals(t: TokenTotals) -> dict[str, int]:
            return {"requests": t.requests, "tokens_in": t.tokens_in, "tokens_out": t.tokens_out}

        return {
            "scope": {
                "face": self.face or "all",
                "locality": "local",
                "since": self.since,
                "until": self.until,
            },
            "requests": self.requests,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens": self.tokens,
            "reference": None
            if self.reference is None
            else {
                "destination": self.reference,
                "model": self.reference_model,
                "usd_per_million_input": self.price_in,
                "usd_per_million_output": self.price_out,
            },
            "cloud_cost_usd": self.cloud_cost_usd,
            "local_cost_usd": self.local_cost_usd,
            "saved_usd": self.saved_usd,
            "by_destination": {k: totals(v) for k, v in self.by_destination.items()},
            "by_face": {k: totals(v) for k, v in self.by_face.items()},
            "delegation": self.delegation_dict(),
        }

    def delegation_dict(self) -> dict[str, object]:
        """The director-side ledger: cloud tokens delegation saved, source vs paths."""
        d = self.delegation
        usd = None if self.price_in is None else round(d.tokens_saved * self.price_in / _PER, 6)
        return {
            "cloud_tokens_saved": d.tokens_saved,
            "cloud_tokens_saved_usd": usd,
            "by_reference": {
                "delegations": d.by_reference,
                "files": d.files,
                "bytes_read": d.bytes_read,
                "source_tokens_saved": d.source_tokens,
            },
            "inline": {"delegations": d.inline, "answer_tokens_saved": d.answer_tokens},
            "note": (
                "paths/documents: the whole source never reached the director; inline "
                "source: only the worker's answer counts, the director already held the "
                "text. Priced at the reference input rate (a lower bound)."
            ),
        }


def reference_destination(policy: Policy) -> Destination | None:
    """The cloud destination whose prices value local tokens (see the module docstring)."""
    dests = policy.destinations
    for name in [a.destination for a in policy.default.to] + list(policy.default.fallback):
        dest = dests.get(name)
        if dest is not None and not dest.is_local and dest.price is not None:
            return dest
    priced = [d for d in dests.values() if not d.is_local and d.price is not None]
    if not priced:
        return None
    return max(priced, key=lambda d: (d.price.input + d.price.output) if d.price else 0.0)


def _cost(tokens_in: int, tokens_out: int, dest: Destination | None) -> float | None:
    if dest is None or dest.price is None:
        return None
    return round((tokens_in * dest.price.input + tokens_out * dest.price.output) / _PER, 6)


def savings_report(
    router: Router,
    *,
    face: str | None = None,
    since: str | None = None,
    until: str | None = None,
    flush: bool = True,
) -> SavingsReport:
    """Build the ledger from the router's audit store and its current policy.

    Blocking (it reads the store and may wait for pending audit rows): call it from
    a thread, not an event loop.

    Args:
        router: The router whose audit store and policy are read.
        face: Count only this face (``worker``, ``mcp``, ...); ``None`` counts all.
        since: Inclusive lower bound (ISO-8601 date or date-time with offset).
        until: Exclusive upper bound.
        flush: Wait (up to 10 s) for this process's pending audit rows first.

    Raises:
        ValueError: an unknown face or a malformed time bound.
    """
    if flush:
        router.flush(10.0)
    store = router.audit
    base = AuditFilter(face=face, locality="local", since=since, until=until)
    totals = store.token_totals(base)
    by_face: dict[str, TokenTotals] = {}
    if face is None:
        for name in sorted(FACES):
            part = store.token_totals(
                AuditFilter(face=name, locality="local", since=base.since, until=base.until)
            )
            if part.requests:
                by_face[name] = TokenTotals(part.requests, part.tokens_in, part.tokens_out)
    delegation = (
        _delegations(store, base.since, base.until)
        if face in (None, "worker")
        else DelegationSavings()
    )
    policy = router.policy
    ref = reference_destination(policy)
    cloud = _cost(totals.tokens_in, totals.tokens_out, ref)
    local = 0.0
    for name, part in totals.by_destination.items():
        local += _cost(part.tokens_in, part.tokens_out, policy.destinations.get(name)) or 0.0
    local = round(local, 6)
    return SavingsReport(
        requests=totals.requests,
        tokens_in=totals.tokens_in,
        tokens_out=totals.tokens_out,
        reference=ref.name if ref else None,
        reference_model=ref.model if ref else None,
        price_in=ref.price.input if ref and ref.price else None,
        price_out=ref.price.output if ref and ref.price else None,
        cloud_cost_usd=cloud,
        local_cost_usd=local,
        saved_usd=None if cloud is None else round(cloud - local, 6),
        face=face,
        since=base.since,
        until=base.until,
        by_destination=dict(totals.by_destination),
        by_face=by_face,
        delegation=delegation,
    )


def _delegations(store: AuditStore, since: str | None, until: str | None) -> DelegationSavings:
    """Add up the rows of successful delegations (tag ``delegation``), page by page."""
    counts = {
        "by_reference": 0,
        "inline": 0,
        "files": 0,
        "bytes_read": 0,
        "source_tokens": 0,
        "answer_tokens": 0,
    }
    offset = 0
    while True:
        rows = store.query(
            AuditFilter(
                face="worker",
                outcome="ok",
                since=since,
                until=until,
                limit=MAX_LIMIT,
                offset=offset,
            )
        )
        for row in rows:
            if "delegation" not in row.tags:
                continue
            meta = row.metadata
            if meta.get("delegation") == "paths":
                counts["by_reference"] += 1
                counts["files"] += _int(meta.get("files"))
                counts["bytes_read"] += _int(meta.get("bytes_read"))
                counts["source_tokens"] += _int(meta.get("saved_tokens"))
            else:
                counts["inline"] += 1
                counts["answer_tokens"] += _int(meta.get("saved_tokens"))
        if len(rows) < MAX_LIMIT:
            return DelegationSavings(**counts)
        offset += MAX_LIMIT


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
