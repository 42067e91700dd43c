"""The local worker: bulk text work on the user's own model, never anywhere else.

One :class:`Worker` is the single implementation behind the MCP
``delegate_to_worker`` tool and both agent adapters. This module owns:

- the locality contract: a worker is bound to local destinations only; it refuses
  a non-local one (``PrivacyViolation``) when it is built and when a run starts.
  Every model call is a ``local_only`` request naming the worker's destinations:
  the policy keeps only local candidates (a destination reloaded to the cloud is
  refused), the router fails over among them, and the egress guard re-checks at
  send time. It never falls back to the cloud; when none of its destinations
  answers it raises ``LocalUnavailable``;
- what a run reads (:mod:`.sources`): ``paths`` inside the allowed roots and
  registered ``documents``, read locally so the director never holds the text;
- the outbound gate (:mod:`.gate`) on the answer before any director sees it;
- the public surface: argument validation (bad input is audited as rejected),
  ``arun``/``run``, the ``on_delegate`` hook, ``savings()``, and what the worker has
  learned about its destinations.

A run itself (templates, parallel map-reduce over long sources, JSON and label
reading, progress) is :class:`~llm_localfirst.agents.mapreduce.Run`.

Sources are planned with the documented estimate of four characters per token
against the destination's ``context_window``. Tokenizers differ, so a run learns
from what a destination reports (``prompt_tokens``, context-length refusals) and
re-plans; what it learns only ever makes later plans smaller.

Audit: every model call is one router row (face ``worker``, endpoint ``worker``,
tags ``worker`` and ``task:<kind>``), sensitive only when its text is. Each
delegation adds one row for the whole run (tag ``delegation``, no locality and no
tokens, so ledgers do not count it twice) whose metadata records: how many files
and bytes were read; where from, as ``r<root index>:<16 hex of SHA-256 of the path
relative to the root>`` (``doc:<digest of the name>`` for documents), never the
path itself, because a file name can be as private as the file and the audit log
holds no prompt text; the outbound mode and findings as ``kind=count``; and the
token figures the savings ledger reads (``source_tokens``, ``answer_tokens``,
``saved_tokens``).

It must never choose a cloud destination, never send text anywhere but through
``router.lifecycle.call`` (the egress guard), and never log source or output text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
)
from ..request import Request
from .chunking import CHARS_PER_TOKEN, estimate_tokens, join_files
from .gate import OutboundRefused, gate
from .mapreduce import Progress, Run
from .output import WorkerOutputError, WorkerResult, parse_json
from .savings import SavingsReport, savings_report
from .sources import Roots, SourceRefused, collect, document_sources, read_all, roots_from_env
from .tasks import Prompt, TaskKind, TaskSpec

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["OnDelegate", "Progress", "TaskKind", "Worker", "WorkerOutputError", "WorkerResult"]

log = logging.getLogger("llm_localfirst.worker")

#: ``on_delegate(task, result)``, called after every successful run.
OnDelegate = Callable[[str, WorkerResult], None]

#: Names that mean "every local destination, in policy order" when no destination
#: is literally called that.
LOCAL_ALIASES = ("local", "auto")
#: Most file digests one delegation row lists (the counts are always complete).
MAX_AUDITED_FILES = 50


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclasses.dataclass
class _RunFacts:
    """What one delegation's audit row says: what was read, what the gate found."""

    spec: TaskSpec
    by_reference: bool
    files: list[str] = dataclasses.field(default_factory=list)
    digests: list[str] = dataclasses.field(default_factory=list)
    bytes_read: int = 0
    source_tokens: int = 0
    answer_tokens: int = 0
    calls: int = 0
    found: dict[str, int] = dataclasses.field(default_factory=dict)
    destination: str | None = None

    def metadata(self, outbound: str) -> dict[str, str]:
        saved = self.source_tokens if self.by_reference else self.answer_tokens
        listed = self.digests[:MAX_AUDITED_FILES]
        more = len(self.digests) - len(listed)
        return {
            "delegation": "paths" if self.by_reference else "source",
            "files": str(len(self.files)),
            "bytes_read": str(self.bytes_read),
            "sources": ",".join(listed) + (f",+{more}" if more else ""),
            "source_tokens": str(self.source_tokens),
            "answer_tokens": str(self.answer_tokens),
            "saved_tokens": str(saved),
            "calls": str(self.calls),
            "outbound": outbound,
            "outbound_findings": ",".join(f"{k}={n}" for k, n in sorted(self.found.items())),
        }


