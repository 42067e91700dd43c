"""Whole-process time of ``llm-localfirst route "hi" --json`` vs ``python -c "import pydantic"``.

Target (issue 2): under 2x the pydantic import. Uses a local destination on a
closed loopback port, so the probe's connection is refused at once; the route
is audited to a temporary SQLite file, as in real use. Run:
``python bench/bench_cli_startup.py``.

Each command is timed as wall-clock time and as the CPU time (user + system) of
the child process, which is steadier on a busy machine. Byte-code is cached in a
temporary directory for every command alike (``PYTHONDONTWRITEBYTECODE`` would
otherwise make each run recompile every module whose ``.pyc`` is missing or
stale, which an installed package never does). For reference it also times the
construction of one pydantic model, the least that any command using a
pydantic model pays.
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
ONE_MODEL = "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\n"


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run of ``cmd``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if hasattr(os, "wait4"):
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4; keeps Popen from waiting again
        cpu = (usage.ru_utime + usage.ru_stime) * 1000
    else:
        proc.wait()
        cpu = float("nan")
    return (time.perf_counter() - t0) * 1000, cpu


def timed(cmd: list[str], env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Sorted wall and CPU milliseconds of ``RUNS`` runs, after two warm-up runs."""
    for _ in range(2):  # fill the byte-code cache and the page cache
        run_once(cmd, env)
    runs = [run_once(cmd, env) for _ in range(RUNS)]
    return sorted(w for w, _ in runs), sorted(c for _, c in runs)


def main() -> None:
    exe = str(Path(sys.executable).parent / "llm-localfirst")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            LF_DATA_DIR=tmp,
            LF_LOCAL_BASE_URL="http://127.0.0.1:9/v1",
            PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"),
        )
        commands = {
            "python -c 'import pydantic'": [sys.executable, "-c", "import pydantic"],
            "llm-localfirst route 'hi' --json": [exe, "route", "hi", "--json"],
            "(reference) one pydantic model": [sys.executable, "-c", ONE_MODEL],
        }
        results = {label: timed(cmd, env) for label, cmd in commands.items()}
    base_wall, base_cpu = (statistics.median(xs) for xs in results["python -c 'import pydantic'"])
    for label, (wall, cpu) in results.items():
        w50, c50 = statistics.median(wall), statistics.median(cpu)
        print(
            f"{label:<33} wall p50 {w50:7.1f} ms  min {wall[0]:7.1f} ms  {w50 / base_wall:5.2f}x"
            f" | CPU p50 {c50:7.1f} ms  min {cpu[0]:7.1f} ms  {c50 / base_cpu:5.2f}x"
        )
    route_wall, route_cpu = results["llm-localfirst route 'hi' --json"]
    print(
        f"ratio (p50): {statistics.median(route_wall) / base_wall:.2f}x wall, "
        f"{statistics.median(route_cpu) / base_cpu:.2f}x CPU  (target < 2x)"
    )


if __name__ == "__main__":
    main()
