"""What a budget check costs a cloud call: reserve + settle, on a real SQLite audit file.

Run: ``python bench/bench_budget.py``. Measures, per call, in the event loop as the
router runs it: ``Spend.reserve`` (served from this process's lease; a store round
trip in a worker thread when the lease runs short) plus ``Spend.settle`` (in memory;
the write-back to SQLite every 32 calls or 50 ms runs in a worker thread). The limit
is large, so the figures are the steady state of a budget that is not running out.
Issue 12's target: the proxy's added p50 at c=1 at most 0.1 ms above no budget.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from llm_localfirst.audit.budget_store import SQLiteBudgetStore
from llm_localfirst.audit.sqlite import SQLiteAuditStore
from llm_localfirst.budget import Ledger, Spend
from llm_localfirst.policy import policy_from_data
from llm_localfirst.request import Usage

N = 20_000


def policy(limit_usd: float) -> object:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "model": "m",
                    "locality": "local",
                },
                "haiku": {
                    "provider": "anthropic",
                    "model": "claude-haiku-4-5",
                    "price": {"input": 0.8, "output": 4.0},
                },
            },
            "budgets": [{"name": "team", "period": "month", "limit_usd": limit_usd}],
            "default": {"to": ["haiku"]},
        }
    )


async def run(spend: Spend) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    usage = Usage(40, 20)
    for _ in range(N):
        t0 = clock()
        held = await spend.reserve("haiku", None, 64, 256)
        assert held is not None
        assert not hasattr(held, "on_exceeded")
        spend.settle(held, usage)  # type: ignore[arg-type]
        samples.append(clock() - t0)
        await asyncio.sleep(0)  # let write-backs scheduled in the executor finish
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        SQLiteAuditStore(path).close()  # create and migrate the file
        store = SQLiteBudgetStore(path)
        spend = Spend(
            policy(1e9),
            ledger=Ledger(),
            budget=None,  # type: ignore[arg-type]
            store_factory=lambda: store,
        )
        asyncio.run(run(spend))  # warm-up
        samples = sorted(asyncio.run(run(spend)))
        spend.close()
        state = spend.status()[0]
        store.close()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    print(
        f"budget reserve + settle, SQLite store, {N} calls: p50 {p50:.2f} µs   "
        f"p99 {p99:.2f} µs   mean {mean:.2f} µs"
    )
    print(
        f"  settled {state.spent_calls} calls, {state.spent_micros} micro-USD; "
        f"reserved after close: {state.reserved_micros}"
    )


if __name__ == "__main__":
    main()
