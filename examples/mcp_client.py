"""An MCP client for ``llm-localfirst mcp``: launch it over stdio, list, route, delegate, audit.

    python examples/mcp_client.py            # the server uses your LF_* settings
    python examples/mcp_client.py --offline  # the server routes to fake models on loopback

This is what Claude Desktop or an IDE does with ``claude_desktop_config.example.json``:
start ``llm-localfirst mcp`` as a subprocess, talk MCP over its stdin/stdout with the
SDK's ``stdio_client``, initialise, list the tools, preview a routing decision with
``route``, hand text to the local model with ``delegate_to_worker`` (when offline, or
when your local model is up) and read what was decided from ``audit://decisions``.
With ``--offline`` the server gets ``LF_POLICY`` naming a policy over two
``FakeUpstream`` fakes and a throw-away ``LF_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_types import CallToolResult, TextContent

#: Bounds every exchange: starting the server, each call, shutting down.
TIMEOUT_SECONDS = 120


def server_command() -> str:
    """The ``llm-localfirst`` console script of this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "llm-localfirst"
    return str(beside) if beside.exists() else (shutil.which("llm-localfirst") or "llm-localfirst")


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def on_progress(progress: float, total: float | None, message: str | None) -> None:
    print(
        f"     progress {progress:g}/{total:g}: {message}"
        if total
        else f"     progress {progress:g}"
    )


async def session(params: StdioServerParameters, source: str) -> None:
    with anyio.fail_after(TIMEOUT_SECONDS):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            hello = await client.initialize()
            print(
                f"connected to {hello.server_info.name} {hello.server_info.version} "
                f"(MCP {hello.protocol_version})"
            )

            print("\ntools:")
            for tool in (await client.list_tools()).tools:
                summary = textwrap.shorten((tool.description or "").split(". ")[0], 90)
                print(f"  {tool.name:<20} {summary}")

            print("\nroute (a dry run: no model is called):")
            for args in (
                {"prompt": "Summarize these meeting notes", "kind": "bulk"},
                {"prompt": "Prove the scheduler cannot deadlock", "kind": "reason"},
                {"prompt": "Redact this customer record", "sensitive": True},
            ):
                result = await client.call_tool("route", args)
                print(f"  {json.dumps(args)}\n     -> {text_of(result)}")
            local_up = not result.is_error  # the sensitive route is refused when local is down

            if local_up:
                print("\ndelegate_to_worker (runs on the local model only):")
                result = await client.call_tool(
                    "delegate_to_worker",
                    {
                        "task": "List every decision with its owner, one bullet each.",
                        "source": source,
                        "task_kind": "summarize",
                    },
                    progress_callback=on_progress,
                )
                data: dict[str, Any] = result.structured_content or {}
                print(
                    f"     {data.get('chunks')} piece(s) on {data.get('destination')} "
                    f"({data.get('model')}):"
                )
                print("     " + text_of(result).replace("\n", "\n     "))
            else:
                print(
                    "\nthe local model is down: skipping delegate_to_worker "
                    "(it would fail closed, sending nothing)"
                )

            print("\naudit://decisions (newest first; no prompt text is ever stored):")
            resource = await client.read_resource("audit://decisions")
            content = resource.contents[0]
            decisions = json.loads(getattr(content, "text", "{}"))["decisions"]
            for row in decisions[:8]:
                where = f"{row['locality'] or '-'}:{row['destination'] or '-'}"
                print(
                    f"  {row['ts'][11:19]}  {row['face']:<6} {row['endpoint']:<8} "
                    f"{row['outcome']:<8} {where}"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="the server routes to fake local/cloud models (no model, no key)",
    )
    args = parser.parse_args(argv)

    from _offline import NOTES

    with contextlib.ExitStack() as stack:
        if args.offline:
            from _offline import fake_models, write_policy

            local, cloud = stack.enter_context(fake_models())
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env = {
                "LF_POLICY": str(write_policy(local, cloud, tmp)),
                "LF_DATA_DIR": str(tmp / "data"),
                "LF_FAKE_CLOUD_KEY": os.environ["LF_FAKE_CLOUD_KEY"],
            }
        else:
            # The SDK passes the server only a safe default environment; add ours.
            env = {
                k: v
                for k, v in os.environ.items()
                if k.startswith(("LF_", "ANTHROPIC_", "OPENAI_"))
            }
        params = StdioServerParameters(command=server_command(), args=["mcp"], env=env)
        print(f"launching: {params.command} {' '.join(params.args)}")
        anyio.run(session, params, NOTES)
        if args.offline:
            print(
                f"\nmodel calls: local {len(local.model_calls())}, cloud {len(cloud.model_calls())}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
