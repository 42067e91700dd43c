"""Proxy benchmark: direct vs llm-localfirst vs LiteLLM vs Portkey, back to back, on loopback.

One fake upstream (``upstream.py``) serves every run. For each target in turn, at
each concurrency: ``wrk`` (``post.lua``) measures throughput and latency percentiles
of non-streamed chat completions, then ``ttfb.py`` measures streaming time to the
first SSE event. Direct and llm-localfirst are also measured with an 8 KB chat
history in the request (the detectors scan all of it). Each target runs alone: it is
started, measured and stopped before the next one starts.

Bounded: ``wrk -d`` is at most 10 s per point, streaming points stop after a request
count or a few seconds, every start-up has a deadline.

Run: ``/work/venv/bin/python bench/proxy/run.py`` (``--help`` for options). Prints a
markdown table and writes it to ``bench/proxy/results.md`` (raw figures in
``results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import targets as t
from targets import Service, TargetError

HERE = Path(__file__).resolve().parent
ALL_TARGETS = ("direct", "llm-localfirst", "litellm", "portkey")
#: Not run by default: the budget check's cost (issue 12), same upstream declared cloud.
#: ``-workers2``: ``serve --workers 2``. Any llm-localfirst target may end in ``@DIR``:
#: the package in DIR (an older checkout), for before/after figures from one run.
EXTRA_TARGETS = (
    "llm-localfirst-cloud",
    "llm-localfirst-budget",
    "llm-localfirst-workers2",
    "llm-localfirst-batch",
)
HISTORY_TARGETS = ("direct", "llm-localfirst")


@dataclass
class Point:
    target: str
    body: str  # "chat" or "chat+8KB"
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    ttfb_errors: int | None = None


# ---------------------------------------------------------------------------- request bodies

_PROSE = (
    "We moved the nightly import to the new queue last week and the backlog cleared in "
    "about forty minutes. The remaining problem is the report generator, which still "
    "reads the whole table before it filters, so it needs 3 GB of memory on the largest "
    "tenant. Could you suggest how to stream it instead, keeping the output order stable "
    "and the totals exact? The team would like to ship the change before the 2.4 release. "
)


def chat_body(history_bytes: int = 0) -> bytes:
    """A chat completion request; with ``history_bytes``, a conversation of that size first."""
    messages: list[dict[str, str]] = [
        {"role": "system", "content": "You are a concise engineering assistant."}
    ]
    size, turn = 0, 0
    while size < history_bytes:
        role = "user" if turn % 2 == 0 else "assistant"
        text = f"({turn}) " + _PROSE
        messages.append({"role": role, "content": text})
        size += len(text)
        turn += 1
    messages.append({"role": "user", "content": "Write one sentence about the sea."})
    return json.dumps(
        {"model": t.MODEL, "messages": messages, "max_tokens": 64}, separators=(",", ":")
    ).encode()


# ---------------------------------------------------------------------------- drivers


def run_wrk(
    service: Service, body_file: Path, concurrency: int, seconds: float, threads: int
) -> dict[str, float]:
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in service.headers.items()),
    }
    args = [
        "wrk",
        "-t",
        str(min(threads, concurrency)),
        "-c",
        str(concurrency),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(HERE / "post.lua"),
        service.url,
    ]
    out = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))  # type: ignore[no-any-return]
    raise RuntimeError(
        f"wrk printed no summary (exit {out.returncode}):\n"
        f"{out.stdout[-1000:]}\n{out.stderr[-1000:]}"
    )


def run_ttfb(
    service: Service, body_file: Path, concurrency: int, requests: int, seconds: float
) -> dict[str, Any]:
    args = [
        sys.executable,
        str(HERE / "ttfb.py"),
        "--url",
        service.url,
        "--body-file",
        str(body_file),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--seconds",
        f"{seconds:g}",
        "--timeout",
        "10",
        "--warmup",
        str(concurrency),
    ]
    for name, value in service.headers.items():
        args += ["--header", f"{name}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ttfb.py failed: {out.stderr[-1000:]}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def measure(
    service: Service,
    body_name: str,
    body_file: Path,
    concurrency: int,
    args: argparse.Namespace,
    *,
    stream: bool,
) -> Point:
    run_wrk(service, body_file, concurrency, 1, args.wrk_threads)  # warm-up, discarded
    w = run_wrk(service, body_file, concurrency, args.duration, args.wrk_threads)
    errors = sum(int(v) for k, v in w.items() if k.startswith("err_"))
    point = Point(
        service.name,
        body_name,
        concurrency,
        rps=w["requests"] / (w["duration_us"] / 1e6),
        p50_ms=w["p50_us"] / 1000,
        p99_ms=w["p99_us"] / 1000,
        errors=errors,
        requests=int(w["requests"]),
    )
    if stream:
        s = run_ttfb(service, body_file, concurrency, args.ttfb_requests, args.ttfb_seconds)
        point.ttfb_p50_ms = s.get("ttfb_p50_ms")
        point.ttfb_p99_ms = s.get("ttfb_p99_ms")
        point.ttfb_errors = sum(s["errors"].values())
    print(
        f"  {service.name:15} {body_name:8} c={concurrency:<3} {point.rps:9.0f} req/s  "
        f"p50 {fmt(point.p50_ms)} ms  p99 {fmt(point.p99_ms)} ms  "
        f"ttfb p50 {fmt(point.ttfb_p50_ms)} ms  errors {errors}"
        f"{'' if point.ttfb_errors in (None, 0) else f' (stream errors {point.ttfb_errors})'}",
        flush=True,
    )
    return point


# ---------------------------------------------------------------------------- report


def fmt(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    if abs(ms) < 1:
        return f"{ms:.3f}"
    if abs(ms) < 10:
        return f"{ms:.2f}"
    return f"{ms:.1f}" if abs(ms) < 100 else f"{ms:.0f}"


def table(points: list[Point]) -> str:
    direct = {(p.body, p.concurrency): p for p in points if p.target == "direct"}
    rows = [
        "| target | body | c | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| stream TTFB p50 ms | TTFB p99 ms | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for p in points:
        base = direct.get((p.body, p.concurrency))
        added50 = added99 = "—"
        if base is not None and p.target != "direct":
            added50, added99 = fmt(p.p50_ms - base.p50_ms), fmt(p.p99_ms - base.p99_ms)
        errs = str(p.errors) + ("" if not p.ttfb_errors else f" (+{p.ttfb_errors} stream)")
        rows.append(
            f"| {p.target} | {p.body} | {p.concurrency} | {p.rps:,.0f} | "
            f"{fmt(p.p50_ms)} | {fmt(p.p99_ms)} | {added50} | {added99} | "
            f"{fmt(p.ttfb_p50_ms)} | {fmt(p.ttfb_p99_ms)} | {errs} |"
        )
    return "\n".join(rows)


def verdicts(points: list[Point]) -> list[str]:
    at = {(p.target, p.body, p.concurrency): p for p in points}

    def added(target: str, body: str, c: int) -> float | None:
        a, d = at.get((target, body, c)), at.get(("direct", body, c))
        return None if a is None or d is None else a.p50_ms - d.p50_ms

    lines = []
    for body, c in (("chat", 1), ("chat+8KB", 1)):
        value = added("llm-localfirst", body, c)
        if value is not None:
            lines.append(
                f"- added p50 at c={c} ({body}) ≤ 1 ms: {fmt(value)} ms — "
                f"**{'PASS' if value <= 1 else 'FAIL'}**"
            )
    lf, ll = at.get(("llm-localfirst", "chat", 16)), at.get(("litellm", "chat", 16))
    if lf and ll:
        ratio = lf.rps / ll.rps if ll.rps else float("inf")
        lines.append(
            f"- throughput at c=16 ≥ 10× LiteLLM's: {lf.rps:,.0f} vs {ll.rps:,.0f} "
            f"req/s = {ratio:.1f}× — **{'PASS' if ratio >= 10 else 'FAIL'}**"
        )
        a_lf, a_ll = added("llm-localfirst", "chat", 16), added("litellm", "chat", 16)
        if a_lf is not None and a_ll is not None:
            ok = a_lf <= a_ll / 10
            lines.append(
                f"- added p50 at c=16 ≤ 1/10 of LiteLLM's: {fmt(a_lf)} ms vs "
                f"{fmt(a_ll)} ms (limit {fmt(a_ll / 10)} ms) — "
                f"**{'PASS' if ok else 'FAIL'}**"
            )
    return lines


def wait_quiet(seconds: float, threshold: float) -> None:
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(
            f"waiting for a quieter machine: load {loadavg()} (limit {threshold:g}, "
            f"{deadline - time.monotonic():.0f} s left)",
            flush=True,
        )
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


# ---------------------------------------------------------------------------- main


def start_target(name: str, workdir: Path, upstream: Service, args: argparse.Namespace) -> Service:
    name, _, source = name.partition("@")
    src = Path(source).resolve() if source else None
    if name == "llm-localfirst":
        return t.start_localfirst(workdir, upstream, source=src)
    if name in EXTRA_TARGETS:
        return t.start_localfirst(workdir, upstream, name.rsplit("-", 1)[1], source=src)
    if name == "litellm":
        version = t.ensure_litellm(args.litellm_venv, install=not args.no_install)
        return t.start_litellm(
            workdir, upstream, args.litellm_venv, version, workers=args.litellm_workers
        )
    if name == "portkey":
        version = t.ensure_portkey(args.portkey_dir, install=not args.no_install)
        return t.start_portkey(workdir, upstream, args.portkey_dir, version)
    raise ValueError(name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets",
        default=",".join(ALL_TARGETS),
        help=f"comma-separated subset of {', '.join(ALL_TARGETS)}",
    )
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--duration", type=float, default=5.0, help="wrk seconds per point (≤10)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--ttfb-requests", type=int, default=1000)
    parser.add_argument("--ttfb-seconds", type=float, default=3.0)
    parser.add_argument("--history-bytes", type=int, default=8192)
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-venv")),
    )
    parser.add_argument("--litellm-workers", type=int, default=2)
    parser.add_argument(
        "--portkey-dir",
        type=Path,
        default=Path(os.environ.get("PORTKEY_DIR", "/tmp/portkey-gateway")),
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip/npm-install missing peers; skip them instead",
    )
    parser.add_argument("--start-timeout", type=float, default=240.0)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the 1-min load average to fall "
        "below --quiet-load (a shared machine skews every figure)",
    )
    parser.add_argument("--quiet-load", type=float, default=1.0)
    args = parser.parse_args(argv)
    args.duration = min(args.duration, 10.0)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.targets = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = {n.partition("@")[0] for n in args.targets} - set(ALL_TARGETS) - set(EXTRA_TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    wait_quiet(args.quiet_wait, args.quiet_load)
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="lf-bench-proxy-"))
    bodies = {"chat": workdir / "chat.json", "chat+8KB": workdir / "chat-8k.json"}
    bodies["chat"].write_bytes(chat_body())
    bodies["chat+8KB"].write_bytes(chat_body(args.history_bytes))
    ready_body = bodies["chat"].read_bytes()

    points: list[Point] = []
    info: dict[str, str] = {}
    skipped: dict[str, str] = {}
    load = {"start": loadavg()}
    print(f"work dir {workdir}; load average (1/5 min) {load['start']}", flush=True)
    upstream = t.start_upstream(workdir)
    try:
        t.wait_ready(upstream, ready_body, timeout=30)
        for name in args.targets:
            service = upstream
            if name != "direct":
                t0 = time.monotonic()
                try:
                    service = start_target(name, workdir, upstream, args)
                    t.wait_ready(service, ready_body, timeout=args.start_timeout)
                except (TargetError, subprocess.SubprocessError, OSError) as exc:
                    skipped[name] = str(exc).splitlines()[0]
                    print(f"SKIP {name}: {exc}", flush=True)
                    if service is not upstream:
                        service.stop()
                    continue
                print(
                    f"{name} {service.version} ready in {time.monotonic() - t0:.0f} s "
                    f"(load {loadavg()})",
                    flush=True,
                )
            info[name] = "; ".join(filter(None, [service.version, *service.notes]))
            load_before = loadavg()
            try:
                for c in args.concurrency:
                    points.append(measure(service, "chat", bodies["chat"], c, args, stream=True))
                if name.partition("@")[0] in HISTORY_TARGETS:
                    for c in (1, 16):
                        points.append(
                            measure(service, "chat+8KB", bodies["chat+8KB"], c, args, stream=False)
                        )
            finally:
                info[name] += f"; load average {load_before} → {loadavg()} while measured"
                if service is not upstream:
                    service.stop()
    finally:
        upstream.stop()
        load["end"] = loadavg()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report = render(points, info, skipped, load, args, time.monotonic() - began)
    print("\n" + report)
    args.output.write_text(report)
    args.output.with_suffix(".json").write_text(
        json.dumps(
            {
                "points": [asdict(p) for p in points],
                "targets": info,
                "skipped": skipped,
                "load": load,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {args.output}")
    return 0


def render(
    points: list[Point],
    info: dict[str, str],
    skipped: dict[str, str],
    load: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        .stdout.split("\n")[0]
        .strip()
    )
    lines = [
        "# Proxy benchmark results",
        "",
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} CPUs, "
        f"{platform.platform(terse=True)}, Python {platform.python_version()}, {wrk_version}; "
        f"load average (1/5 min) {load['start']} at start, {load.get('end', '?')} at end; "
        f"{elapsed:.0f} s in all.",
        "",
        f"Non-streamed: `wrk -t{args.wrk_threads} -d{args.duration:g}s --latency` after a 1 s "
        "warm-up. Stream TTFB: `ttfb.py`, time to the first SSE event, up to "
        f"{args.ttfb_requests} requests or {args.ttfb_seconds:g} s per point. "
        '"added" = target minus direct at the same concurrency and body. '
        f"chat+8KB: the same request after a {args.history_bytes}-byte chat history.",
        "",
        table(points),
        "",
        "Targets (issue 5):",
        "",
        *verdicts(points),
        "",
        "Setups:",
        "",
        *[f"- **{name}**: {text}" for name, text in info.items()],
        *[f"- **{name}**: skipped — {reason}" for name, reason in skipped.items()],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
