"""Audit durability modes, end to end: Router.acomplete against a loopback fake upstream.

``batch``: the decision row is committed by the writer thread in batches after the
answer (a SIGKILL may lose the last ~50 ms of rows). ``intent``: an intent row is
also committed before each upstream attempt (group commit across concurrent
requests), so every request that was sent has a committed row.

Measures throughput and p50/p99 latency at c=1 and c=16 for both modes on the
default SQLite store (WAL, synchronous=NORMAL) in one run, and prints the
intent/batch ratios. Run: ``python bench/bench_audit_durability.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from llm_localfirst import Router, Settings
from llm_localfirst.audit import SQLiteAuditStore, verify_store
from llm_localfirst.testing import FakeUpstream, offline_policy


async def _load(router: Router, concurrency: int, total: int) -> list[float]:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await router.acomplete("summarise this short note", kind="bulk")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run(
    mode: str, concurrency: int, total: int, upstream: FakeUpstream, folder: Path
) -> dict[str, float]:
    store = SQLiteAuditStore(folder / f"{mode}-{concurrency}.db")
    settings = Settings.load(env_file=None, environ={}, audit_durability=mode)
    router = Router(offline_policy(upstream), settings=settings, audit=store)
    try:
        router.run_sync(_load(router, concurrency, 20))  # warm: pools, providers, writer
        started = time.perf_counter()
        latencies = router.run_sync(_load(router, concurrency, total))
        elapsed = time.perf_counter() - started
    finally:
        router.close()
    result = verify_store(store)
    store.close()
    assert result.ok, result
    assert result.rows == total + 20, result
    assert result.intents == (total + 20 if mode == "intent" else 0)
    latencies.sort()
    return {
        "rps": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="modes alternate each round; the median round is reported",
    )
    args = parser.parse_args()
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    with FakeUpstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for concurrency in (1, 16):
                for mode in ("batch", "intent") if round_ % 2 == 0 else ("intent", "batch"):
                    folder = Path(tmp) / f"r{round_}"
                    folder.mkdir(exist_ok=True)
                    runs.setdefault((mode, concurrency), []).append(
                        run(mode, concurrency, args.requests, upstream, folder)
                    )
    results = {key: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for key, rs in runs.items()}
    print(f"{args.requests} requests per run, median of {args.rounds} alternating rounds")
    print(f"{'mode':<7} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for (mode, c), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{mode:<7} {c:>3} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    for c in (1, 16):
        b, i = results[("batch", c)], results[("intent", c)]
        print(
            f"c={c}: intent/batch throughput {i['rps'] / b['rps']:.2f}x, "
            f"p50 {i['p50_ms'] - b['p50_ms']:+.2f} ms"
        )


if __name__ == "__main__":
    main()
