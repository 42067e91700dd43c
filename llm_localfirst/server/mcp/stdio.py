"""The MCP stdio transport, with every request that has an id answered.

The SDK's stdio reader drops a line it cannot validate (a request whose
``params`` is not an object, or whose arguments are nested deeper than its JSON
parser allows) without answering it, so the client waits forever. This module
owns the check in front of it: such a request gets a JSON-RPC error with its
id, written whole to the protocol stream, and never reaches the SDK.

Like the SDK, it keeps stray output off the wire while serving: file
descriptor 1 points at stderr and 0 at the null device, and the protocol runs
on private duplicates; both are restored on exit. It must never write anything
but whole JSON-RPC lines to the protocol stream.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, cast

import anyio
import orjson

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["MAX_DEPTH", "rejection", "run_stdio"]

#: Deepest nesting of a request's ``params`` accepted (the SDK's parser stops near 200).
MAX_DEPTH = 128
_INVALID_REQUEST = -32600


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def rejection(line: str | bytes) -> bytes | None:
    """The JSON-RPC error answering ``line``, or None to let the SDK handle it.

    Only requests (an ``id`` and a ``method``) are answered here: a notification
    has no one to answer, and a line that is not JSON has no id to answer with.
    """
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or "method" not in message:
        return None
    request_id = message.get("id")
    if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
        return None
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        problem = "params must be an object"
    elif _depth_over(params, MAX_DEPTH):
        problem = f"params are nested more than {MAX_DEPTH} levels deep"
    else:
        return None
    return orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": _INVALID_REQUEST, "message": problem},
        }
    )


class _CheckedLines:
    """Lines of the protocol stream, minus the requests answered here."""

    def __init__(self, lines: Any, out: Any) -> None:
        self._lines = lines
        self._out = out

    def __aiter__(self) -> AsyncIterator[str]:
        return self._checked()

    async def _checked(self) -> AsyncIterator[str]:
        async for line in self._lines:
            answer = rejection(line) if line.strip() else None
            if answer is None:
                yield line
                continue
            await self._out.write(answer.decode() + "\n")
            await self._out.flush()


@contextlib.contextmanager
def _private_stdio() -> Iterator[tuple[io.TextIOWrapper, io.TextIOWrapper]]:
    """The protocol's own duplicates of fds 0 and 1; fd 1 -> stderr, fd 0 -> null."""
    sys.stdout.flush()
    saved_in, saved_out = os.dup(0), os.dup(1)
    # The input duplicate is never closed: a reader thread may still block on it.
    text_in = io.TextIOWrapper(
        open(os.dup(0), "rb", closefd=False),  # noqa: SIM115
        encoding="utf-8",
        errors="replace",
    )
    text_out = io.TextIOWrapper(
        open(os.dup(1), "wb"),  # noqa: SIM115 (closed in the finally below)
        encoding="utf-8",
        write_through=True,
    )
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield text_in, text_out
    finally:
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        for fd in (saved_in, saved_out, null):
            os.close(fd)
        with contextlib.suppress(OSError, ValueError):
            text_out.close()


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # the one documented way to run it on given streams
    with _private_stdio() as (text_in, text_out):
        stdin, stdout = anyio.wrap_file(text_in), anyio.wrap_file(text_out)
        checked = cast("anyio.AsyncFile[str]", _CheckedLines(stdin, stdout))
        async with stdio_server(stdin=checked, stdout=stdout) as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
