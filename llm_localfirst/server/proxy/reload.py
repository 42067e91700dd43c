"""Policy reload for the proxy: from ``SIGHUP`` and from ``POST /admin/reload``.

This module owns one rule: a new policy is read and validated off the event loop,
then swapped in on the loop in one step, so a request sees either the old policy
or the new one, never a mix. An invalid policy is refused with its exact error and
the old one keeps serving. It never accepts a path from a client: it reloads the
source the server was started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread

from ...config import Settings, policy_from_settings
from ...errors import PolicyError
from ...policy import Policy, load_policy
from ...router import Router

__all__ = ["SETTINGS_SOURCE", "PolicyReloader", "loader_for", "warm_imports"]

log = logging.getLogger("llm_localfirst.proxy")

PolicyLoader = Callable[[], Policy]

#: ``Router.policy_source`` of a policy made from ``LF_*`` settings (``Router.from_env``).
SETTINGS_SOURCE = "<LF_* settings>"


#: The SDK each provider kind imports when its first provider is built.
_SDKS = {"anthropic": "anthropic"}


def warm_imports(policy: Policy) -> Policy:
    """Import the SDKs the policy's destinations need (blocking: call it in a thread).

    Providers are built on first use, on the event loop; importing a large SDK
    there would stall every request in flight for as long as the import takes.
    """
    for dest in policy.destinations.values():
        module = _SDKS.get(dest.provider)
        if module is not None:
            with contextlib.suppress(ImportError):  # reported when the destination is used
                importlib.import_module(module)
    return policy


def loader_for(router: Router) -> tuple[PolicyLoader, str]:
    """How to re-read the router's policy: its file, or the ``LF_*`` settings."""
    source = router.policy_source
    if not source.startswith("<"):
        path = Path(source)
        return (lambda: load_policy(path)), str(path)
    if source == SETTINGS_SOURCE:
        return (lambda: policy_from_settings(Settings.load())), source

    def unreloadable() -> Policy:
        raise PolicyError(
            "the running policy was not read from a file or from LF_* settings, "
            "so there is nothing to reload",
            source=source,
        )

    return unreloadable, source


class PolicyReloader:
    """Reloads a router's policy, one reload at a time.

    Args:
        router: The router to reload.
        loader: Reads and validates the policy (blocking; run in a worker thread).
        source: Where the policy comes from, for logs and answers.
        on_result: Called with ``"ok"`` or ``"error"`` after each attempt (metrics).
    """

    def __init__(
        self,
        router: Router,
        loader: PolicyLoader,
        *,
        source: str,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self._router = router
        self._loader = loader
        self.source = source
        self._on_result = on_result
        self._lock: asyncio.Lock | None = None

    async def reload(self, *, trigger: str) -> Policy:
        """Read, validate and swap in the policy.

        Raises:
            PolicyError: the policy is invalid; the previous one is still active.
            ConfigError: the ``LF_*`` settings behind a settings-made policy are invalid.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                policy = await anyio.to_thread.run_sync(lambda: warm_imports(self._loader()))
            except PolicyError as exc:
                log.warning(
                    "policy reload (%s) rejected; the previous policy stays active: %s",
                    trigger,
                    exc,
                )
                self._report("error")
                raise
            except Exception:
                self._report("error")
                raise
            self._router.reload(policy, source=self.source)
            log.info(
                "policy reloaded from %s (%s): %d destinations, %d rules",
                self.source,
                trigger,
                len(policy.destinations),
                len(policy.rules),
            )
            self._report("ok")
        from .workers import notify_reloaded  # under serve --workers: reload the others too

        notify_reloaded(trigger)
        return policy

    def _report(self, result: str) -> None:
        if self._on_result is not None:
            self._on_result(result)
