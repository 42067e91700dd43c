"""The local worker: bulk text work on the user's own model, never anywhere else.

One :class:`Worker` is the single implementation behind the MCP
``delegate_to_worker`` tool and both agent adapters. This module owns:

- the locality contract: a worker is bound to local destinations only; it refuses
  a non-local one (``PrivacyViolation``) when it is built and again before every
  model call (the policy may have been reloaded), and every call it makes is pinned
  with ``model=<its destination>`` and ``sensitive=True``, so the router's privacy
  pin and egress guard refuse the cloud as well. It never falls back to the cloud;
  when none of its destinations is up it raises ``LocalUnavailable``;
- the run: task templates (:mod:`.tasks`), map-reduce over sources longer than the
  destination's context window (:mod:`.chunking`), JSON extraction with schema
  validation and one repair, classification into exactly one label, progress
  reports, and the ``on_delegate`` hook;
- :class:`WorkerResult`, the text plus structure every face returns.

Sources are planned with the documented estimate of four characters per token
against the destination's ``context_window``. Tokenizers differ (code, CJK, small
vocabularies pack fewer characters into a token), so the worker learns from what a
destination reports: the ``prompt_tokens`` of each long call, and the numbers in a
"maximum context length is N ... M in the messages" refusal. It then plans with
the lower figures (and re-plans the run once it has been refused as too long).
What it learns lives on the ``Worker`` object and only ever makes plans smaller.

Every model call is one router request audited as face ``worker``, endpoint
``worker``, tagged ``worker`` and ``task:<kind>``. A run that splits its source
makes several calls; ``WorkerResult.audit_ids`` lists them all.

It must never choose a cloud destination, never send text anywhere but through
``Router.route_call`` (the egress guard), and never log source or output text.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidRequest,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
    UpstreamError,
)
from ..providers.base import ChatResult, EgressTicket, Provider
from ..request import Request
from .chunking import CHARS_PER_TOKEN, Budget, estimate_tokens, pack, split_text
from .savings import SavingsReport, savings_report
from .tasks import Prompt, Strategy, TaskKind, TaskSpec, schema_problem

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["OnDelegate", "Progress", "TaskKind", "Worker", "WorkerOutputError", "WorkerResult"]

log = logging.getLogger("llm_localfirst.worker")

#: ``progress(done, total, message)``; may be a coroutine function. ``total`` can grow
#: while a run is under way (a recursive reduce adds steps).
Progress = Callable[[int, int, str], Awaitable[None] | None]
#: ``on_delegate(task, result)``, called after every successful run.
OnDelegate = Callable[[str, "WorkerResult"], None]

#: Names that mean "every local destination, in policy order" when no destination
#: is literally called that.
LOCAL_ALIASES = ("local", "auto")
#: Deepest recursive reduce before giving up (each level shrinks the partials 2-4x).
MAX_REDUCE_LEVELS = 8
#: Translations can come out longer than their source; chunks leave room for it.
EXPANSION = 1.3
#: Output tokens reserved for a classification when the caller gives no max_tokens.
CLASSIFY_OUTPUT_TOKENS = 64
#: Times a run re-plans after a destination refuses a request as too long.
MAX_REPLANS = 3
#: Only calls at least this long teach the worker a destination's token density
#: (shorter ones are dominated by chat-template overhead).
LEARN_MIN_TOKENS = 200
#: Floor of the learned characters-per-token figure.
MIN_CHARS_PER_TOKEN = 0.5

# What OpenAI-compatible servers (llama.cpp, vLLM, LM Studio) say when a prompt is too long.
_OVERFLOW = re.compile(r"context|too long|too many tokens|maximum|exceed", re.IGNORECASE)
_MAX_CONTEXT = re.compile(r"(?:maximum context length|context (?:length|window|size))\D{0,24}"
                          r"(\d{3,7})", re.IGNORECASE)
_PROMPT_TOKENS = re.compile(r"(\d+) (?:tokens )?in the messages|prompt (?:is |has |of )?"
                            r"(\d+) tokens", re.IGNORECASE)


class WorkerOutputError(UpstreamError):
    """The local model answered, but its output was unusable even after one repair.

    Raised for extract (no JSON, or JSON that fails the schema) and classify (an
    answer that matches none of the labels).

    Attributes:
        task_kind: The task kind.
        problem: Why the output was rejected (never the output itself).
    """

    code = "worker_output_invalid"

    def __init__(self, message: str, *, task_kind: str, problem: str,
                 destination: str | None = None) -> None:
        super().__init__(message, destination=destination)
        self.task_kind = task_kind
        self.problem = problem


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """The outcome of one worker run.

    Attributes:
        text: The answer (for extract, the JSON text; for classify, the label).
        task_kind: The task kind, e.g. ``"summarize"``.
        destination: The local destination that produced the final answer.
        model: Its model id.
        tokens_in: Input tokens over every call of the run.
        tokens_out: Output tokens over every call of the run.
        chunks: Pieces the source was split into (1 when it fitted in one call).
        audit_id: Audit id of the call that produced the final answer.
        audit_ids: Audit ids of every call of the run, in order (refused tries too).
        data: Parsed JSON for extract, the label for classify, otherwise ``None``.
    """

    text: str
    task_kind: str
    destination: str
    model: str
    tokens_in: int
    tokens_out: int
    chunks: int
    audit_id: str
    audit_ids: tuple[str, ...]
    data: Any = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (MCP structured output, adapters)."""
        return {
            "text": self.text, "task_kind": self.task_kind, "destination": self.destination,
            "model": self.model, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "chunks": self.chunks, "audit_id": self.audit_id, "audit_ids": list(self.audit_ids),
            "data": self.data,
        }


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
        result = await _Run(self, spec, max_tokens, progress).execute(source)
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


