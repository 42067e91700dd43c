"""Fixtures for the worker tests: routers over loopback fakes with a small context window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llm_localfirst import Policy, Router
from llm_localfirst.audit import AuditFilter, AuditRecord
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

#: Small enough that a few thousand characters need splitting.
SMALL_WINDOW = 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def with_window(policy: Policy, window: int, **changes: Any) -> Policy:
    """The policy with the ``local`` destination's context window (and other fields) changed."""
    data = policy.model_dump()
    data["destinations"]["local"]["context_window"] = window
    data["destinations"]["local"].update(changes)
    return type(policy).model_validate(data)


@pytest.fixture
def small_router(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> Iterator[Router]:
    """The offline policy with a 1024-token local window, audit in memory."""
    r = Router(
        with_window(offline_policy(fake_local, fake_cloud), SMALL_WINDOW),
        audit=memory_audit,
        probe_ttl=0.001,
    )
    yield r
    r.close()


@pytest.fixture
def audit_rows(memory_audit: MemoryAuditStore) -> Callable[[Router], list[AuditRecord]]:
    """Flush a router's audit writer and return every model-call row, oldest first.

    The row each delegation adds for the whole run (tag ``delegation``) is left out;
    :func:`delegation_rows` returns those.
    """

    def rows(router: Router) -> list[AuditRecord]:
        router.flush()
        return [
            r
            for r in reversed(memory_audit.query(AuditFilter(limit=1000)))
            if "delegation" not in r.tags
        ]

    return rows


@pytest.fixture
def delegation_rows(memory_audit: MemoryAuditStore) -> Callable[[Router], list[AuditRecord]]:
    """Flush a router's audit writer and return the rows of whole delegations, oldest first."""

    def rows(router: Router) -> list[AuditRecord]:
        router.flush()
        return [
            r
            for r in reversed(memory_audit.query(AuditFilter(limit=1000)))
            if "delegation" in r.tags
        ]

    return rows


def long_text(paragraphs: int = 30, sentences: int = 8) -> str:
    """Deterministic prose with numbered paragraphs and sentences."""
    return "\n\n".join(
        " ".join(
            f"Paragraph {p} sentence {s} says something worth keeping about item {p * s}."
            for s in range(sentences)
        )
        for p in range(paragraphs)
    )
