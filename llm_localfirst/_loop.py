"""Event-loop plumbing: the sync API's private loop thread, and per-loop client caches.

A private event loop on a daemon thread, so the sync API can reuse pooled async clients.

``Router.complete()`` and ``Router.decide()`` are synchronous; they run their
coroutine here rather than in a fresh ``asyncio.run`` each time, which would
throw away every pooled connection. The thread starts on first use, never at
import or construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on one background event loop."""

    def __init__(self, name: str = "llm-localfirst") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=main, name=self._name, daemon=True)
                thread.start()
                ready.wait(10)
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the background loop and wait for its result."""
        if self._thread is not None and threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("sync Router methods cannot be called from the router's own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return future.result(timeout)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the background loop without waiting (closing, clean-up)."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    @property
    def started(self) -> bool:
        """True once the loop thread exists."""
        return self._loop is not None

    def stop(self) -> None:
        """Stop the loop and join the thread (idempotent)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()


class PerLoop(Generic[T]):
    """One value per event loop (a client, a pool), closed with its loop.

    Clients are bound to the loop that made them, so a provider keeps one per loop.
    Entries are keyed weakly by loop, and each value is closed when its loop shuts
    down (``asyncio.run`` finalises async generators before closing the loop; a parked
    generator per value hooks that) or when :meth:`aclose` runs. Nothing leaks per
    ``asyncio.run``.

    Args:
        make: Builds the value (called on the running loop).
        close: Closes one value (sync or async).
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None] | None]) -> None:
        self._make = make
        self._close = close
        self._entries: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        """The running loop's value, made on first use."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            value = self._make()
            guard = self._closing(loop, value)
            with contextlib.suppress(StopIteration):  # run it to its yield: the loop
                guard.asend(None).send(None)  # now finalises it at shutdown
            entry = self._entries[loop] = (value, guard)
        return entry[0]

    def values(self) -> list[T]:
        """Every live value (all loops)."""
        return [value for value, _ in self._entries.values()]

    async def _closing(
        self, loop: asyncio.AbstractEventLoop, value: T
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            # Forget the entry: the generator refers to its loop, so keeping it would
            # keep a closed loop (and its closed pool) alive forever.
            entry = self._entries.get(loop)
            if entry is not None and entry[0] is value:
                del self._entries[loop]
            result = self._close(value)
            if result is not None:
                await result

    async def aclose(self) -> None:
        """Close every value: this loop's now, other running loops' on their own loop."""
        current = asyncio.get_running_loop()
        entries = list(self._entries.items())
        self._entries = weakref.WeakKeyDictionary()
        for loop, (_, guard) in entries:
            if loop is current:
                await guard.aclose()
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # it closed meanwhile
                    asyncio.run_coroutine_threadsafe(guard.aclose(), loop)