class _Overflow(Exception):  # noqa: N818 - internal control flow, never escapes the run
    """A call exceeded the destination's real context window; the run re-plans."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Run:
    """The state of one run: the token estimate in force, calls made, tokens, progress."""

    worker: Worker
    spec: TaskSpec
    max_tokens: int | None
    progress: Progress | None
    audit_ids: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    done: int = 0
    total: int = 1
    last: tuple[str, str, str] | None = None  # destination, model, audit id
    chars_per_token: float = CHARS_PER_TOKEN
    window: int = 0

    def budget(self) -> Budget:
        """The budget under the current estimate (it improves as destinations answer)."""
        out = self.max_tokens
        if out is None and self.spec.kind is TaskKind.CLASSIFY:
            out = CLASSIFY_OUTPUT_TOKENS + max(map(estimate_tokens, self.spec.labels), default=0)
        return Budget.for_window(self.window, out, chars_per_token=self.chars_per_token)

    async def execute(self, source: str) -> WorkerResult:
        """Plan and run; re-plan when a destination's real window proves smaller."""
        names = self.worker.local_destinations()
        policy = self.worker.router.policy
        self.window = min(self.worker.learned_window(n, policy.destinations[n].context_window)
                          for n in names)
        self.chars_per_token = min(self.worker.learned_chars_per_token(n) for n in names)
        replans = 0
        while True:
            try:
                return await self.plan_and_run(source)
            except _Overflow as overflow:
                replans += 1
                if replans > MAX_REPLANS:
                    raise overflow.error from None
                await self.report("the local model's context is smaller than estimated; "
                                  "splitting the source more finely")

    async def plan_and_run(self, source: str) -> WorkerResult:
        spec = self.spec
        budget = self.budget()
        single = spec.single()
        room = budget.source_chars(single.system + single.instruction)
        if spec.strategy is Strategy.CONCAT:
            room = min(room, int(budget.output / EXPANSION * budget.chars_per_token))
        if len(source) <= room:
            self.total = self.done + 1
            text = await self.call(single, source, budget.output, "done")
            return self.result(await self.finish(text), 1)
        map_output = budget.partial_output if spec.strategy is Strategy.MERGE else budget.output
        chunk_chars = self.chunk_chars(map_output)
        overlap = 0 if spec.strategy is Strategy.CONCAT else min(chunk_chars // 10, 8000)
        chunks = deque(split_text(source, chunk_chars, overlap_chars=overlap))
        self.total = self.done + len(chunks) + (1 if spec.strategy is Strategy.MERGE else 0)
        await self.report(f"split the source into {len(chunks)} chunks")
        partials: list[str] = []
        while chunks:
            chunk = chunks.popleft()
            limit = self.chunk_chars(map_output)
            if len(chunk) > limit:  # an earlier answer showed that tokens are shorter
                pieces = split_text(chunk, limit)
                chunks.extendleft(reversed(pieces[1:]))
                chunk = pieces[0]
                self.total += len(pieces) - 1
            part, parts = len(partials) + 1, len(partials) + 1 + len(chunks)
            partials.append(await self.call(spec.map(part, parts), chunk, map_output,
                                            f"chunk {part}/{parts}"))
        if spec.strategy is Strategy.CONCAT:
            return self.result("\n\n".join(p.strip() for p in partials), len(partials))
        if spec.strategy is Strategy.VOTE:
            return self.result(await self.vote(partials), len(partials))
        text = await self.reduce(partials, level=1)
        return self.result(await self.finish(text), len(partials))

    def chunk_chars(self, output: int) -> int:
        """Largest chunk (characters) a map call can take under the current estimate."""
        budget = self.budget()
        probe = self.spec.map(999, 999)
        chars = budget.source_chars(probe.system + probe.instruction, output=output)
        if self.spec.strategy is Strategy.CONCAT:
            chars = min(chars, int(budget.output / EXPANSION * budget.chars_per_token))
        return chars

    # ---------------------------------------------------------------- steps

    async def call(self, prompt: Prompt, source: str, max_tokens: int, message: str) -> str:
        """One model call on the first local destination that is up; re-checks locality."""
        router = self.worker.router
        names = self.worker.local_destinations()
        await router.health.refresh(names)
        order = [n for n in names if router.health.is_up(n)] or [names[0]]
        failure: LocalUnavailable | None = None
        for name in order:
            request = self.worker._request(self.spec, prompt, source, max_tokens=max_tokens,
                                           model=name)
            body = router.chat_body(request)

            async def op(provider: Provider, ticket: EgressTicket,
                         body: dict[str, Any] = body) -> ChatResult:
                return await provider.chat(ticket, body)

            try:
                result, decision, audit_id = await router.route_call(request, op,
                                                                     endpoint="worker")
            except LocalUnavailable as exc:
                self.audit_ids.extend(filter(None, [exc.decision_id]))
                failure = exc
                continue
            except UpstreamError as exc:
                self.audit_ids.extend(filter(None, [exc.decision_id]))
                if exc.status in (400, 413, 422) and _OVERFLOW.search(exc.message):
                    self.overflowed(name, request, exc)
                    raise _Overflow(exc) from None
                raise
            self.audit_ids.append(audit_id)
            self.tokens_in += result.input_tokens or request.estimated_tokens
            self.tokens_out += result.output_tokens or estimate_tokens(result.text)
            self.last = (decision.destination, decision.model, audit_id)
            if result.input_tokens >= LEARN_MIN_TOKENS:
                self.learned(decision.destination, request.input_chars / result.input_tokens)
            self.done += 1
            await self.report(message)
            return result.text
        assert failure is not None
        raise failure

    def learned(self, name: str, chars_per_token: float) -> None:
        """A destination counted fewer characters per token than estimated: plan with that."""
        if chars_per_token < self.chars_per_token:
            self.chars_per_token = max(MIN_CHARS_PER_TOKEN, chars_per_token * 0.95)
            self.worker.learn(name, chars_per_token=self.chars_per_token)

    def overflowed(self, name: str, request: Request, error: UpstreamError) -> None:
        """Learn the real window and token density from a context-length refusal."""
        window = _MAX_CONTEXT.search(error.message)
        if window and int(window.group(1)) < self.window:
            self.window = int(window.group(1))
            self.worker.learn(name, window=self.window)
        used = _PROMPT_TOKENS.search(error.message)
        tokens = int(next(g for g in used.groups() if g)) if used else 0
        if tokens > 0:
            self.learned(name, request.input_chars / tokens)
        else:
            self.learned(name, self.chars_per_token / 2)

    async def reduce(self, partials: list[str], *, level: int) -> str:
        """Merge partial results, recursively while they do not fit in one call."""
        spec = self.spec
        budget = self.budget()
        final = spec.combine(final=True)
        joined = _labelled(partials)
        if len(joined) <= budget.source_chars(final.system + final.instruction):
            return await self.call(final, joined, budget.output, "combined the parts")
        if level >= MAX_REDUCE_LEVELS:
            raise WorkerOutputError(
                f"the partial results did not shrink enough after {level} merge levels",
                task_kind=spec.kind.value, problem="reduce did not converge")
        step = spec.combine(final=False)
        room = budget.source_chars(step.system + step.instruction, output=budget.partial_output)
        pieces: list[str] = []
        for group in pack(_labels(partials), room):
            text = "\n\n".join(group)
            pieces.extend(split_text(text, room) if len(text) > room else [text])
        self.total += len(pieces)
        merged = [await self.call(step, piece, budget.partial_output,
                                  f"merged part {i}/{len(pieces)} (level {level})")
                  for i, piece in enumerate(pieces, 1)]
        if sum(map(len, merged)) >= sum(map(len, partials)):
            # A model that ignores max_tokens could otherwise make the reduce grow forever.
            raise WorkerOutputError(
                f"the partial results did not shrink at merge level {level}",
                task_kind=spec.kind.value, problem="reduce did not converge")
        return await self.reduce(merged, level=level + 1)

    async def finish(self, text: str) -> Any:
        """Turn the final text into the answer: parsed JSON, one label, or the text."""
        if self.spec.kind is TaskKind.EXTRACT:
            return await self.extract(text)
        if self.spec.kind is TaskKind.CLASSIFY:
            label = await self.label(text)
            if label is None:
                raise self.unusable(f"the answer matches none of the labels "
                                    f"({', '.join(self.spec.labels)})")
            return label
        return text.strip()

    async def extract(self, text: str) -> Any:
        problem, data = self.check_json(text)
        if problem is None:
            return data
        self.total += 1
        budget = self.budget()
        repaired = await self.call(self.spec.repair(problem),
                                   text[:int(budget.output * budget.chars_per_token)],
                                   budget.output, "repaired the JSON")
        problem, data = self.check_json(repaired)
        if problem is not None:
            raise self.unusable(problem)
        return data

    def check_json(self, text: str) -> tuple[str | None, Any]:
        found, data = parse_json(text)
        if not found:
            return "the answer is not valid JSON.", None
        if self.spec.schema is not None:
            problem = schema_problem(self.spec.schema, data)
            if problem:
                return f"the JSON does not match the schema {problem}.", None
        return None, data

    async def label(self, text: str) -> str | None:
        label = pick_label(text, self.spec.labels)
        if label is not None:
            return label
        self.total += 1
        answer = await self.call(self.spec.repair("no label"), text[:2000], self.budget().output,
                                 "asked again for one label")
        return pick_label(answer, self.spec.labels)

    async def vote(self, answers: list[str]) -> str:
        votes: Counter[str] = Counter()
        for answer in answers:
            label = await self.label(answer)
            if label is not None:
                votes[label] += 1
        if not votes:
            raise self.unusable("no part's answer matched a label")
        best = max(votes.values())
        return next(lb for lb in self.spec.labels if votes[lb] == best)

    def unusable(self, problem: str) -> WorkerOutputError:
        dest = self.last[0] if self.last else None
        error = WorkerOutputError(
            f"the local model's {self.spec.kind.value} output was unusable after one repair: "
            f"{problem}", task_kind=self.spec.kind.value, problem=problem, destination=dest)
        if self.last:
            error.decision_id = self.last[2]
        return error

    async def report(self, message: str) -> None:
        if self.progress is None:
            return
        outcome = self.progress(self.done, max(self.total, self.done), message)
        if inspect.isawaitable(outcome):
            await outcome

    def result(self, data: Any, chunks: int) -> WorkerResult:
        assert self.last is not None
        destination, model, audit_id = self.last
        if self.spec.kind is TaskKind.EXTRACT:
            text = json.dumps(data, ensure_ascii=False)
        elif isinstance(data, str):
            text = data.strip()
        else:  # pragma: no cover - every kind returns text, a label or JSON
            text = str(data)
        return WorkerResult(
            text=text, task_kind=self.spec.kind.value, destination=destination, model=model,
            tokens_in=self.tokens_in, tokens_out=self.tokens_out, chunks=chunks,
            audit_id=audit_id, audit_ids=tuple(self.audit_ids),
            data=data if self.spec.kind in (TaskKind.EXTRACT, TaskKind.CLASSIFY) else None)


# --------------------------------------------------------------------------- output parsing

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_NOT_WORD = re.compile(r"[^\w]+")


def parse_json(text: str) -> tuple[bool, Any]:
    """Find the JSON value in a model's answer: fenced, bare, or after some chatter.

    Returns:
        ``(found, value)``.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            return True, json.loads(stripped)
        except ValueError:
            pass
        for i, ch in enumerate(stripped):
            if ch in "{[":
                try:
                    value, _ = decoder.raw_decode(stripped, i)
                except ValueError:
                    continue
                return True, value
    return False, None


def _norm(text: str) -> str:
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def pick_label(answer: str, labels: Sequence[str]) -> str | None:
    """Map a model's answer to exactly one of ``labels``, or None.

    In order: an exact match (ignoring case, punctuation and quotes, and a leading
    ``label:``); the label whose whole words appear earliest in the answer; the
    closest label by similarity (``difflib`` ratio of at least 0.8). Otherwise
    None: the caller asks once more, then raises :class:`WorkerOutputError`.
    """
    if not labels:
        return None
    normalized = {_norm(lb): lb for lb in labels}
    text = _norm(answer)
    text = re.sub(r"^(?:the\s+)?(?:label|category|class|answer)\s+(?:is\s+)?", "", text)
    if text in normalized:
        return normalized[text]
    positions: list[tuple[int, int, str]] = []
    for key, label in normalized.items():
        if not key:
            continue
        match = re.search(rf"(?<!\w){re.escape(key)}(?!\w)", text)
        if match:
            positions.append((match.start(), -len(key), label))
    if positions:
        return min(positions)[2]
    close = difflib.get_close_matches(text, list(normalized), n=1, cutoff=0.8)
    return normalized[close[0]] if close else None


def _labels(partials: Sequence[str]) -> list[str]:
    return [f"[Part {i}]\n{p.strip()}" for i, p in enumerate(partials, 1)]


def _labelled(partials: Sequence[str]) -> str:
    return "\n\n".join(_labels(partials))
