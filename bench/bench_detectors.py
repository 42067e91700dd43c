"""Benchmark the built-in sensitivity detectors on realistic mixed text.

Run from anywhere: ``python bench/bench_detectors.py``. The text is generated prose
(with the dates, versions, prices and counts prose has), about one paragraph in
twelve a benign look-alike and one in thirty a sensitive value
(`tests.corpus.pii.mixed_text`). For 1 KB, 8 KB, 64 KB and 1 MB it prints the
median (p50) cost of `Scanner.findings` and of `Scanner.scan`, in microseconds per
KB, both as wall-clock time and as CPU time of this process (steadier on a busy
machine), and how far the per-KB cost drifts from the 1 KB figure: a linear
scanner keeps it flat. It exits non-zero when a p50 CPU figure exceeds the budget.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_localfirst.sensitivity import Scanner
from tests.corpus.pii import mixed_text

SIZES = {"1 KB": 1024, "8 KB": 8 * 1024, "64 KB": 64 * 1024, "1 MB": 1024 * 1024}
BUDGET_US_PER_KB = 50.0


def _p50(fn: Callable[[str], object], texts: list[str], size: int) -> tuple[float, float]:
    """Median wall and CPU microseconds per KB of ``fn`` over repeated runs."""
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + (2.0 if size > 100_000 else 1.0)
    i = 0
    while time.perf_counter() < deadline or len(wall) < 7:
        text = texts[i % len(texts)]
        i += 1
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        fn(text)
        c1, w1 = time.process_time_ns(), time.perf_counter_ns()
        wall.append((w1 - w0) / 1000 / (size / 1024))
        cpu.append((c1 - c0) / 1000 / (size / 1024))
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    """Print the figures; return 1 if a p50 CPU figure exceeds the per-KB budget."""
    t0 = time.perf_counter()
    scanner = Scanner()
    scanner.findings(mixed_text(8192, seed=99))
    print(
        f"first Scanner() + first 8 KB scan (tables compile lazily, on first need): "
        f"{(time.perf_counter() - t0) * 1000:.0f} ms"
    )
    print(f"{'size':>6} | {'findings us/KB':>19} | {'scan us/KB':>19} | {'findings':>8}")
    print(f"{'':>6} | {'wall':>9} {'cpu':>9} | {'wall':>9} {'cpu':>9} |")
    cpu_findings: dict[str, float] = {}
    worst = 0.0
    for label, size in SIZES.items():
        # Several different texts per size, so that no single layout decides.
        texts = [mixed_text(size, seed=seed) for seed in range(8 if size < 100_000 else 3)]
        f_wall, f_cpu = _p50(scanner.findings, texts, size)
        s_wall, s_cpu = _p50(scanner.scan, texts, size)
        count = statistics.median(len(scanner.findings(t)) for t in texts)
        cpu_findings[label] = f_cpu
        worst = max(worst, f_cpu, s_cpu)
        print(
            f"{label:>6} | {f_wall:>9.1f} {f_cpu:>9.1f} | {s_wall:>9.1f} {s_cpu:>9.1f} | "
            f"{count:>8.0f}"
        )
    base = cpu_findings["1 KB"]
    drift = ", ".join(f"{label} {value / base:.2f}x" for label, value in cpu_findings.items())
    print(f"linearity (findings CPU per KB relative to 1 KB): {drift}")
    verdict = "ok" if worst <= BUDGET_US_PER_KB else "EXCEEDED"
    print(f"budget {BUDGET_US_PER_KB:.0f} us/KB (p50 CPU): {verdict}")
    return 0 if worst <= BUDGET_US_PER_KB else 1


if __name__ == "__main__":
    sys.exit(main())
