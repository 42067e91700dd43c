"""Sensitivity that sticks: digests of messages and session ids seen in sensitive requests.

When a request is sensitive for any reason, the normalised digests of its
conversation messages and its session id are remembered in the audit store (so
every instance sharing the store knows them) for the policy's ``taint_ttl_s``.
A later request carrying any of those messages is sensitive (reason ``taint``),
and so is any request of a remembered session (reason ``session``).

Normalisation: the role, then the message's text (content and tool-call
arguments) with runs of whitespace collapsed, hashed with BLAKE2b-128. System
and developer messages are not remembered: they are an application's shared
instructions, and remembering them would make every conversation of that
application sensitive; the detectors still read them on every request.

What it must never do: keep or log message text (only digests leave this
module), or lower sensitivity: a store that cannot answer makes the request
sensitive (``taint_error``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Collection, Iterable
from typing import Any, Protocol

from ..request import Message, message_text

__all__ = ["TaintStore", "alookup", "lookup", "message_digests", "remember"]

log = logging.getLogger("llm_localfirst")

#: Roles whose messages are not remembered (shared application instructions).
_UNREMEMBERED_ROLES = frozenset({"system", "developer"})


class TaintStore(Protocol):
    """The part of an audit store that remembers sensitive digests and sessions."""

    def taint_add(
        self, digests: Collection[str], sessions: Collection[str], *, ttl_s: float
    ) -> None:
        """Remember ``digests`` and ``sessions`` as sensitive for ``ttl_s`` seconds."""
        ...

    def taint_match(self, digests: Collection[str], sessions: Collection[str]) -> str | None:
        """``"taint"``, ``"session"`` or ``None``."""
        ...


def message_digests(messages: Iterable[Message]) -> list[str]:
    """The normalised digests of a conversation's messages (hex; never the text).

    Args:
        messages: Chat messages (``role`` and ``content``; tool calls count as text).

    Returns:
        One 32-digit hex digest per non-empty user, assistant or tool message.
    """
    digests: list[str] = []
    for message in messages:
        role = message.get("role")
        role = role if isinstance(role, str) else ""
        if role in _UNREMEMBERED_ROLES:
            continue
        text = " ".join(message_text(message).split())
        if not text:
            continue
        digest = hashlib.blake2b(digest_size=16)
        digest.update(role.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
        digests.append(digest.hexdigest())
    return digests


def lookup(store: Any, digests: Collection[str], sessions: Collection[str]) -> tuple[str, ...]:
    """The sensitivity reasons the store remembers for these digests and sessions.

    Args:
        store: The audit store; one without ``taint_match`` remembers nothing.
        digests: From :func:`message_digests`.
        sessions: Session ids (empty when the request has none).

    Returns:
        ``("taint",)``, ``("session",)``, ``()``, or ``("taint_error",)`` when the
        store cannot answer (fail closed).
    """
    if not digests and not sessions:
        return ()
    match = getattr(store, "taint_match", None)
    if match is None:
        return ()
    try:
        found = match(digests, sessions)
    except Exception as exc:  # fail closed: an unanswered lookup means sensitive
        log.warning(
            "taint lookup failed (%s); treating the request as sensitive", type(exc).__name__
        )
        return ("taint_error",)
    return (found,) if found in ("taint", "session") else ()


async def alookup(
    store: Any, digests: Collection[str], sessions: Collection[str]
) -> tuple[str, ...]:
    """:func:`lookup` for an event loop: inline when the store's reads are fast, else in a thread.

    A store whose class sets ``inline_reads = True`` (the in-memory store, SQLite in
    WAL mode: a local read that never waits behind a writer) is asked on the loop,
    which saves a thread hop per request; any other store (PostgreSQL: a network
    round trip) is asked in a worker thread so the loop never waits on I/O.

    Returns:
        As :func:`lookup` (failures fail closed, as ``("taint_error",)``).
    """
    if not digests and not sessions:
        return ()
    if getattr(store, "inline_reads", False) is True:
        return lookup(store, digests, sessions)
    return await asyncio.to_thread(lookup, store, digests, sessions)


def remember(
    store: Any, digests: Collection[str], sessions: Collection[str], *, ttl_s: float
) -> None:
    """Remember a sensitive request's digests and session (errors are logged, not raised).

    The request itself is already sensitive, so a failure here cannot let it out;
    it only weakens what a later request inherits.
    """
    if not digests and not sessions:
        return
    add = getattr(store, "taint_add", None)
    if add is None:
        return
    try:
        add(digests, sessions, ttl_s=ttl_s)
    except Exception as exc:
        log.warning("could not remember a sensitive request's digests (%s)", type(exc).__name__)
