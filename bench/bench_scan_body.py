"""Scan cost of a whole outbound body (~8 KB): walk every string, run the detectors.

Measures ``Assessor.content`` (no taint lookup) on a realistic chat body with
tools, a JSON-schema response format, metadata and a multi-turn history, once cold
(the scan cache empty, what a new conversation costs) and warm (long messages
resent by the client are found by digest).

    .venv/bin/python bench/bench_scan_body.py
"""

from __future__ import annotations

import statistics
import time

import orjson

from llm_localfirst import Request, Router
from llm_localfirst.policy import policy_from_data

POLICY = policy_from_data(
    {
        "version": 1,
        "destinations": {
            "local": {
                "provider": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "m",
                "locality": "local",
            }
        },
        "default": {"to": ["local"]},
    },
    source="<bench>",
)


def body(size: int = 8 * 1024) -> dict[str, object]:
    turn = (
        "The quarterly report shows revenue up 4% on last year, with costs flat; "
        "the board asks for a summary of the risks and a plan for the next quarter. "
    )
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a careful analyst."}
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": "Look up a figure in the finance database.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "metric": {"type": "string", "description": "Which metric"},
                        "quarter": {"type": "string", "enum": ["Q1", "Q2", "Q3", "Q4"]},
                    },
                    "required": ["metric"],
                },
            },
        }
        for i in range(4)
    ]
    out: dict[str, object] = {
        "model": "auto",
        "messages": messages,
        "tools": tools,
        "user": "team-finance",
        "metadata": {"app": "reports", "env": "prod"},
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "summary",
                "schema": {
                    "type": "object",
                    "properties": {
                        "risks": {"type": "array", "items": {"type": "string"}},
                        "plan": {"type": "string"},
                    },
                },
            },
        },
    }
    i = 0
    while len(orjson.dumps(out)) < size:
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"({i}) " + turn * 2})
        i += 1
    return out


def main() -> None:
    data = body()
    size = len(orjson.dumps(data))
    router = Router(POLICY, probe_ttl=3600)
    request = Request.build(None, messages=[], allow_empty=True, body=data)
    for label, warm in (("cold (cache cleared)", False), ("warm (history cached)", True)):
        samples = []
        for _ in range(2000):
            if not warm:
                router.lifecycle.assessor.scan_cache.clear()
            started = time.perf_counter()
            router.lifecycle.assessor.content(request)
            samples.append((time.perf_counter() - started) * 1e6)
        samples.sort()
        print(
            f"{label:24} body {size} B: median {statistics.median(samples):7.1f} us, "
            f"p95 {samples[int(len(samples) * 0.95)]:7.1f} us"
        )
    router.close()
    taint_lookup(data)


def taint_lookup(data: dict[str, object]) -> None:
    """The taint lookup every request with messages pays: SQLite, off the event loop."""
    import asyncio
    import tempfile
    from pathlib import Path

    from llm_localfirst.audit import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'audit.db'}", data_dir=Path(tmp))
        router = Router(POLICY, probe_ttl=3600, audit=store)
        messages = data["messages"]
        assert isinstance(messages, list)
        request = Request.build(None, messages=messages, allow_empty=True)
        router.lifecycle.assessor.remember(Request.build("something else", sensitive=True))

        async def run() -> list[float]:
            samples = []
            for _ in range(2000):
                started = time.perf_counter()
                await router.lifecycle.assessor.aassess(request)
                samples.append((time.perf_counter() - started) * 1e6)
            return samples

        scan_only = []
        for _ in range(2000):
            started = time.perf_counter()
            router.lifecycle.assessor.content(request)
            scan_only.append((time.perf_counter() - started) * 1e6)
        inline = []
        for _ in range(2000):
            started = time.perf_counter()
            router.lifecycle.assessor.assess(request)
            inline.append((time.perf_counter() - started) * 1e6)
        samples = asyncio.run(run())
        print(f"{'assess (taint inline)':24} SQLite: median {statistics.median(inline):7.1f} us")
        print(
            f"{'aassess (scan + taint)':24} SQLite: median {statistics.median(samples):7.1f} us "
            f"(scan alone {statistics.median(scan_only):7.1f} us)"
        )
        router.close()


if __name__ == "__main__":
    main()
