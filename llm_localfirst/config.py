"""Settings from ``LF_*`` environment variables and ``.env``, and the default policy they imply.

Only the edges (the CLI, ``Router.from_env()``, the servers' entry points) build
:class:`Settings`; library code takes values as arguments. Nothing here runs at
import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .audit.factory import default_data_dir
from .errors import ConfigError
from .policy import ALL_DETECTORS, Policy, policy_from_data
from .request import DEFAULT_MAX_INPUT_CHARS

__all__ = ["Settings", "default_data_dir", "policy_from_settings"]

#: Friendly cloud names accepted by ``LF_FALLBACK_MODEL`` / ``LF_REASON_MODEL``.
CLOUD_ALIASES: dict[str, tuple[str, str, float, float]] = {
    # name: (provider, model id, USD per 1M input tokens, USD per 1M output tokens)
    "haiku": ("anthropic", "claude-haiku-4-5", 1.0, 5.0),
    "sonnet": ("anthropic", "claude-sonnet-4-5", 3.0, 15.0),
    "opus": ("anthropic", "claude-opus-4-1", 15.0, 75.0),
    "gpt-4o-mini": ("openai", "gpt-4o-mini", 0.15, 0.6),
    "gpt-4o": ("openai", "gpt-4o", 2.5, 10.0),
    "gpt-4.1": ("openai", "gpt-4.1", 2.0, 8.0),
    "gpt-4.1-mini": ("openai", "gpt-4.1-mini", 0.4, 1.6),
    "gpt-5": ("openai", "gpt-5", 1.25, 10.0),
    "gpt-5-mini": ("openai", "gpt-5-mini", 0.25, 2.0),
}


class Settings(BaseModel):
    """Every ``LF_*`` setting, with the seed's defaults. Build it with :meth:`load`.

    A plain pydantic model read by :meth:`load` rather than ``pydantic-settings``:
    importing that library alone cost ~180 ms of CPU, more than the whole ``route``
    command may take (see bench/bench_cli_startup.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    local_base_url: str = "http://localhost:11434/v1"
    local_model_id: str = "qwen2.5:7b"
    fallback_model: str = "haiku"
    reason_model: str = "haiku"
    sensitive_fail_closed: bool = True
    #: Seconds a reachability probe is cached; 0 probes before every decision.
    probe_ttl: float = Field(default=30.0, ge=0, le=86_400)
    policy: Path | None = None
    data_dir: Path | None = None
    audit_url: str | None = None
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_input_chars: int = Field(default=DEFAULT_MAX_INPUT_CHARS, ge=1)
    proxy_keys: SecretStr | None = None
    admin_token: SecretStr | None = None
    mcp_token: SecretStr | None = None
    cors_origins: str = ""
    #: 0.2.0's ``{"haiku": [0.8, 4.0]}``: USD per million input / output tokens by
    #: destination name, over the policy's ``price`` (``LF_PRICES``).
    prices: str | None = None
    #: 0.2.0's per-process ceilings on cloud use (``LF_MAX_CLOUD_*``), period ``total``.
    max_cloud_calls: int | None = Field(default=None, gt=0)
    max_cloud_tokens: int | None = Field(default=None, gt=0)
    max_cloud_cost: float | None = Field(default=None, gt=0)
    #: Extra ``Host`` values (``name`` or ``name:port``, comma-separated) the servers
    #: accept besides loopback names and the bound host (``LF_ALLOWED_HOSTS``).
    allowed_hosts: str = ""
    #: Extra browser origins (``http://name:port``, comma-separated) allowed to call
    #: the servers; ``LF_CORS_ORIGINS`` entries are allowed too (``LF_ALLOWED_ORIGINS``).
    allowed_origins: str = ""
    #: Seconds a sensitive request's message digests and session stay sensitive;
    #: overrides the policy's ``sensitivity.taint_ttl_s`` (``LF_TAINT_TTL``).
    taint_ttl: float | None = Field(default=None, gt=0, le=366 * 86_400)
    #: Folders the local worker may read, separated by ``os.pathsep`` (``LF_WORKER_ROOTS``).
    worker_roots: str = ""
    #: ``batch`` or ``intent``: whether an intent row is committed before every upstream
    #: attempt; overrides the policy's ``audit.durability`` (``LF_AUDIT_DURABILITY``).
    audit_durability: Literal["batch", "intent"] | None = None

    @field_validator("sensitive_fail_closed")
    @classmethod
    def _always_closed(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "sensitive requests always fail closed in llm-localfirst; "
                "LF_SENSITIVE_FAIL_CLOSED=false is not supported (unset it)"
            )
        return value

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = ".env",
        **overrides: Any,
    ) -> Settings:
        """Read ``LF_*`` from ``.env`` then the environment (which wins), then ``overrides``.

        Args:
            environ: The environment to read (default ``os.environ``).
            env_file: A dotenv file to read first, if it exists (``None`` to skip).
            **overrides: Explicit values by field name (``probe_ttl=5``).

        Raises:
            ConfigError: naming each invalid ``LF_*`` variable or unknown override.
        """
        values: dict[str, Any] = {}
        sources: list[Mapping[str, str | None]] = []
        if env_file is not None and Path(env_file).is_file():
            from dotenv import dotenv_values

            sources.append(dotenv_values(env_file))
        sources.append(os.environ if environ is None else environ)
        for source in sources:
            for key, value in source.items():
                name = key[3:].lower()
                if key[:3].upper() == "LF_" and name in cls.model_fields and value is not None:
                    values[name] = value
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"LF_{'_'.join(str(p) for p in e['loc']).upper()}: "
                f"{str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigError(f"invalid settings: {problems}") from None

    @property
    def resolved_data_dir(self) -> Path:
        """``LF_DATA_DIR`` or the platform default."""
        return self.data_dir or default_data_dir()

    def price_table(self) -> dict[str, tuple[float, float]]:
        """``LF_PRICES`` parsed: destination name -> (input, output) USD per million tokens.

        Raises:
            ConfigError: not a JSON object of ``[input, output]`` pairs.
        """
        if not self.prices:
            return {}
        import json

        try:
            raw = json.loads(self.prices)
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            table = {}
            for name, pair in raw.items():
                in_p, out_p = pair
                if isinstance(in_p, bool) or isinstance(out_p, bool) or min(in_p, out_p) < 0:
                    raise ValueError(name)
                table[str(name)] = (float(in_p), float(out_p))
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "invalid settings: LF_PRICES: expected a JSON object of [input, output] USD "
                f"per million tokens, e.g. '{{\"haiku\": [0.8, 4.0]}}' ({exc})"
            ) from None
        return table

    def proxy_key_list(self) -> tuple[str, ...]:
        """Client keys accepted by the proxy (``LF_PROXY_KEYS``, names dropped)."""
        return tuple(key for _, key in self.proxy_named_keys())

    def proxy_named_keys(self) -> tuple[tuple[str, str], ...]:
        """``(name, key)`` pairs of ``LF_PROXY_KEYS``.

        ``LF_PROXY_KEYS`` is comma-separated ``name:key`` pairs (``alice:sk-a,bob:sk-b``),
        bare keys (named ``key1``, ``key2``... by position), or ``@/path/to/keys`` (also
        a plain path to an existing file): one ``name:key`` per line, ``#`` comments.
        The audit log and budgets see the name, never the key.

        Raises:
            ConfigError: the keys file cannot be read, or a name is used twice.
        """
        raw = self.proxy_keys.get_secret_value().strip() if self.proxy_keys else ""
        if not raw:
            return ()
        path = Path(raw[1:] if raw.startswith("@") else raw).expanduser()
        if raw.startswith("@") or ("," not in raw and os.sep in raw and path.is_file()):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(
                    f"invalid settings: LF_PROXY_KEYS: cannot read the keys "
                    f"file {path}: {exc.strerror}"
                ) from None
            entries = [ln.split("#", 1)[0].strip() for ln in lines]
        else:
            entries = [e.strip() for e in raw.split(",")]
        pairs: list[tuple[str, str]] = []
        for entry in entries:
            if not entry:
                continue
            name, sep, key = entry.partition(":")
            name, key = (name.strip(), key.strip()) if sep else (f"key{len(pairs) + 1}", entry)
            if not name or not key:
                raise ConfigError(
                    "invalid settings: LF_PROXY_KEYS: each entry is name:key or a bare key"
                )
            if any(n == name for n, _ in pairs):
                raise ConfigError(
                    f"invalid settings: LF_PROXY_KEYS: the name {name!r} is used twice"
                )
            pairs.append((name, key))
        return tuple(pairs)


