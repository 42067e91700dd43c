"""A routed stream: the decision is known before the first chunk; closing early cancels.

This module owns :class:`RoutedStream`, what ``router.lifecycle.stream`` returns
(``Router.astream`` reads it as text chunks). It never decides or fails over (the
lifecycle did that before the first chunk); it only relays chunks, accounts for them
in the request's :class:`~llm_localfirst.lifecycle.Outcome`, and has the lifecycle
write the one audit row when the stream ends, fails mid-way, or is closed early.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import LocalFirstError, UpstreamError, UpstreamTimeout
from .providers.base import AttemptFailed
from .request import Decision, Request

if TYPE_CHECKING:
    from .lifecycle import Lifecycle, Outcome

__all__ = ["RoutedStream", "chunk_text", "exc_decision_id"]


def exc_decision_id(exc: LocalFirstError, audit_id: str) -> None:
    """Attach the audit id to an error so faces can report it."""
    exc.decision_id = audit_id


def chunk_text(chunk: Mapping[str, Any]) -> tuple[str, str | None]:
    """The text and finish reason of one OpenAI ``chat.completion.chunk``."""
    choices = chunk.get("choices") or []
    if not choices:
        return "", None
    choice = choices[0]
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, Mapping) else None
    return (content if isinstance(content, str) else ""), choice.get("finish_reason")


class RoutedStream:
    """An open, routed stream of OpenAI ``chat.completion.chunk`` dicts.

    The decision is known (``.decision``) before the first chunk is read, so a
    face can send headers. Closing it early (client disconnect) cancels the
    upstream request and audits the request as ``cancelled``.
    """

    def __init__(
        self,
        lifecycle: Lifecycle,
        request: Request,
        out: Outcome,
        iterator: AsyncIterator[Mapping[str, Any]],
        first: Mapping[str, Any],
        *,
        release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._release = release
        self._request = request
        self._out = out
        self.audit_id = out.audit_id
        self._iterator = iterator
        self._first: Mapping[str, Any] | None = first or None
        self._done = False
        assert out.decision is not None
        self.decision: Decision = out.decision

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> Mapping[str, Any]:
        if self._done:
            raise StopAsyncIteration
        if self._first is not None:
            chunk, self._first = self._first, None
        else:
            try:
                chunk = await self._iterator.__anext__()
            except StopAsyncIteration:
                await self._finish("ok")
                raise
            except AttemptFailed as failure:
                self._lifecycle.router.health.record_failure(self.decision.destination)
                attempts = self._out.attempts
                if attempts:  # the attempt that answered failed after all
                    attempts[-1] = dataclasses.replace(
                        attempts[-1],
                        outcome=failure.outcome,
                        status=failure.status,
                        error=str(failure)[:300],
                    )
                error_type = UpstreamTimeout if failure.outcome == "timeout" else UpstreamError
                error = error_type(
                    f"stream failed mid-way: {failure}",
                    destination=self.decision.destination,
                    status=failure.status,
                    attempts=tuple(attempts),
                )
                exc_decision_id(error, self.audit_id)
                await self._finish("error", error)
                raise error from None
        self._account(chunk)
        return chunk

    def _account(self, chunk: Mapping[str, Any]) -> None:
        text, _ = chunk_text(chunk)
        self._out.completion_chars += len(text)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self._out.tokens_in = int(usage.get("prompt_tokens") or 0) or self._out.tokens_in
            self._out.tokens_out = int(usage.get("completion_tokens") or 0) or self._out.tokens_out

    async def _finish(self, outcome: str, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._out.outcome = outcome
        self._out.error = error
        if outcome == "cancelled" and self._out.attempts:
            last = self._out.attempts[-1]
            self._out.attempts[-1] = dataclasses.replace(last, outcome="cancelled")
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            # Closing a half-read upstream may fail; the audit row below still records it.
            with contextlib.suppress(AttemptFailed, RuntimeError):
                await closer()
        if self._release is not None:
            await self._release()
        self._lifecycle.record(self._request, self._out)

    async def aclose(self) -> None:
        """Stop early: cancel the upstream request and audit as ``cancelled``."""
        await self._finish("cancelled")

    async def __aenter__(self) -> RoutedStream:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._done:
            await self._finish(
                "cancelled"
                if exc is None or isinstance(exc, (asyncio.CancelledError, GeneratorExit))
                else "error",
                exc if isinstance(exc, BaseException) else None,
            )
