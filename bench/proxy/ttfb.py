"""Streaming time-to-first-byte driver for the proxy benchmark.

Opens ``--concurrency`` keep-alive connections with raw asyncio sockets (uvloop),
and on each sends ``POST`` requests whose body asks for ``"stream": true``. For
every request it records the time from the first byte written to the first SSE
event of the response body (not merely the status line: a proxy that sends headers
before its upstream answers must not look faster than it is), and checks that the
stream ends with ``data: [DONE]``. Responses are parsed with httptools.

Bounded: stops after ``--requests`` requests or ``--seconds`` seconds, whichever
comes first; each request has its own ``--timeout``. Prints one JSON object.

Run: ``python bench/proxy/ttfb.py --url http://127.0.0.1:18001/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httptools

DEFAULT_BODY = {
    "model": "bench-local",
    "stream": True,
    "messages": [{"role": "user", "content": "Say hello."}],
}


class _Response:
    """httptools callbacks for one response."""

    def __init__(self) -> None:
        self.first_event: float | None = None
        self.body = bytearray()
        self.complete = False

    def on_body(self, body: bytes) -> None:
        if self.first_event is None and b"data:" in bytes(self.body) + body:
            self.first_event = time.perf_counter()
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class _Stats:
    def __init__(self, limit: int, deadline: float) -> None:
        self.limit, self.deadline = limit, deadline
        self.started = 0
        self.ttfb: list[float] = []
        self.total: list[float] = []
        self.errors: dict[str, int] = {}

    def take(self) -> bool:
        if self.started >= self.limit or time.perf_counter() >= self.deadline:
            return False
        self.started += 1
        return True

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, limit_s: float
) -> tuple[float, float, bool, int]:
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    start = time.perf_counter()
    writer.write(request)
    async with asyncio.timeout(limit_s):
        while not response.complete:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed mid-response")
            parser.feed_data(data)
    end = time.perf_counter()
    status = parser.get_status_code()
    if status != 200:
        raise ValueError(f"status {status}")
    if b"data: [DONE]" not in response.body or response.first_event is None:
        raise ValueError("stream did not end with data: [DONE]")
    return response.first_event - start, end - start, parser.should_keep_alive(), status


async def _connection(host: str, port: int, request: bytes, stats: _Stats, limit_s: float) -> None:
    reader = writer = None
    try:
        while stats.take():
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            try:
                ttfb, total, keep, _ = await _one(reader, writer, request, limit_s)
            except (OSError, ValueError, TimeoutError, httptools.HttpParserError) as exc:
                stats.error(type(exc).__name__ if not isinstance(exc, ValueError) else str(exc))
                writer.close()
                reader = writer = None
                continue
            stats.ttfb.append(ttfb)
            stats.total.append(total)
            if not keep:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def _request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def measure(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    requests: int,
    seconds: float,
    limit_s: float = 10.0,
    warmup: int = 0,
) -> dict[str, object]:
    """Measure streaming TTFB; returns milliseconds (p50, p90, p99) and counts.

    ``limit_s`` bounds each request; ``requests`` and ``seconds`` bound the whole run.
    """
    host, port, request = _request(url, body, headers)
    if warmup:
        warm = _Stats(warmup, time.perf_counter() + seconds)
        await asyncio.gather(
            *(
                _connection(host, port, request, warm, limit_s)
                for _ in range(min(concurrency, warmup))
            )
        )
    stats = _Stats(requests, time.perf_counter() + seconds)
    began = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, stats, limit_s) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - began
    result: dict[str, object] = {
        "concurrency": concurrency,
        "ok": len(stats.ttfb),
        "errors": stats.errors,
        "seconds": round(elapsed, 3),
    }
    if stats.ttfb:
        ms = [t * 1000 for t in stats.ttfb]
        result.update(
            ttfb_p50_ms=statistics.median(ms),
            ttfb_p90_ms=_percentile(ms, 90),
            ttfb_p99_ms=_percentile(ms, 99),
            total_p50_ms=statistics.median(t * 1000 for t in stats.total),
            streams_per_s=len(ms) / elapsed if elapsed else 0.0,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, help="JSON request body (stream is forced on)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()

    data = json.loads(args.body_file.read_bytes()) if args.body_file else dict(DEFAULT_BODY)
    data["stream"] = True
    body = json.dumps(data, separators=(",", ":")).encode()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}

    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    result = runner(
        measure(
            args.url,
            body,
            headers,
            concurrency=args.concurrency,
            requests=args.requests,
            seconds=args.seconds,
            limit_s=args.timeout,
            warmup=args.warmup,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
