"""A small, bounded, thread-safe connection pool shared by the SQL audit stores.

This module owns lending connections to threads: the writer thread and request
threads each borrow one, so readers never wait behind a write batch on the same
connection. It exists so the stores need no extra dependency (psycopg_pool); it
must never know about SQL or records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["ConnectionPool"]

C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """Lend at most ``max_size`` connections, opening them on demand and reusing them.

    Args:
        connect: Opens a new connection.
        close: Closes a connection; errors are the caller's to avoid.
        max_size: Most connections open at once.
        timeout: Seconds `connection` waits for a free connection before giving up.
        is_usable: Whether a returned connection may be lent again (a broken
            PostgreSQL connection is closed instead).
    """

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        *,
        max_size: int,
        timeout: float,
        is_usable: Callable[[C], bool] = lambda _: True,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._connect = connect
        self._close = close
        self._is_usable = is_usable
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[C]:
        """Borrow a connection for the duration of the ``with`` block.

        Raises:
            RuntimeError: The pool is closed.
            TimeoutError: No connection became free within the pool's timeout.
        """
        self._check_open()
        if not self._slots.acquire(timeout=self._timeout):
            raise TimeoutError(f"no audit database connection free within {self._timeout}s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            try:
                yield conn
            finally:
                with self._lock:
                    keep = not self._closed and self._is_usable(conn)
                    if keep:
                        self._idle.append(conn)
                if not keep:
                    self._close(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close idle connections now and borrowed ones when they come back. Idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the audit store is closed")
