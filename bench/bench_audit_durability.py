"""Audit durability modes, end to end: Router.acomplete against a loopback fake upstream
in another process.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_localfirst import Router, Settings
from llm_localfirst.audit import SQLiteAuditStore, verify_store
from llm_localfirst.policy import Policy, policy_from_data

# The fake upstream runs in its own process, as a real model server would: in this
# process its thread would compete for the GIL with the router's threads.
UPSTREAM = (
    "from llm_localfirst.testing import FakeUpstream\n"
    "import sys, threading\n"
    "fake = FakeUpstream().start()\n"
    "print(fake.port, flush=True)\n"
    "sys.stdin.read()\n"
)


def local_policy(base_url: str) -> Policy:
    return policy_from_data(
        {
            "version": 1,
            "default": {"to": ["local"]},
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": base_url,
                    "model": "fake",
                    "locality": "local",
                }
            },
        }
    )


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


def run(mode: str, concurrency: int, total: int, base_url: str, folder: Path) -> dict[str, float]:
    store = SQLiteAuditStore(folder / f"{mode}-{concurrency}.db")
    settings = Settings.load(env_file=None, environ={}, audit_durability=mode)
    router = Router(local_policy(base_url), settings=settings, audit=store, probe_ttl=3600)
    try:
        router.lifecycle.run_sync(_load(router, concurrency, 20))  # warm: pools, providers, writer
        started = time.perf_counter()
        latencies = router.lifecycle.run_sync(_load(router, concurrency, total))
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


def commit_cost(folder: Path, concurrency: int, total: int = 2000) -> float:
    """p50 microseconds of one ``await writer.aintent()`` alone (group commit at c>1)."""
    from llm_localfirst.audit import AuditIntent, AuditWriter, new_id, utc_now_iso

    store = SQLiteAuditStore(folder / f"intents-{concurrency}.db")
    writer = AuditWriter(store, durability="intent")
    waits: list[float] = []

    async def one() -> None:
        for _ in range(total // concurrency):
            intent = AuditIntent(
                id=new_id(),
                attempt=1,
                ts=utc_now_iso(),
                face="python",
                endpoint="complete",
                kind="bulk",
                destination="local",
                locality="local",
                model="m",
                sensitive=False,
                sensitive_reasons=(),
                rule=None,
                prompt_sha256=None,
                prompt_chars=1,
            )
            started = time.perf_counter()
            await writer.aintent(intent)
            waits.append(time.perf_counter() - started)

    async def load() -> None:
        await asyncio.gather(*(one() for _ in range(concurrency)))

    asyncio.run(load())
    writer.close()
    store.close()
    return statistics.median(waits) * 1e6


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
    upstream = subprocess.Popen(
        [sys.executable, "-c", UPSTREAM], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert upstream.stdout is not None
    base_url = f"http://127.0.0.1:{int(upstream.stdout.readline())}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for concurrency in (1, 16):
                for mode in ("batch", "intent") if round_ % 2 == 0 else ("intent", "batch"):
                    folder = Path(tmp) / f"r{round_}"
                    folder.mkdir(exist_ok=True)
                    runs.setdefault((mode, concurrency), []).append(
                        run(mode, concurrency, args.requests, base_url, folder)
                    )
    upstream.communicate("", timeout=30)
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
    with tempfile.TemporaryDirectory() as tmp:
        for c in (1, 16):
            print(f"c={c}: one intent commit alone, p50 {commit_cost(Path(tmp), c):.0f} us")


if __name__ == "__main__":
    main()
