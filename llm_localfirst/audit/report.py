"""`build_report`: where requests went in a time window, and whether that is proven.

This module owns the compliance report behind ``llm-localfirst audit report`` and
``GET /admin/report``: counts by face x destination locality x sensitivity reason,
the sensitive requests that reached a non-local destination (by the row's
locality or any attempt's), intents without a decision row ("sent, outcome
unknown"), and one plain sentence, stated only from a verified chain. It only
reads the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from llm_localfirst.audit.chain import VerifyResult
from llm_localfirst.audit.intent import AuditIntent
from llm_localfirst.audit.store import AuditFilter, AuditStore
from llm_localfirst.audit.verify import verify_store

__all__ = ["AuditReport", "build_report"]

#: Outcomes where nothing was sent upstream (a dry run, a refusal before dispatch).
_NOT_SENT = frozenset({"dry_run"})
_MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The report over one window. `to_dict` is the JSON of the CLI and admin API.

    Attributes:
        since: Inclusive start (canonical ISO-8601 UTC), or ``None``.
        until: Exclusive end, or ``None``.
        verification: The chain check of the whole store.
        counts: ``(face, locality, reason) -> requests``; locality ``none`` when
            nothing was chosen, reason ``none`` when not sensitive (a request with
            several reasons counts under each).
        total: Decision rows in the window.
        sensitive: Sensitive decision rows in the window.
        violations: Ids of sensitive requests that reached a non-local destination.
        unknown: Intents with no decision row (sent, outcome unknown).
    """

    since: str | None
    until: str | None
    location: str
    verification: VerifyResult
    counts: Mapping[tuple[str, str, str], int]
    total: int
    sensitive: int
    violations: tuple[str, ...]
    unknown: tuple[AuditIntent, ...] = field(default=())

    @property
    def sensitive_reached_non_local(self) -> bool:
        """Whether any sensitive request reached a non-local destination."""
        return bool(self.violations) or any(
            i.sensitive and i.locality != "local" for i in self.unknown
        )

    @property
    def ok(self) -> bool:
        """Verified chain and no sensitive request reached a non-local destination."""
        return self.verification.ok and not self.sensitive_reached_non_local

    @property
    def statement(self) -> str:
        """One sentence a compliance reviewer can quote."""
        window = _window(self.since, self.until)
        if not self.verification.ok:
            first = self.verification.problems[0]
            return (
                f"Cannot be proven: the audit chain is broken ({first}); "
                f"{len(self.violations)} sensitive request(s) {window} are recorded as "
                "having reached a non-local destination."
            )
        unknown = (
            f" {len(self.unknown)} request(s) were sent with outcome unknown "
            "(intent without a decision row)."
            if self.unknown
            else ""
        )
        if self.sensitive_reached_non_local:
            count = len(self.violations) + sum(
                1 for i in self.unknown if i.sensitive and i.locality != "local"
            )
            return (
                f"{count} sensitive request(s) {window} reached a non-local destination "
                f"(verified chain, {self.total} requests).{unknown}"
            )
        return (
            f"No sensitive request {window} reached a non-local destination "
            f"({self.sensitive} sensitive of {self.total} requests; "
            f"chain verified over {self.verification.rows} rows in "
            f"{self.verification.chains} chain(s)).{unknown}"
        )

    def to_text(self) -> str:
        """The human form printed by ``audit report``: the statement, then the counts."""
        lines = [
            self.statement,
            "",
            f"{'face':<8} {'locality':<9} {'sensitivity reason':<32} {'requests':>9}",
        ]
        for (face, locality, reason), n in sorted(self.counts.items()):
            lines.append(f"{face:<8} {locality:<9} {reason:<32} {n:>9}")
        if not self.counts:
            lines.append("(no requests in this window)")
        if self.violations:
            lines += ["", "sensitive requests that reached a non-local destination:"]
            lines += [f"  {rid}" for rid in self.violations[:_MAX_LISTED]]
        if self.unknown:
            lines += ["", "sent, outcome unknown (intent without a decision row):"]
            lines += [
                f"  {i.id} attempt {i.attempt} at {i.ts} to {i.locality}:{i.destination}"
                f"{' (sensitive)' if i.sensitive else ''}"
                for i in self.unknown[:_MAX_LISTED]
            ]
        if not self.verification.ok:
            lines += ["", "chain problems:"] + [f"  {p}" for p in self.verification.problems]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        return {
            "since": self.since,
            "until": self.until,
            "store": self.location,
            "chain_verified": self.verification.ok,
            "verification": self.verification.to_dict(),
            "total": self.total,
            "sensitive": self.sensitive,
            "sensitive_reached_non_local": self.sensitive_reached_non_local,
            "violations": list(self.violations[:_MAX_LISTED]),
            "violation_count": len(self.violations),
            "sent_outcome_unknown": [i.to_dict() for i in self.unknown[:_MAX_LISTED]],
            "sent_outcome_unknown_count": len(self.unknown),
            "counts": [
                {"face": face, "locality": locality, "reason": reason, "requests": n}
                for (face, locality, reason), n in sorted(self.counts.items())
            ],
            "ok": self.ok,
            "statement": self.statement,
        }


def build_report(
    store: AuditStore, *, since: str | None = None, until: str | None = None
) -> AuditReport:
    """Count the window's requests and check, on a verified chain, where sensitive ones went.

    The whole store is verified, not just the window: a row moved out of the
    window would change its hash, and a deletion anywhere breaks its chain.

    Raises:
        ValueError: ``since`` or ``until`` is not ISO-8601, or ``since >= until``.
    """
    flt = AuditFilter(since=since, until=until, limit=1)
    verification = verify_store(store)
    counts: dict[tuple[str, str, str], int] = {}
    total = sensitive = 0
    for group in store.report_groups(flt):
        total += group.requests
        reasons: list[str] = ["none"]
        if group.sensitive:
            sensitive += group.requests
            reasons = [str(r) for r in json.loads(group.reasons_json)] or ["declared"]
        for reason in reasons:
            key = (group.face, group.locality or "none", reason)
            counts[key] = counts.get(key, 0) + group.requests
    violations = sorted(
        row.id
        for row in store.sensitive_rows(flt)
        if _reached_non_local(row.outcome, row.locality, row.attempts_json)
    )
    return AuditReport(
        since=flt.since,
        until=flt.until,
        location=store.location,
        verification=verification,
        counts=counts,
        total=total,
        sensitive=sensitive,
        violations=tuple(violations),
        unknown=tuple(store.open_intents(flt)),
    )


def _reached_non_local(outcome: str, locality: str | None, attempts_json: str) -> bool:
    if outcome in _NOT_SENT:
        return False
    if locality not in (None, "local") and outcome != "refused":
        return True
    try:
        attempts = json.loads(attempts_json)
    except json.JSONDecodeError:
        return True  # unreadable evidence cannot prove the request stayed local
    return any(isinstance(a, dict) and a.get("locality") not in (None, "local") for a in attempts)


def _window(since: str | None, until: str | None) -> str:
    if since and until:
        return f"between {since} and {until}"
    if since:
        return f"since {since}"
    if until:
        return f"before {until}"
    return "in the whole log"
