"""One worker run: plan against the context window, map, reduce, learn, report progress.

This module owns :class:`Run`, the engine behind ``Worker.arun``: a source that
fits runs in one call; a longer one is split (:mod:`.chunking`), each chunk is
mapped with the task's per-part prompt, and the partial results are combined by
the task's strategy: merged by the model (recursively while they do not fit one
call), joined in order (translations), or put to a majority vote (labels). It
reads extract and classify answers (:mod:`.output`) with one repair each.

Map calls (and the merges of one reduce level) run concurrently, up to the
``max_concurrency`` of the worker's first destination, and keep their order.
Every call is one ``router.lifecycle.call`` of a ``local_only`` request naming the
worker's destinations: the policy keeps only local candidates, the router fails
over among them and the egress guard refuses anything else, so the run itself
never probes, reorders or retries. A source made of files is split per file,
each chunk labelled with the file it comes from. It learns a destination's real
token density and window from reported usage and from context-length refusals,
and re-plans.

It must never pick a destination, never call the cloud, and never log source or
output text.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LocalFirstError, UpstreamError
from ..request import Request
from .chunking import CHARS_PER_TOKEN, Budget, estimate_tokens, pack, split_files, split_text
from .output import WorkerOutputError, WorkerResult, parse_json, pick_label
from .tasks import Prompt, Strategy, TaskKind, TaskSpec, schema_problem

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["Progress", "Run"]

#: ``progress(done, total, message)``; may be a coroutine function. ``total`` can grow
#: while a run is under way (a recursive reduce adds steps).
Progress = Callable[[int, int, str], Awaitable[None] | None]

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
_MAX_CONTEXT = re.compile(
    r"(?:maximum context length|context (?:length|window|size))\D{0,24}"
    r"(\d{3,7})",
    re.IGNORECASE,
)
_PROMPT_TOKENS = re.compile(
    r"(\d+) (?:tokens )?in the messages|prompt (?:is |has |of )?"
    r"(\d+) tokens",
    re.IGNORECASE,
)


class _WindowExceededError(Exception):
    """A call exceeded the destination's real context window; the run re-plans."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class Run:
    """The state of one run: the token estimate in force, calls made, tokens, progress.

    Args:
        worker: The worker (its destinations, router and learned sizes).
        spec: The validated task.
        max_tokens: The caller's cap on the answer.
        progress: The caller's progress callback.
    """

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
    files: Sequence[tuple[str, str]] = ()
    names: tuple[str, ...] = ()
    concurrency: int = 1

    def budget(self) -> Budget:
        """The budget under the current estimate (it improves as destinations answer)."""
        out = self.max_tokens
        if out is None and self.spec.kind is TaskKind.CLASSIFY:
            out = CLASSIFY_OUTPUT_TOKENS + max(map(estimate_tokens, self.spec.labels), default=0)
        return Budget.for_window(self.window, out, chars_per_token=self.chars_per_token)

    async def execute(self, source: str) -> WorkerResult:
        """Plan and run; re-plan when a destination's real window proves smaller."""
        names = self.names = self.worker.local_destinations()
        policy = self.worker.router.policy
        self.concurrency = policy.destinations[names[0]].max_concurrency
        self.window = min(
            self.worker.learned_window(n, policy.destinations[n].context_window) for n in names
        )
        self.chars_per_token = min(self.worker.learned_chars_per_token(n) for n in names)
        replans = 0
        while True:
            try:
                return await self.plan_and_run(source)
            except _WindowExceededError as overflow:
                replans += 1
                if replans > MAX_REPLANS:
                    raise overflow.error from None
                await self.report(
                    "the local model's context is smaller than estimated; "
                    "splitting the source more finely"
                )

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
        if self.files:
            chunks = split_files(self.files, chunk_chars, overlap_chars=overlap)
        else:
            chunks = split_text(source, chunk_chars, overlap_chars=overlap)
        self.total = self.done + len(chunks) + (1 if spec.strategy is Strategy.MERGE else 0)
        await self.report(f"split the source into {len(chunks)} chunks")
        partials = await self.map_all(chunks, map_output)
        if spec.strategy is Strategy.CONCAT:
            return self.result("\n\n".join(p.strip() for p in partials), len(partials))
        if spec.strategy is Strategy.VOTE:
            return self.result(await self.vote(partials), len(partials))
        text = await self.reduce(partials, level=1)
        return self.result(await self.finish(text), len(partials))

    async def map_all(self, chunks: Sequence[str], output: int) -> list[str]:
        """Map every chunk in parallel (see :meth:`parallel`)."""
        parts = len(chunks)
        return await self.parallel(
            [
                (self.spec.map(i, parts), chunk, output, f"chunk {i}/{parts}")
                for i, chunk in enumerate(chunks, 1)
            ]
        )

    async def parallel(self, jobs: Sequence[tuple[Prompt, str, int, str]]) -> list[str]:
        """Run calls up to ``concurrency`` at once (the first destination's
        ``max_concurrency``); results keep their order.

        The first failure cancels the calls still running and is raised (a window
        overflow then re-plans the whole run with what it taught).
        """
        results: list[str] = [""] * len(jobs)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(i: int) -> None:
            async with limit:
                results[i] = await self.call(*jobs[i])

        if len(jobs) == 1 or self.concurrency == 1:
            for i in range(len(jobs)):
                await one(i)
            return results
        try:
            async with asyncio.TaskGroup() as group:
                for i in range(len(jobs)):
                    group.create_task(one(i))
        except BaseExceptionGroup as grouped:
            raise _first(grouped) from None
        return results

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
        """One router call, local-only: the router decides among the worker's destinations,
        fails over between them, and audits the call."""
        router = self.worker.router
        request = self.worker.request_for(
            self.spec, prompt, source, max_tokens=max_tokens, destinations=self.names
        )
        try:
            result, decision, audit_id = await router.lifecycle.call(request, endpoint="worker")
        except UpstreamError as exc:
            self.audit_ids.extend(filter(None, [exc.decision_id]))
            if exc.status in (400, 413, 422) and _OVERFLOW.search(exc.message):
                self.overflowed(exc.destination or self.names[0], request, exc)
                raise _WindowExceededError(exc) from None
            raise
        except LocalFirstError as exc:
            self.audit_ids.extend(filter(None, [exc.decision_id]))
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
                task_kind=spec.kind.value,
                problem="reduce did not converge",
            )
        step = spec.combine(final=False)
        room = budget.source_chars(step.system + step.instruction, output=budget.partial_output)
        pieces: list[str] = []
        for group in pack(_labels(partials), room):
            text = "\n\n".join(group)
            pieces.extend(split_text(text, room) if len(text) > room else [text])
        self.total += len(pieces)
        merged = await self.parallel(
            [
                (
                    step,
                    piece,
                    budget.partial_output,
                    f"merged part {i}/{len(pieces)} (level {level})",
                )
                for i, piece in enumerate(pieces, 1)
            ]
        )
        if sum(map(len, merged)) >= sum(map(len, partials)):
            # A model that ignores max_tokens could otherwise make the reduce grow forever.
            raise WorkerOutputError(
                f"the partial results did not shrink at merge level {level}",
                task_kind=spec.kind.value,
                problem="reduce did not converge",
            )
        return await self.reduce(merged, level=level + 1)

    async def finish(self, text: str) -> Any:
        """Turn the final text into the answer: parsed JSON, one label, or the text."""
        if self.spec.kind is TaskKind.EXTRACT:
            return await self.extract(text)
        if self.spec.kind is TaskKind.CLASSIFY:
            label = await self.label(text)
            if label is None:
                raise self.unusable(
                    f"the answer matches none of the labels ({', '.join(self.spec.labels)})"
                )
            return label
        return text.strip()

    async def extract(self, text: str) -> Any:
        problem, data = self.check_json(text)
        if problem is None:
            return data
        self.total += 1
        budget = self.budget()
        repaired = await self.call(
            self.spec.repair(problem),
            text[: int(budget.output * budget.chars_per_token)],
            budget.output,
            "repaired the JSON",
        )
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
        answer = await self.call(
            self.spec.repair("no label"),
            text[:2000],
            self.budget().output,
            "asked again for one label",
        )
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
            f"{problem}",
            task_kind=self.spec.kind.value,
            problem=problem,
            destination=dest,
        )
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
            text=text,
            task_kind=self.spec.kind.value,
            destination=destination,
            model=model,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            chunks=chunks,
            audit_id=audit_id,
            audit_ids=tuple(self.audit_ids),
            data=data if self.spec.kind in (TaskKind.EXTRACT, TaskKind.CLASSIFY) else None,
        )


def _first(grouped: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise from a failed parallel map: the first that is not a cancellation."""
    for exc in grouped.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return grouped.exceptions[0]


def _labels(partials: Sequence[str]) -> list[str]:
    return [f"[Part {i}]\n{p.strip()}" for i, p in enumerate(partials, 1)]


def _labelled(partials: Sequence[str]) -> str:
    return "\n\n".join(_labels(partials))