def describe_documents(documents: Mapping[str, Path | str]) -> str:
    """Named documents as a tool description lists them: names and sizes, never content."""
    if not documents:
        return ""
    lines = []
    for name, doc in sorted(documents.items()):
        if isinstance(doc, str):
            size = f"{len(doc)} characters"
        else:
            try:
                size = f"{os.stat(os.path.expanduser(str(doc))).st_size} bytes"
            except OSError:
                size = "missing"
        lines.append(f"- {name} ({size})")
    return "Documents you can name in `documents` (the worker reads them itself):\n" + "\n".join(
        lines
    )


class Worker:
    """Runs bulk text tasks on local destinations only.

    Args:
        router: The router whose policy, health, providers and audit log are used.
        destination: A local destination name, or several to try in order. The
            name ``"local"`` (or ``"auto"``), when no destination is called that,
            means every local destination of the policy, in policy order.
        on_delegate: Called as ``on_delegate(task, result)`` after each successful
            run (observability). An exception in it is logged, not raised.
        metadata: Extra audit metadata for every call (e.g. ``{"via": "mcp"}``).
        documents: Named documents a director may refer to (``documents=["q3"]``): a
            ``Path`` is read when named, a ``str`` is the text itself.
        roots: Folders ``paths`` may read under, besides ``LF_WORKER_ROOTS`` and the
            policy's ``worker.roots``.

    Raises:
        ModelNotAllowed: a name that is not an allowlisted destination.
        PrivacyViolation: any named destination is not local.

    Example:
        >>> worker = Worker(router)                                 # doctest: +SKIP
        >>> worker.run("Summarize in 3 bullets", source=report).text  # doctest: +SKIP
    """

    def __init__(
        self,
        router: Router,
        *,
        destination: str | Sequence[str] = "local",
        on_delegate: OnDelegate | None = None,
        metadata: Mapping[str, str] | None = None,
        documents: Mapping[str, Path | str] | None = None,
        roots: Sequence[str | Path] = (),
    ) -> None:
        names = (destination,) if isinstance(destination, str) else tuple(destination)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise InvalidRequest(
                "destination must name at least one local destination", param="destination"
            )
        self.router = router
        self.requested: tuple[str, ...] = tuple(n.strip() for n in names)
        self.on_delegate = on_delegate
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._chars_per_token: dict[str, float] = {}
        self._windows: dict[str, int] = {}
        self.documents: dict[str, Path | str] = dict(documents or {})
        self._roots = tuple(roots)
        self.local_destinations()  # refuse a non-local destination now, not at first use

    # ------------------------------------------------------------------ locality

    def local_destinations(self) -> tuple[str, ...]:
        """The destinations this worker may use under the router's *current* policy.

        Raises:
            ModelNotAllowed: a name that is not an allowlisted destination.
            PrivacyViolation: a named destination is not local.
        """
        policy = self.router.policy
        out: list[str] = []
        for name in self.requested:
            if name in LOCAL_ALIASES and name not in policy.destinations:
                if not policy.local_names:
                    raise ModelNotAllowed(name, policy.local_names)
                out.extend(policy.local_names)
                continue
            dest = policy.destinations.get(name)
            if dest is None:
                raise ModelNotAllowed(name, policy.local_names)
            if not dest.is_local:
                raise PrivacyViolation(
                    f"the worker runs only on local destinations; {name!r} is a {dest.locality} "
                    "destination, so nothing was sent",
                    destination=name,
                )
            out.append(name)
        return tuple(dict.fromkeys(out))

    # ------------------------------------------------------------------ run

    async def arun(
        self,
        task: str,
        source: str = "",
        *,
        paths: Sequence[str] | None = None,
        documents: Sequence[str] | None = None,
        task_kind: TaskKind | str = "freeform",
        schema: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        target_language: str | None = None,
        max_tokens: int | None = None,
        progress: Progress | None = None,
        roots: Sequence[str | Path] = (),
    ) -> WorkerResult:
        """Run one task on the local model.

        Args:
            task: The instruction ("Summarize for a CFO in 5 bullets").
            source: The text to work on; split and combined when it is longer than
                the destination's context window.
            paths: Files, directories or glob patterns the worker reads itself,
                beside or instead of ``source``; only inside the allowed roots.
            documents: Names of documents registered on this worker.
            task_kind: summarize, draft, translate, reformat, extract, classify or freeform.
            schema: extract only: JSON Schema the answer must validate against.
            labels: classify only: the labels to choose from.
            target_language: Required for translate; otherwise the answer's language.
            max_tokens: Cap on the answer's length.
            progress: Called as ``progress(done, total, message)`` after each step.
            roots: More allowed roots for this run (the MCP client's), besides the
                worker's, ``LF_WORKER_ROOTS`` and the policy's ``worker.roots``.

        Returns:
            The answer, after the outbound gate, with its destination, tokens,
            chunks, files read, redactions and audit ids.

        Raises:
            InvalidRequest: bad arguments (audited as a rejected request).
            SourceRefused: a path outside the roots, a special file, over the limits,
                or no roots at all (nothing read or sent).
            ModelNotAllowed, PrivacyViolation: a destination is unknown or no longer local.
            LocalUnavailable: none of the worker's destinations is up (nothing was sent).
            OutboundRefused: the answer carries personal data and ``worker.outbound``
                is ``refuse``.
            WorkerOutputError: extract/classify output unusable after one repair.
            UpstreamError: the local model refused the request (e.g. a 4xx).
        """
        started = time.perf_counter()
        try:
            spec = TaskSpec.build(
                task,
                task_kind=task_kind,
                schema=schema,
                labels=labels,
                target_language=target_language,
            )
            if not isinstance(source, str):
                raise InvalidRequest("source must be a string", param="source")
            limit = self.router.settings.max_input_chars
            if len(source) > limit:
                raise InvalidRequest(
                    f"source is {len(source)} characters; the limit is {limit}", param="source"
                )
            if max_tokens is not None and (
                isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
            ):
                raise InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
            for name, value in (("paths", paths), ("documents", documents)):
                if value is not None and (
                    isinstance(value, str) or not all(isinstance(v, str) for v in value)
                ):
                    raise InvalidRequest(f"{name} must be a list of strings", param=name)
        except InvalidRequest as exc:
            self.router.lifecycle.reject(face="worker", endpoint="worker", error=exc, kind="bulk")
            raise
        try:
            names = self.local_destinations()
        except (ModelNotAllowed, PrivacyViolation) as exc:
            request = self.request_for(
                spec, spec.single(), "", max_tokens=None, destinations=self.requested
            )
            self.router.lifecycle.reject(
                face="worker", endpoint="worker", error=exc, request=request
            )
            raise
        facts = _RunFacts(spec, by_reference=bool(paths or documents))
        try:
            files = await self._read(paths or (), documents or (), roots, facts)
            if files:
                if source:
                    files.insert(0, ("(text given inline)", source))
                source = join_files(files)
                if len(source) > limit:
                    raise SourceRefused(
                        ", ".join(paths or documents or ())[:200],
                        f"the files hold {len(source)} characters; the limit "
                        f"is {limit} (LF_MAX_INPUT_CHARS)",
                    )
            facts.source_tokens = estimate_tokens(source)
            result = await Run(self, spec, max_tokens, progress, files=files).execute(source)
            result = self._gate(result, facts)
        except LocalFirstError as exc:
            outcome = (
                "refused"
                if isinstance(exc, (SourceRefused, PrivacyViolation, LocalUnavailable))
                else "error"
            )
            if isinstance(exc, InvalidRequest) and not isinstance(exc, SourceRefused):
                self.router.lifecycle.reject(
                    face="worker", endpoint="worker", error=exc, kind="bulk"
                )
            else:
                self._record(facts, outcome, started, error=exc, destination=names[0])
            raise
        run_id = self._record(
            facts, "ok", started, destination=result.destination, model=result.model
        )
        result = dataclasses.replace(result, run_id=run_id)
        if self.on_delegate is not None:
            try:
                self.on_delegate(task, result)
            except Exception:  # an observability hook must not undo finished work
                log.exception("on_delegate hook failed")
        return result

    def run(
        self,
        task: str,
        source: str = "",
        *,
        paths: Sequence[str] | None = None,
        documents: Sequence[str] | None = None,
        task_kind: TaskKind | str = "freeform",
        schema: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        target_language: str | None = None,
        max_tokens: int | None = None,
        progress: Progress | None = None,
        roots: Sequence[str | Path] = (),
    ) -> WorkerResult:
        """Synchronous :meth:`arun` (on the router's private loop thread).

        Raises:
            The same errors as :meth:`arun`.
        """
        return self.router.lifecycle.run_sync(
            self.arun(
                task,
                source,
                paths=paths,
                documents=documents,
                task_kind=task_kind,
                schema=schema,
                labels=labels,
                target_language=target_language,
                max_tokens=max_tokens,
                progress=progress,
                roots=roots,
            )
        )

    def roots(self, extra: Sequence[str | Path] = ()) -> Roots:
        """The folders this worker may read now: ``extra`` (the MCP client's), the
        worker's own, ``LF_WORKER_ROOTS`` (from the router's settings) and the policy's."""
        settings_roots = roots_from_env(getattr(self.router.settings, "worker_roots", "") or "")
        return Roots.of(extra, self._roots, settings_roots, self.router.policy.worker.roots)

    def describe_documents(self) -> str:
        """The registered documents as the tool description lists them: names and sizes."""
        return describe_documents(self.documents)

    async def _read(
        self,
        paths: Sequence[str],
        documents: Sequence[str],
        extra_roots: Sequence[str | Path],
        facts: _RunFacts,
    ) -> list[tuple[str, str]]:
        """Check, then read, what the caller named (off the event loop)."""
        if not paths and not documents:
            return []
        limits = self.router.policy.worker
        out: list[tuple[str, str]] = []
        if documents:
            docs = await asyncio.to_thread(
                document_sources, self.documents, documents, max_bytes=limits.max_bytes
            )
            facts.files.extend(name for name, _ in docs)
            facts.digests.extend(f"doc:{_digest(name)}" for name, _ in docs)
            facts.bytes_read += sum(len(text.encode("utf-8", "surrogatepass")) for _, text in docs)
            out.extend(docs)
        if paths:
            roots = self.roots(extra_roots)
            checked = await asyncio.to_thread(
                collect, paths, roots, max_files=limits.max_files, max_bytes=limits.max_bytes
            )
            texts = await asyncio.to_thread(read_all, checked, roots, max_bytes=limits.max_bytes)
            facts.files.extend(f.relative for f in checked)
            facts.digests.extend(f.digest() for f in checked)
            facts.bytes_read += sum(f.size for f in checked)
            out.extend(texts)
        return out

    def _gate(self, result: WorkerResult, facts: _RunFacts) -> WorkerResult:
        policy = self.router.policy
        facts.destination = result.destination
        facts.answer_tokens = estimate_tokens(result.text)
        facts.calls = len(result.audit_ids)
        try:
            checked = gate(
                result.text, mode=policy.worker.outbound, detectors=policy.sensitivity.detectors
            )
        except OutboundRefused as exc:
            facts.found = dict(exc.counts)
            raise
        facts.found = checked.found
        data = result.data
        if checked.redacted and result.task_kind == TaskKind.EXTRACT.value:
            data = parse_json(checked.text)[1]
        elif checked.redacted and result.task_kind == TaskKind.CLASSIFY.value:
            data = checked.text
        return dataclasses.replace(
            result,
            text=checked.text,
            data=data,
            redacted=checked.redacted,
            files=tuple(facts.files),
            bytes_read=facts.bytes_read,
        )

    def _record(
        self,
        facts: _RunFacts,
        outcome: str,
        started: float,
        *,
        error: BaseException | None = None,
        destination: str | None = None,
        model: str | None = None,
    ) -> str:
        """The audit row of the whole delegation (see the module docstring)."""
        return self.router.lifecycle.run_row(
            face="worker",
            endpoint="worker",
            outcome=outcome,
            kind="bulk",
            destination=facts.destination or destination,
            model=model,
            error=error,
            tags=("delegation", "worker", f"task:{facts.spec.kind.value}"),
            metadata={**self.metadata, **facts.metadata(self.router.policy.worker.outbound)},
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def savings(self) -> SavingsReport:
        """The savings ledger over every face (see :mod:`llm_localfirst.agents.savings`).

        Blocking: it reads the audit store.
        """
        return savings_report(self.router)

    # ------------------------------------------------------------------ learned sizes

    def learned_chars_per_token(self, name: str) -> float:
        """Characters per token to plan with for ``name`` (4 until it showed fewer)."""
        return self._chars_per_token.get(name, CHARS_PER_TOKEN)

    def learned_window(self, name: str, declared: int) -> int:
        """The context window to plan with: the declared one, or a smaller real one."""
        return min(declared, self._windows.get(name, declared))

    def learn(
        self, name: str, *, chars_per_token: float | None = None, window: int | None = None
    ) -> None:
        """Remember what a destination showed about its tokenizer and real window.

        Only ever lowers the figures, so later runs plan more conservatively.
        """
        if chars_per_token is not None:
            self._chars_per_token[name] = min(chars_per_token, self.learned_chars_per_token(name))
        if window is not None:
            self._windows[name] = min(window, self._windows.get(name, window))

    # ------------------------------------------------------------------ internals

    def request_for(
        self,
        spec: TaskSpec,
        prompt: Prompt,
        source: str,
        *,
        max_tokens: int | None,
        destinations: Sequence[str],
    ) -> Request:
        """One call's request: local-only over ``destinations``, tagged, not "sensitive".

        Local-only says where the call may run; it adds no sensitivity reason, so
        a worker row is sensitive only when its text really is (a detector fired).
        """
        return Request.build(
            prompt.instruction,
            max_input_chars=self.router.settings.max_input_chars,
            source=source or None,
            system=prompt.system,
            face="worker",
            kind="bulk",
            local_only=tuple(destinations),
            tags=("worker", f"task:{spec.kind.value}"),
            metadata=self.metadata,
            max_tokens=max_tokens,
        )

    def __repr__(self) -> str:
        return f"Worker(destination={self.requested!r})"
