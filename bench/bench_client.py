"""Client CPU per request of the HTTP client candidates, against a loopback upstream.

Which HTTP client should the one OpenAI-compatible provider use? Each candidate
POSTs the same chat body to ``bench/proxy/upstream.py`` (uvicorn + httptools, in its
own process, so its CPU is not counted) and reads the whole answer, N times at
concurrency 1 and 16, on uvloop (what ``serve`` runs). Reported: this process's CPU
time (user + system) per request, and the wall-clock p50 at c=1.

Candidates: the lean client (``providers/client.py``, raw and through the provider's
``chat()``), ``httpx2.AsyncClient``, and ``aiohttp.ClientSession`` when importable
(``--aiohttp-path DIR`` adds a directory holding it to ``sys.path``; it is not a
dependency of the project).

Run: ``python bench/bench_client.py [--requests 3000] [--aiohttp-path /tmp/aiohttp_bench]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm_localfirst.providers.base import egress_guard  # noqa: E402
from llm_localfirst.providers.client import Pool  # noqa: E402
from llm_localfirst.providers.openai_compat import OpenAICompatProvider  # noqa: E402
from llm_localfirst.registry import Destination  # noqa: E402

BODY = {"model": "bench-local", "messages": [{"role": "user", "content": "Say hi. " * 8}]}
PAYLOAD = json.dumps(BODY).encode()

Send = Callable[[], Awaitable[bytes]]


@contextlib.contextmanager
def upstream() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/proxy/upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the upstream did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def measure(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """``(CPU µs per request, wall p50 ms)`` after a warm-up."""
    for _ in range(50):
        await send()
    latencies: list[float] = []
    per_task = requests // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            started = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - started)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    return cpu / (per_task * concurrency) * 1e6, statistics.median(latencies) * 1000


async def lean_raw(port: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    pool = Pool("127.0.0.1", port, connect_timeout=5)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: "
        + str(len(PAYLOAD)).encode()
        + b"\r\n\r\n"
        + PAYLOAD
    )

    async def send() -> bytes:
        status, body = await pool.request(request, read_timeout=30)
        assert status == 200
        return body

    async def close() -> None:
        pool.close()

    return send, close


async def lean_provider(port: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    dest = Destination(
        name="bench",
        provider="openai",
        model="bench-local",
        base_url=f"http://127.0.0.1:{port}/v1",
        locality="local",
    )
    provider = OpenAICompatProvider(dest)
    ticket = egress_guard(dest, sensitive=False)

    async def send() -> bytes:
        result = await provider.chat(ticket, BODY)
        return result.text.encode()

    return send, provider.aclose


async def httpx2_client(port: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx2

    client = httpx2.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        trust_env=False,
        limits=httpx2.Limits(max_connections=64, max_keepalive_connections=64),
    )

    async def send() -> bytes:
        response = await client.post(
            "/v1/chat/completions", content=PAYLOAD, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        return response.content

    return send, client.aclose


async def aiohttp_client(port: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", connector=aiohttp.TCPConnector(limit=64)
    )

    async def send() -> bytes:
        async with session.post(
            "/v1/chat/completions", data=PAYLOAD, headers={"content-type": "application/json"}
        ) as response:
            assert response.status == 200
            return await response.read()

    return send, session.close


CANDIDATES = {
    "lean client (providers/client.py)": lean_raw,
    "lean client via provider.chat()": lean_provider,
    "httpx2.AsyncClient": httpx2_client,
    "aiohttp.ClientSession": aiohttp_client,
}


async def run(port: int, requests: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, make in CANDIDATES.items():
        try:
            send, close = await make(port)
        except ImportError:
            print(f"  {name}: not installed, skipped", file=sys.stderr)
            continue
        try:
            cpu1, p50 = await measure(send, requests // 4, 1)
            cpu16, _ = await measure(send, requests, 16)
        finally:
            await close()
        rows.append((name, cpu1, cpu16, p50))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests at c=16")
    parser.add_argument("--aiohttp-path", help="a directory holding aiohttp")
    args = parser.parse_args()
    if args.aiohttp_path:
        sys.path.append(args.aiohttp_path)
    with upstream() as port:
        rows = uvloop.run(run(port, args.requests))
    print(f"client CPU per request, loopback upstream, uvloop; {os.cpu_count()} cores\n")
    print("| client | CPU µs/req c=1 | CPU µs/req c=16 | wall p50 c=1 (ms) |")
    print("|---|---:|---:|---:|")
    for name, cpu1, cpu16, p50 in rows:
        print(f"| {name} | {cpu1:.0f} | {cpu16:.0f} | {p50:.3f} |")


if __name__ == "__main__":
    main()
