"""The one exception tree of llm-localfirst.

Every error the package raises on purpose derives from :class:`LocalFirstError`.
Misuse (a bad policy, bad settings, bad arguments) is kept apart from runtime
outcomes (nothing local is up, a privacy refusal, an upstream failure)::

    LocalFirstError
    ├── UsageError                 the caller or the operator got something wrong
    │   ├── ConfigError            settings / environment
    │   ├── PolicyError            the YAML policy (file, rule, field)
    │   ├── InvalidRequest         a request that cannot be routed as given
    │   │   └── UnsupportedEndpoint  no candidate destination speaks the endpoint
    │   └── ModelNotAllowed        a model string that is not on the allowlist
    └── RoutingError               the request was valid but could not be served
        ├── PrivacyViolation       a sensitive request aimed at a non-local destination
        ├── LocalUnavailable       sensitive (or worker) request, no local destination up
        ├── BudgetExceeded         a cloud budget is spent and its policy says refuse
        └── UpstreamError          every candidate failed (connect, timeout, 5xx, 429, 4xx)
            ├── UpstreamTimeout    ... and the last one failed by timing out
            └── WorkerOutputError  (agents.worker) a worker answer still unusable after a repair
    AuditError                     the audit store failed (locked past its timeout, unreachable)

Each face (Python, CLI, MCP, proxy) turns these into its wire errors in exactly
one place. Messages never contain prompt or completion text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit.record import Attempt

__all__ = [
    "AuditError",
    "BudgetExceeded",
    "ConfigError",
    "InvalidRequest",
    "LocalFirstError",
    "LocalUnavailable",
    "ModelNotAllowed",
    "PolicyError",
    "PrivacyViolation",
    "RoutingError",
    "UnsupportedEndpoint",
    "UpstreamError",
    "UpstreamTimeout",
    "UsageError",
]


class LocalFirstError(Exception):
    """Root of every error llm-localfirst raises on purpose.

    Attributes:
        code: A stable machine-readable code (``snake_case``), used on the wire.
        decision_id: The audit id of the request, once it has been recorded.
    """

    code = "local_first_error"
    decision_id: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(LocalFirstError):
    """The caller or operator supplied something invalid."""

    code = "invalid_usage"


class ConfigError(UsageError):
    """Invalid settings (``LF_*`` environment variables, ``.env``, CLI options)."""

    code = "config_error"


class PolicyError(UsageError):
    """An invalid routing policy.

    Attributes:
        source: The file (or ``"<env>"`` / ``"<string>"``) the policy came from.
        problems: One line per problem, each naming its location
            (``rules[2] 'short prompts': to.0.weight: ...``).
    """

    code = "policy_error"

    def __init__(self, message: str, *, source: str = "<policy>", problems: tuple[str, ...] = ()):
        self.source = source
        self.problems = problems or (message,)
        detail = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid policy {source}: {message}\n{detail}"
            if problems
            else f"invalid policy {source}: {message}"
        )


class InvalidRequest(UsageError):
    """A request that cannot be routed as given (empty prompt, oversized source, bad field).

    Attributes:
        param: The offending parameter, when there is one.
    """

    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ModelNotAllowed(UsageError):
    """The requested model is not an allowlisted destination name (nor ``auto``).

    The allowlist is the SSRF and cost guard: nothing outside it is ever contacted.

    Attributes:
        model: The refused model string (truncated).
        allowed: The names that would have been accepted.
    """

    code = "model_not_allowed"

    def __init__(self, model: str, allowed: tuple[str, ...]) -> None:
        shown = model if len(model) <= 80 else model[:77] + "..."
        self.model = shown
        self.allowed = allowed
        looks_like_url = "://" in model or model.startswith(("/", "www."))
        hint = " (URLs are never accepted as models)" if looks_like_url else ""
        super().__init__(
            f"model {shown!r} is not on the allowlist{hint}; "
            f"use 'auto' or one of: {', '.join(allowed)}"
        )


class RoutingError(LocalFirstError):
    """A valid request that could not be served."""

    code = "routing_error"


class PrivacyViolation(RoutingError):
    """A sensitive request was aimed at a non-local destination and refused.

    Raised by the policy for an explicit cloud model on a sensitive request, by the
    egress guard in front of every network send, and by the Worker for any
    non-local destination.

    Attributes:
        destination: The refused destination name.
        sensitive_reasons: Why the request counted as sensitive.
    """

    code = "privacy_violation"

    def __init__(
        self,
        message: str,
        *,
        destination: str | None = None,
        sensitive_reasons: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.destination = destination
        self.sensitive_reasons = sensitive_reasons


class LocalUnavailable(RoutingError):
    """No local destination could serve a request that must stay local.

    Nothing was sent anywhere: the request failed closed.

    Attributes:
        candidates: The local destinations that were considered.
        rule: The rule that matched, if any.
        sensitive_reasons: Why the request counted as sensitive.
    """

    code = "local_unavailable"

    def __init__(
        self,
        message: str,
        *,
        candidates: tuple[str, ...] = (),
        rule: str | None = None,
        sensitive_reasons: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.rule = rule
        self.sensitive_reasons = sensitive_reasons


class BudgetExceeded(RoutingError):
    """A cloud call was refused because a spend ceiling is used up.

    Fails closed like :class:`PrivacyViolation`: the call is not sent and is not
    quietly moved elsewhere (a budget with ``on_exceeded: local`` moves it to the
    local chain instead of raising).

    Attributes:
        budget: The name of the spent budget.
        destination: The cloud destination the call was bound for.
        limit: The limit that was reached, in its own unit.
        unit: ``usd``, ``tokens`` or ``calls``.
    """

    code = "budget_exceeded"

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        destination: str | None = None,
        limit: float | None = None,
        unit: str | None = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.destination = destination
        self.limit = limit
        self.unit = unit


class UpstreamError(RoutingError):
    """Every candidate destination failed (or one failed in a way failover cannot help).

    Attributes:
        destination: The last destination tried (None if none was).
        status: The last HTTP status seen, if any.
        attempts: Every attempt, in order: ``destination``, ``outcome``
            (``connect_error``, ``timeout``, ``http_5xx``, ...), ``status``,
            ``latency_ms``. ``len(err.attempts)`` is how many were made.
        body: The upstream's error body (OpenAI shape) for a non-retryable 4xx.
        retryable: False when a retry cannot help: every candidate lacks its API key
            (the proxy then sends ``x-should-retry: false``).
    """

    code = "upstream_error"
    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        destination: str | None = None,
        status: int | None = None,
        attempts: tuple[Attempt, ...] = (),
    ) -> None:
        super().__init__(message)
        self.destination = destination
        self.status = status
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        self.body: Mapping[str, Any] | None = None


class UpstreamTimeout(UpstreamError):
    """Every candidate failed and the last one timed out (connect or read).

    Faces map it by type: the proxy answers 504.
    """

    code = "upstream_timeout"


class UnsupportedEndpoint(InvalidRequest):
    """No candidate destination speaks the endpoint (e.g. ``/v1/completions`` on Anthropic).

    Failover skips a destination without the endpoint; this is raised only when
    none of the candidates has it.
    """

    code = "unsupported_endpoint"


class AuditError(LocalFirstError):
    """The audit store could not be read or written (locked past its timeout, unreachable).

    Raised instead of a raw driver error (``sqlite3.OperationalError: database is
    locked``, ``psycopg.OperationalError``) where a caller waits on the store: reads,
    opening a store, and intent records under ``durability: intent`` (a request
    whose intent cannot be committed is not sent).

    Attributes:
        location: The store's path or redacted URL.
    """

    code = "audit_error"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location