def _cloud_destination(name: str) -> dict[str, Any]:
    if name in CLOUD_ALIASES:
        provider, model, price_in, price_out = CLOUD_ALIASES[name]
        return {
            "provider": provider,
            "model": model,
            "locality": "cloud",
            "price": {"input": price_in, "output": price_out},
        }
    if name.startswith("claude"):
        return {"provider": "anthropic", "model": name, "locality": "cloud"}
    if name.startswith(("gpt-", "o1", "o3", "o4")):
        return {"provider": "openai", "model": name, "locality": "cloud"}
    raise ConfigError(
        f"unknown cloud model {name!r}; use one of {', '.join(CLOUD_ALIASES)}, "
        "a claude-* or gpt-* model id, or write a policy file (LF_POLICY)"
    )


def policy_from_settings(settings: Settings) -> Policy:
    """The default policy the ``LF_*`` variables describe.

    ``local`` is the local OpenAI-compatible server; ``kind: reason`` goes to
    ``LF_REASON_MODEL``; everything else prefers ``local`` and falls back to
    ``LF_FALLBACK_MODEL``. All built-in detectors are on.

    Raises:
        ConfigError: an unknown cloud model name.
        PolicyError: e.g. ``LF_LOCAL_BASE_URL`` points at a public host.
    """
    destinations: dict[str, Any] = {
        "local": {
            "provider": "openai",
            "base_url": settings.local_base_url,
            "model": settings.local_model_id,
            "locality": "local",
            "price": {"input": 0, "output": 0},
        },
    }
    for name in dict.fromkeys([settings.fallback_model, settings.reason_model]):
        destinations[name] = _cloud_destination(name)
    data = {
        "version": 1,
        "destinations": destinations,
        "sensitivity": {"detectors": list(ALL_DETECTORS)},
        "rules": [
            {
                "name": "reasoning goes to the cloud",
                "when": {"kind": "reason"},
                "to": [settings.reason_model],
                "fallback": ["local"],
            }
        ],
        "default": {"to": ["local"], "fallback": [settings.fallback_model]},
    }
    return policy_from_data(data, source="<LF_* settings>", prices=settings.price_table())
