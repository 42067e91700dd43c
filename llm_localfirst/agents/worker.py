"""The local worker: bulk text work on the user's own model, never anywhere else.

One :class:`Worker` is the single implementation behind the MCP
``delegate_to_worker`` tool and both agent adapters. This module owns:

- the locality contract: a worker is bound to local destinations only; it refuses
  a non-local one (``PrivacyViolation``) when it is built and again before every
  model call (the policy may have been reloaded), and every call it makes is pinned
  with ``model=<its destination>`` and ``sensitive=True``, so the router's privacy
  pin and egress guard refuse the cloud as well. It never falls back to the cloud;
  when none of its destinations is up it raises ``LocalUnavailable``;
- the public surface: argument validation (bad input is audited as rejected),
  ``arun``/``run``, the ``on_delegate`` hook, ``savings()``, and what the worker has
  learned about its destinations.

A run itself (templates, map-reduce over long sources, JSON and label reading,
progress) is :class:`~llm_localfirst.agents.mapreduce.Run`.

Sources are planned with the documented estimate of four characters per token
against the destination's ``context_window``. Tokenizers differ (code, CJK, small
vocabularies pack fewer characters into a token), so a run learns from what a
destination reports: the ``prompt_tokens`` of each long call, and the numbers in a
"maximum context length is N ... M in the messages" refusal; it then plans with
the lower figures and re-plans once refused as too long. What it learns is kept on
the ``Worker`` object and only ever makes later plans smaller.

Every model call is one router request audited as face ``worker``, endpoint
``worker``, tagged ``worker`` and ``task:<kind>``. A run that splits its source
makes several calls; ``WorkerResult.audit_ids`` lists them all.

It must never choose a cloud destination, never send text anywhere but through
``Router.route_call`` (the egress guard), and never log source or output text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest, ModelNotAllowed, PrivacyViolation
from ..request import Request
from .chunking import CHARS_PER_TOKEN
from .mapreduce import Progress, Run
from .output import WorkerOutputError, WorkerResult
from .savings import SavingsReport, savings_report
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

    Raises:
        ModelNotAllowed: a name that is not an allowlisted destination.
        PrivacyViolation: any named destination is not local.

    Example:
        >>> worker = Worker(router)                                 # doctest: +SKIP
        >>> worker.run("Summarize in 3 bullets", source=report).text  # doctest: +SKIP
    """

    def __init__(self, router: Router, *, destination: str | Sequence[str] = "local",
                 on_delegate: OnDelegate | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        names = (destination,) if isinstance(destination, str) else tuple(destination)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise InvalidRequest("destination must name at least one local destination",
                                 param="destination")
        self.router = router
        self.requested: tuple[str, ...] = tuple(n.strip() for n in names)
        self.on_delegate = on_delegate
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._chars_per_token: dict[str, float] = {}
        self._windows: dict[str, int] = {}
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
                    "destination, so nothing was sent", destination=name)
            out.append(name)
        return tuple(dict.fromkeys(out))

    # ------------------------------------------------------------------ run

    async def arun(self, task: str, source: str = "", *, task_kind: TaskKind | str = "freeform",
                   schema: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
                   target_language: str | None = None, max_tokens: int | None = None,
                   progress: Progress | None = None) -> WorkerResult:
        """Run one task on the local model.

        Args:
            task: The instruction ("Summarize for a CFO in 5 bullets").
            source: The text to work on; split and combined when it is longer than
                the destination's context window.
            task_kind: summarize, draft, translate, reformat, extract, classify or freeform.
            schema: extract only: JSON Schema the answer must validate against.
            labels: classify only: the labels to choose from.
            target_language: Required for translate; otherwise the answer's language.
            max_tokens: Cap on the answer's length.
            progress: Called as ``progress(done, total, message)`` after each step.

        Returns:
            The answer with its destination, tokens, chunks and audit ids.

        Raises:
            InvalidRequest: bad arguments (audited as a rejected request).
            ModelNotAllowed, PrivacyViolation: a destination is unknown or no longer local.
            LocalUnavailable: none of the worker's destinations is up (nothing was sent).
            WorkerOutputError: extract/classify output unusable after one repair.
            UpstreamError: the local model refused the request (e.g. a 4xx).
        """
        try:
            spec = TaskSpec.build(task, task_kind=task_kind, schema=schema, labels=labels,
                                  target_language=target_language)
            if not isinstance(source, str):
                raise InvalidRequest("source must be a string", param="source")
            limit = self.router.settings.max_input_chars
            if len(source) > limit:
                raise InvalidRequest(f"source is {len(source)} characters; the limit is {limit}",
                                     param="source")
            if max_tokens is not None and (isinstance(max_tokens, bool)
                                           or not isinstance(max_tokens, int) or max_tokens < 1):
                raise InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
        except InvalidRequest as exc:
            self.router.record_rejected(face="worker", endpoint="worker", error=exc, kind="bulk")
            raise
        try:
            self.local_destinations()
        except (ModelNotAllowed, PrivacyViolation) as exc:
            request = self._request(spec, spec.single(), "", max_tokens=None,
                                    model=self.requested[0])
            self.router.record_decision(request, None, exc, endpoint="worker")
            raise
        try:
            result = await Run(self, spec, max_tokens, progress).execute(source)
        except InvalidRequest as exc:  # the task does not fit the window (found when planning)
            self.router.record_rejected(face="worker", endpoint="worker", error=exc, kind="bulk")
            raise
        if self.on_delegate is not None:
            try:
                self.on_delegate(task, result)
            except Exception:  # an observability hook must not undo finished work
                log.exception("on_delegate hook failed")
        return result

    def run(self, task: str, source: str = "", *, task_kind: TaskKind | str = "freeform",
            schema: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
            target_language: str | None = None, max_tokens: int | None = None,
            progress: Progress | None = None) -> WorkerResult:
        """Synchronous :meth:`arun` (on the router's private loop thread).

        Raises:
            The same errors as :meth:`arun`.
        """
        return self.router.run_sync(self.arun(
            task, source, task_kind=task_kind, schema=schema, labels=labels,
            target_language=target_language, max_tokens=max_tokens, progress=progress))

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

    def learn(self, name: str, *, chars_per_token: float | None = None,
              window: int | None = None) -> None:
        """Remember what a destination showed about its tokenizer and real window.

        Only ever lowers the figures, so later runs plan more conservatively.
        """
        if chars_per_token is not None:
            self._chars_per_token[name] = min(chars_per_token, self.learned_chars_per_token(name))
        if window is not None:
            self._windows[name] = min(window, self._windows.get(name, window))

    # ------------------------------------------------------------------ internals

    def _request(self, spec: TaskSpec, prompt: Prompt, source: str, *, max_tokens: int | None,
                 model: str) -> Request:
        return self.router.build_request(
            prompt.instruction, source=source or None, system=prompt.system, face="worker",
            kind="bulk", model=model, sensitive=True, tags=("worker", f"task:{spec.kind.value}"),
            metadata=self.metadata, max_tokens=max_tokens)

    def __repr__(self) -> str:
        return f"Worker(destination={self.requested!r})"
