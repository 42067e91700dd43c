"""Whole-process time of ``llm-localfirst route "hi" --json`` vs ``python -c "import pydantic"``.

Target (issue 2): under 2x the pydantic import. Uses a local destination on a
closed loopback port, so the probe's connection is refused at once; the route
is audited to a temporary SQLite file, as in real use. Run:
``python bench/bench_cli_startup.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15


def timed(cmd: list[str], env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm the page cache
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def main() -> None:
    exe = str(Path(sys.executable).parent / "llm-localfirst")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LF_DATA_DIR": tmp, "LF_LOCAL_BASE_URL": "http://127.0.0.1:9/v1"}
        base = timed([sys.executable, "-c", "import pydantic"], env)
        route = timed([exe, "route", "hi", "--json"], env)
    b50, r50 = statistics.median(base), statistics.median(route)
    print(f"python -c 'import pydantic'      p50 {b50:7.1f} ms  min {base[0]:7.1f} ms")
    print(f"llm-localfirst route 'hi' --json  p50 {r50:7.1f} ms  min {route[0]:7.1f} ms")
    print(f"ratio (p50): {r50 / b50:.2f}x  (target < 2x)")


if __name__ == "__main__":
    main()
