"""Profile ``llm-localfirst serve`` under load with py-spy, and summarise where the time goes.

Starts the fake upstream and the proxy exactly as ``run.py`` does, drives the proxy
with ``wrk`` at one concurrency for a bounded time, and meanwhile samples the proxy
process with ``py-spy record`` (``--format raw``, collapsed stacks, which any flame graph
tool renders). Then prints the top frames by own time ("self") and by time including callees
("total"), as a share of all samples, and the same grouped by module.

Run: ``/work/venv/bin/python bench/proxy/profile_proxy.py --concurrency 16 --seconds 8``
(needs ``pip install py-spy`` in the venv, and ptrace permission: root, or
``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import targets as t
from run import chat_body, run_wrk

HERE = Path(__file__).resolve().parent


def _frame_key(frame: str) -> str:
    # py-spy raw frames: "function (path/to/module.py:line)"; drop the line number.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/llm_localfirst/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/llm_localfirst/":
                path = "llm_localfirst/" + path
            break
    return f"{name} ({path})"


def _module(frame_key: str) -> str:
    path = frame_key.rsplit(" (", 1)[-1].rstrip(")")
    return path.split("/")[0] if not path.startswith("llm_localfirst/") else path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    modules_own: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";") if f]
        # py-spy prefixes the thread ("process 1:..."/"thread (0x..)"); keep code frames only.
        frames = [f for f in frames if ".py" in f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        modules_own[_module(frames[-1])] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "no samples\n"

    def block(title: str, counter: collections.Counter[str]) -> list[str]:
        rows = [f"{title}:", ""]
        rows += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return [*rows, ""]

    lines = [f"{samples} samples", ""]
    lines += block("Top frames by own time", own)
    lines += block("Top frames by total time (with callees)", total)
    lines += block("Own time by module", modules_own)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--history-bytes", type=int, default=0)
    parser.add_argument("--idle", action="store_true", help="py-spy --idle (count waiting too)")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="py-spy --gil: only samples holding the GIL (what competes with "
        "the event loop; drops the audit thread's time inside SQLite)",
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="keep raw + SVG here")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy not installed: pip install py-spy", file=sys.stderr)
        return 2
    seconds = min(args.seconds, 30.0)
    workdir = Path(tempfile.mkdtemp(prefix="lf-bench-profile-"))
    out = args.out or workdir
    out.mkdir(parents=True, exist_ok=True)
    body = workdir / "body.json"
    body.write_bytes(chat_body(args.history_bytes))
    upstream = t.start_upstream(workdir)
    proxy: t.Service | None = None
    try:
        t.wait_ready(upstream, body.read_bytes(), timeout=30)
        proxy = t.start_localfirst(workdir, upstream)
        t.wait_ready(proxy, body.read_bytes(), timeout=60)
        run_wrk(proxy, body, args.concurrency, 2, 1)  # warm-up
        pid = proxy.procs[0].pid
        raw = out / "profile.raw.txt"
        common = [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(args.rate),
            "--duration",
            f"{int(seconds)}",
            "--subprocesses",
            "--nonblocking",
        ]
        if args.idle:
            common.append("--idle")
        if args.gil:
            common.append("--gil")
        spy = subprocess.Popen(
            [*common, "--format", "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # let py-spy attach before the load starts
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        result = run_wrk(proxy, body, args.concurrency, seconds, 1)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
        _, err = spy.communicate(timeout=seconds + 60)
        if spy.returncode != 0 or not raw.exists():
            print(f"py-spy failed: {err.decode(errors='replace')[-800:]}", file=sys.stderr)
            return 1
        print(
            f"wrk c={args.concurrency} {seconds:g}s: "
            f"{result['requests'] / (result['duration_us'] / 1e6):.0f} req/s, "
            f"p50 {result['p50_us'] / 1000:.2f} ms, p99 {result['p99_us'] / 1000:.2f} ms "
            f"(under py-spy at {args.rate} Hz); proxy process CPU {100 * cpu:.0f}% "
            f"(100% = one core); load average {os.getloadavg()[0]:.2f}\n"
        )
        print(summarise(raw, args.top))
        print(f"raw collapsed stacks: {raw}" + ("" if args.out else " (deleted on exit)"))
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.stop()
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
