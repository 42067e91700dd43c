"""Time from spawning ``llm-localfirst mcp`` (stdio) to its ``initialize`` response.

What Claude Desktop waits for when it starts the server. Each run spawns the
console script exactly as ``claude_desktop_config.example.json`` does (its ``env``,
plus a temporary ``LF_DATA_DIR``), writes the ``initialize`` request at once, and
stops the clock when the response line arrives on stdout; then closes stdin so
the server exits. For scale it also times ``python -c "import mcp.server.mcpserver"``
(the SDK's own import, a floor no server on this SDK can beat) and
``python -c pass``. Prints p50 and p99 (with 20 runs, p99 is the slowest run).

Figures on a shared machine depend on its load; the script prints the load
average before it starts. Run: ``python bench/bench_mcp_startup.py [--runs 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        }
    )
    + "\n"
).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_initialize(command: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(INITIALIZE)
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - t0) * 1000
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    reply = json.loads(line)
    if reply.get("id") != 1 or "result" not in reply:
        raise RuntimeError(f"unexpected reply: {line[:300]!r}")
    return elapsed


def time_command(command: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True, timeout=60)
    return (time.perf_counter() - t0) * 1000


def row(name: str, values: list[float]) -> str:
    return (
        f"{name:<44} p50 {statistics.median(values):7.0f} ms   p99 "
        f"{percentile(values, 99):7.0f} ms   min {min(values):7.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = str(Path(sys.executable).parent / "llm-localfirst")
    config = json.loads((ROOT / "claude_desktop_config.example.json").read_text())
    entry = config["mcpServers"]["llm-localfirst"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.runs} runs each; load average {load:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, **entry["env"], "LF_DATA_DIR": tmp}
        command = [exe, *entry["args"]]
        time_initialize(command, env)  # warm the page cache and the bytecode cache
        server = [time_initialize(command, env) for _ in range(args.runs)]
        sdk = [
            time_command([sys.executable, "-c", "import mcp.server.mcpserver"], env)
            for _ in range(args.runs)
        ]
        bare = [time_command([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
    print(row("llm-localfirst mcp: spawn -> initialize", server))
    print(row("python -c 'import mcp.server.mcpserver'", sdk))
    print(row("python -c pass", bare))


if __name__ == "__main__":
    main()
