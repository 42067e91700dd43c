"""Benchmark the built-in sensitivity detectors on realistic mixed text.

Run from the repository root: ``python bench/bench_detectors.py``. For each size it
prints the median (p50) cost of `Scanner.scan` and `Scanner.findings` in
microseconds per KB of text, and how far the per-KB cost drifts from the 1 KB
figure (a linear scanner keeps it flat).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_localfirst.sensitivity import Scanner  # noqa: E402
from tests.corpus.pii import mixed_text  # noqa: E402

SIZES = {"1 KB": 1024, "8 KB": 8 * 1024, "64 KB": 64 * 1024, "1 MB": 1024 * 1024}
BUDGET_US_PER_KB = 50.0


def _p50_us_per_kb(fn: object, texts: list[str], size: int, min_seconds: float = 0.5) -> float:
    assert callable(fn)
    samples: list[float] = []
    deadline = time.perf_counter() + min_seconds
    i = 0
    while time.perf_counter() < deadline or len(samples) < 5:
        text = texts[i % len(texts)]
        i += 1
        t0 = time.perf_counter_ns()
        fn(text)
        samples.append((time.perf_counter_ns() - t0) / 1000 / (size / 1024))
    return statistics.median(samples)


def main() -> int:
    """Print the figures; exit non-zero if a size exceeds the per-KB budget."""
    t0 = time.perf_counter()
    scanner = Scanner()
    print(f"first Scanner() (compiles patterns, loads metadata): "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    print(f"{'size':>6} {'scan us/KB':>11} {'findings us/KB':>15} {'findings':>9}")
    results: dict[str, tuple[float, float]] = {}
    for label, size in SIZES.items():
        # Several different texts per size, so caches and one lucky layout don't help.
        texts = [mixed_text(size, seed=seed) for seed in range(8 if size < 100_000 else 3)]
        scan = _p50_us_per_kb(scanner.scan, texts, size)
        findings = _p50_us_per_kb(scanner.findings, texts, size)
        count = len(scanner.findings(texts[0]))
        results[label] = (scan, findings)
        print(f"{label:>6} {scan:>11.1f} {findings:>15.1f} {count:>9}")
    base = results["1 KB"][1]
    drift = max(f / base for _, f in results.values())
    print(f"linearity: worst per-KB cost of findings() is {drift:.2f}x the 1 KB figure")
    worst = max(max(v) for v in results.values())
    print(f"budget {BUDGET_US_PER_KB:.0f} us/KB: {'ok' if worst <= BUDGET_US_PER_KB else 'EXCEEDED'}")
    return 0 if worst <= BUDGET_US_PER_KB else 1


if __name__ == "__main__":
    sys.exit(main())
