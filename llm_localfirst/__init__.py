"""llm-localfirst: keep sensitive data and bulk text labour on your own models.

Importing this package does no work: no network, no client construction, no
environment parsing, and no provider SDK, web framework or agent framework is
loaded. ``Router.from_env()`` is where configuration is read.
"""

from __future__ import annotations

from .budget import Budget, Ledger, Price
from .config import Settings
from .errors import (
    AuditError,
    BudgetExceeded,
    ConfigError,
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PolicyError,
    PrivacyViolation,
    RoutingError,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamTimeout,
    UsageError,
)
from .policy import Policy, load_policy, parse_policy
from .request import Completion, Decision, Kind, Request, StreamChunk, Usage
from .router import Router

#: This project's own line, above the unrelated ``llm-localfirst`` 0.2.0 that another author
#: published on PyPI. ``llm-localfirst --version`` also prints ``(local-first router: serve,
#: mcp, policy, audit)`` and where it is installed, which that package never prints.
__version__ = "0.3.0"

__all__ = [
    "AuditError",
    "Budget",
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "Decision",
    "InvalidRequest",
    "Kind",
    "Ledger",
    "LocalFirstError",
    "LocalUnavailable",
    "ModelNotAllowed",
    "Policy",
    "PolicyError",
    "Price",
    "PrivacyViolation",
    "Request",
    "Router",
    "RoutingError",
    "Settings",
    "StreamChunk",
    "UnsupportedEndpoint",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "UsageError",
    "Worker",
    "__version__",
    "load_policy",
    "parse_policy",
]


def __getattr__(name: str) -> object:
    # Worker lives in agents/, which imports the core; import it on first access.
    if name == "Worker":
        from .agents.worker import Worker

        return Worker
    raise AttributeError(f"module 'llm_localfirst' has no attribute {name!r}")
