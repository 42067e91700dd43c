"""Private delegation: parallel map wall time, and the cloud tokens a director spends.

Run: ``python bench/bench_delegation.py``.

1. A 40-chunk job (task ``translate``: 40 map calls, joined without a reduce call)
   against a loopback OpenAI-compatible fake that takes a fixed 200 ms per call,
   with the destination's ``max_concurrency`` at 1, 2, 4 and 8. Target (issue 11):
   at 4, at most 0.3x the wall time at 1.
2. The cloud tokens a director spends to have a 200 KB file summarised: pasting it
   into ``source`` versus naming it in ``paths``. Counted: the tool call's
   arguments (the director writes them: output tokens) and the answer (it reads
   it: input tokens), at the documented estimate of 4 characters per token, priced
   at Claude Haiku 4.5's list price (USD 1 / 5 per million input / output tokens).
   With ``source`` the director must also have read the file first; that is shown
   apart, as it depends on how the text reached the director.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_localfirst import Policy, Router
from llm_localfirst.agents import Worker
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore

CALL_SECONDS = 0.2
CHUNKS = 40
PRICE_IN, PRICE_OUT = 1.0, 5.0  # USD per million tokens (Claude Haiku 4.5)
SUMMARY = (
    "The contract renews on 2027-03-01 for two years; either party may terminate "
    "with 90 days' notice; fees rise 3% a year; the supplier carries liability up to "
    "the annual fee; disputes go to arbitration in Amsterdam. "
) * 3


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def policy(local: FakeUpstream, concurrency: int, roots: Sequence[str] = ()) -> Policy:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": "fake",
                    "locality": "local",
                    "context_window": 1024,
                    "max_concurrency": concurrency,
                }
            },
            "default": {"to": ["local"]},
            "worker": {"roots": list(roots)},
        }
    )


def paragraphs(n: int) -> str:
    return "\n\n".join(
        f"Paragraph {i}. " + "A clause about fees and renewal terms. " * 12 for i in range(n)
    )


def forty_chunk_source(local: FakeUpstream) -> str:
    """Grow the source until the worker plans exactly ``CHUNKS`` chunks."""
    local.delay = 0.0
    for n in range(20, 400):
        router = Router(policy(local, 8), audit=MemoryAuditStore())
        try:
            result = Worker(router).run(
                "Translate", source=paragraphs(n), task_kind="translate", target_language="French"
            )
        finally:
            router.close()
        if result.chunks >= CHUNKS:
            assert result.chunks == CHUNKS, result.chunks
            return paragraphs(n)
    raise AssertionError("could not reach 40 chunks")


def bench_parallel() -> None:
    with FakeUpstream() as local:
        local.reply = "Une clause."
        source = forty_chunk_source(local)
        local.delay = CALL_SECONDS
        print(
            f"1. {CHUNKS}-chunk translate job, loopback model at {CALL_SECONDS * 1000:.0f} ms "
            "per call"
        )
        print(f"{'max_concurrency':>16} {'calls':>6} {'wall s':>8} {'x of c=1':>9}")
        base = None
        for concurrency in (1, 2, 4, 8):
            router = Router(policy(local, concurrency), audit=MemoryAuditStore())
            local.reset()
            local.delay, local.reply = CALL_SECONDS, "Une clause."
            try:
                started = time.perf_counter()
                result = Worker(router).run(
                    "Translate", source=source, task_kind="translate", target_language="French"
                )
                wall = time.perf_counter() - started
            finally:
                router.close()
            base = base or wall
            print(
                f"{concurrency:>16} {len(local.model_calls()):>6} {wall:>8.2f} {wall / base:>9.2f}"
            )
            assert result.chunks == CHUNKS


def bench_tokens() -> None:
    folder = Path(tempfile.mkdtemp(prefix="lf-bench-"))
    contract = folder / "contract.md"
    text = paragraphs(1) + "\n\n"
    contract.write_text((text * (200_000 // len(text) + 1))[:200_000], encoding="utf-8")
    body = contract.read_text(encoding="utf-8")
    task = "Summarize this contract for the CFO: renewal, termination, fees, liability."
    with FakeUpstream() as local:
        local.reply = SUMMARY
        rows = []
        for how, args in (
            ("source", {"task": task, "task_kind": "summarize", "source": body}),
            ("paths", {"task": task, "task_kind": "summarize", "paths": ["contract.md"]}),
        ):
            router = Router(policy(local, 4, [str(folder)]), audit=MemoryAuditStore())
            try:
                extra: dict[str, Any] = {
                    k: v for k, v in args.items() if k not in ("task", "source")
                }
                result = Worker(router).run(task, str(args.get("source", "")), **extra)
            finally:
                router.close()
            out_tokens = tokens(json.dumps(args))  # the director writes the call
            in_tokens = tokens(result.text)  # and reads the answer
            cost = (out_tokens * PRICE_OUT + in_tokens * PRICE_IN) / 1e6
            rows.append((how, out_tokens, in_tokens, cost, result.chunks))
    read_first = tokens(body)
    print(
        f"\n2. A director summarising a {len(body) // 1000} KB file through the worker "
        "(tokens at 4 chars/token)"
    )
    print(f"{'argument':>9} {'call args (out)':>16} {'answer (in)':>12} {'USD':>9} {'chunks':>7}")
    for how, out_tokens, in_tokens, cost, chunks in rows:
        print(f"{how:>9} {out_tokens:>16,} {in_tokens:>12,} {cost:>9.4f} {chunks:>7}")
    print(
        f"(with `source`, the director also read the file first: +{read_first:,} input "
        f"tokens, USD {read_first * PRICE_IN / 1e6:.4f}; with `paths` it never sees it)"
    )
    ratio = (rows[0][1] + rows[0][2]) / (rows[1][1] + rows[1][2])
    print(f"paths cuts the director's tokens for this job {ratio:,.0f}x")


if __name__ == "__main__":
    bench_parallel()
    bench_tokens()
