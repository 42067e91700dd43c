"""The values that flow through the routing core: Request in, Decision and Result out.

Every face (Python, CLI, MCP, proxy, worker) turns its input into one
:class:`Request`. This module owns those value types and their validation; it
performs no I/O and imports nothing heavy.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidRequest

__all__ = ["Completion", "Decision", "Kind", "Message", "Request", "StreamChunk", "Usage"]

Message = Mapping[str, Any]
"""An OpenAI-style chat message: ``{"role": ..., "content": ...}``."""

#: Default ceiling on the characters of one request (prompt + source + messages).
DEFAULT_MAX_INPUT_CHARS = 4_000_000

#: Values of a sensitivity header (``x-lf-sensitive``) that mean "not sensitive".
#: The true spellings are ``true``, ``1``, ``yes`` and ``on`` (case-insensitive);
#: any other value, and any true occurrence among several, counts as sensitive.
FALSE_HEADER_VALUES = frozenset({"", "false", "0", "no", "off"})
TRUE_HEADER_VALUES = frozenset({"true", "1", "yes", "on"})


#: What a tag may look like (every face): it is stored in the audit log and exported.
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9._:/-]{0,63}")
#: Most tags one request may carry.
MAX_TAGS = 32


def check_tags(tags: Sequence[str], param: str) -> None:
    """Refuse more than `MAX_TAGS` tags, or a tag that is not 1-64 of ``a-z0-9._:/-``.

    Raises:
        InvalidRequest: naming ``param``.
    """
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"{param} holds more than {MAX_TAGS} tags", param=param)
    for tag in tags:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag.strip().lower()):
            raise InvalidRequest(
                f"{param}: each tag is 1-64 characters of a-z, 0-9, '.', '_', ':', '/', '-'",
                param=param,
            )


def header_says_sensitive(value: str) -> bool:
    """Whether a sensitivity header's value marks the request sensitive.

    Repeated headers arrive joined by commas (RFC 9110), so each comma-separated
    item counts: one true item is enough, and an unrecognised item fails closed.
    An empty value (or only empty items) is "not sensitive".
    """
    return any(item.strip().lower() not in FALSE_HEADER_VALUES for item in value.split(","))


class Kind(enum.StrEnum):
    """What sort of work a request is: bulk text labour, hard reasoning, or let the policy pick."""

    BULK = "bulk"
    REASON = "reason"
    AUTO = "auto"

    @classmethod
    def parse(cls, value: Kind | str) -> Kind:
        """Accept a ``Kind`` or its string value.

        Raises:
            InvalidRequest: for any other value.
        """
        if isinstance(value, Kind):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise InvalidRequest(
                f"unknown kind {value!r}; expected one of: bulk, reason, auto", param="kind"
            ) from None


def _text_of(content: Any) -> str:
    """The text of a message ``content``: a string or a list of OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return str(content)


def check_content_parts(content: Any, where: str) -> None:
    """Refuse content parts that no upstream API accepts (``null``, booleans, nested arrays).

    Strings and objects are content parts; a bare number is let through here and
    counted as unreadable by the egress scan (it could encode anything).

    Raises:
        InvalidRequest: a malformed part, naming its position.
    """
    if not isinstance(content, list):
        return
    for j, part in enumerate(content):
        if part is None or isinstance(part, (bool, list, tuple)):
            raise InvalidRequest(
                f"{where}.content[{j}] must be a content part object (e.g. "
                '{"type": "text", "text": "..."}), not '
                + type(part).__name__.replace("NoneType", "null"),
                param=f"{where}.content[{j}]",
            )


def _has_content(content: Any) -> bool:
    """Text that is not blank, or any content part (an image alone is a prompt)."""
    if isinstance(content, list):
        return bool(content)
    return bool(_text_of(content).strip())


def message_text(message: Message) -> str:
    """A message's content plus the tool-call arguments it carries: all of it is prompt text."""
    text = _text_of(message.get("content"))
    calls = message.get("tool_calls")
    legacy = message.get("function_call")
    if not calls and not legacy:
        return text
    args = [text] if text else []
    for call in [*(calls if isinstance(calls, list) else ()), {"function": legacy}]:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
            args.append(function["arguments"])
    return "\n".join(args)


@dataclass(frozen=True, slots=True)
class Request:
    """One request to route, whatever face it came through.

    Attributes:
        messages: The chat messages to send (system/user/assistant/tool).
        kind: The kind of work; ``auto`` lets the policy choose.
        model: ``"auto"`` or an allowlisted destination name.
        sensitive: Declared sensitive by the caller (flag).
        tags: Free labels that rules and the sensitivity policy can match.
        headers: Lower-cased request headers (proxy) or their equivalent.
        metadata: String metadata that rules can match.
        ab_key: Makes weighted arms sticky: the same key always gets the same arm.
        face: Which face produced the request (python, cli, mcp, proxy, worker).
        max_tokens: Upper bound on generated tokens, if any.
        temperature: Sampling temperature, if any.
        extra: Provider-specific body fields passed through (tools, stop, ...).
        body: For non-chat endpoints (completions, embeddings, responses): the exact
            body that will be sent upstream. ``None`` for chat, whose body is
            :meth:`chat_body`.
        session: A conversation id (``x-lf-session``, the MCP session, ``session=``):
            once sensitive, a session stays sensitive for the taint TTL.
        local_only: Run only on a local destination (the worker's calls). The policy
            intersects its candidates with the local destinations; unlike
            ``sensitive`` it says where, not what the text is, so it adds no
            sensitivity reason. ``True`` (any local destination, the rule's first)
            or a tuple of local destination names, tried in that order.
        client_key: The name of the proxy key that sent it (``LF_PROXY_KEYS``
            ``name:key``), never the key; budgets can be scoped to it.
    """

    messages: tuple[Message, ...]
    kind: Kind = Kind.AUTO
    model: str = "auto"
    sensitive: bool = False
    tags: frozenset[str] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    ab_key: str | None = None
    face: str = "python"
    max_tokens: int | None = None
    temperature: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    session: str | None = None
    local_only: bool | tuple[str, ...] = False
    client_key: str | None = None

    @classmethod
    def build(
        cls,
        prompt: str | None = None,
        *,
        source: str | None = None,
        system: str | None = None,
        messages: Sequence[Message] | None = None,
        kind: Kind | str = Kind.AUTO,
        model: str | None = None,
        sensitive: bool = False,
        tags: Sequence[str] | frozenset[str] = (),
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ab_key: str | None = None,
        face: str = "python",
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        session: str | None = None,
        local_only: bool | Sequence[str] = False,
        client_key: str | None = None,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        allow_empty: bool = False,
    ) -> Request:
        """Validate the loose arguments every face accepts and build a Request.

        The ``source`` is appended to the prompt as a delimited block, the way the
        seed's ``complete(prompt, source=...)`` does.

        Raises:
            InvalidRequest: empty prompt, oversized input, wrong types, malformed
                content parts.
        """
        if prompt is not None and not isinstance(prompt, str):
            raise InvalidRequest("prompt must be a string", param="prompt")
        if source is not None and not isinstance(source, str):
            raise InvalidRequest("source must be a string", param="source")
        if not isinstance(sensitive, bool):
            raise InvalidRequest("sensitive must be a boolean", param="sensitive")
        msgs: list[Message] = []
        if system:
            msgs.append({"role": "system", "content": system})
        if messages:
            for i, m in enumerate(messages):
                if not isinstance(m, Mapping) or "role" not in m:
                    raise InvalidRequest(
                        f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]"
                    )
                check_content_parts(m.get("content"), f"messages[{i}]")
                msgs.append(m)
        if prompt is not None or source is not None:
            text = prompt or ""
            if source is not None:
                text = f"{text}\n\n<source>\n{source}\n</source>" if text else source
            msgs.append({"role": "user", "content": text})
        if not allow_empty and not any(_has_content(m.get("content")) for m in msgs):
            raise InvalidRequest(
                "the prompt is empty: give a prompt, a source or messages", param="prompt"
            )
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
        if session is not None and (not isinstance(session, str) or len(session) > 256):
            raise InvalidRequest(
                "session must be a string of at most 256 characters", param="session"
            )
        if not isinstance(local_only, bool) and (
            isinstance(local_only, str)
            or not local_only
            or not all(isinstance(n, str) and n for n in local_only)
        ):
            raise InvalidRequest(
                "local_only must be a boolean or a list of destination names", param="local_only"
            )
        request = cls(
            messages=tuple(msgs),
            kind=Kind.parse(kind),
            model=(model or "auto").strip() or "auto",
            sensitive=sensitive,
            tags=frozenset(t.strip().lower() for t in tags if t and t.strip()),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            metadata=dict(metadata or {}),
            ab_key=ab_key,
            face=face,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=dict(extra or {}),
            body=body,
            session=session or None,
            local_only=local_only if isinstance(local_only, bool) else tuple(local_only),
            client_key=client_key,
        )
        if request.input_chars > max_input_chars:
            raise InvalidRequest(
                f"input is {request.input_chars} characters; the limit is {max_input_chars}",
                param="source",
            )
        return request

    def chat_body(self) -> dict[str, Any]:
        """The OpenAI chat body: pass-through fields, messages, sampling options."""
        body: dict[str, Any] = dict(self.extra)
        body["messages"] = [dict(m) for m in self.messages]
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def outbound(self) -> Mapping[str, Any]:
        """What will leave this machine: the body sent upstream (what the scan reads).

        Providers that speak another wire protocol (Anthropic) translate this body;
        the translation only moves its strings.
        """
        return self.body if self.body is not None else self.chat_body()

    def texts(self) -> list[str]:
        """The text of every message, in order (what the detectors scan)."""
        return [message_text(m) for m in self.messages]

    @property
    def input_chars(self) -> int:
        """Characters of message text in the request."""
        return sum(len(t) for t in self.texts())

    @property
    def estimated_tokens(self) -> int:
        """Estimated input tokens: one token per 4 characters, rounded up (documented estimate)."""
        return (self.input_chars + 3) // 4

    def prompt_sha256(self) -> str:
        """SHA-256 of the message text: the audit log stores this instead of the text."""
        digest = hashlib.sha256()
        for text in self.texts():
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        return digest.hexdigest()


@dataclass(slots=True)
class Decision:
    """Where a request goes and why. Returned by ``Router.decide`` without calling a model.

    Treat it as a value (use ``dataclasses.replace`` to derive one). It is not
    ``frozen`` only because a frozen dataclass costs ~1.7 µs more to build, a fifth
    of ``decide()`` (bench/bench_decide.py).

    Attributes:
        target: ``"local"`` or ``"cloud"``: the locality of the chosen destination.
        destination: The allowlisted destination name.
        model: The concrete model id sent to that destination.
        reason: One human sentence explaining the choice.
        fell_back: True when the preferred destination was down and a fallback was chosen.
        rule: The policy rule that matched (``"default"`` if none did).
        arm: The weighted arm picked inside the rule, when it had several.
        sensitive: Whether the request counted as sensitive.
        sensitive_reasons: Why (``flag``, ``header:x-lf-sensitive``, ``tag:pii``,
            ``rule:<name>``, ``detector:email``, ``detector_error``).
        chain: Candidate destinations in the order they will be tried.
        detectors: Detector names that fired (never the matched text).
        classifier_label: The opt-in classifier's label (``None``: off or it failed).
        classifier_ms: How long the classifier took (0 when served from its cache).
        classifier_cached: Whether the label came from the classifier's digest cache.
        budget: The budget that moved this request to a local destination, if one did.
    """

    target: Literal["local", "cloud"]
    destination: str
    model: str
    reason: str
    fell_back: bool = False
    rule: str | None = None
    arm: str | None = None
    sensitive: bool = False
    sensitive_reasons: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    classifier_label: str | None = None
    classifier_ms: float | None = None
    classifier_cached: bool = False
    budget: str | None = None

    @property
    def is_local(self) -> bool:
        """True when the chosen destination is local."""
        return self.target == "local"

    def __str__(self) -> str:
        flags = []
        if self.fell_back:
            flags.append("fell back")
        if self.sensitive:
            flags.append("sensitive: " + ", ".join(self.sensitive_reasons))
        extra = f" [{'; '.join(flags)}]" if flags else ""
        where = f"{self.target}:{self.destination} ({self.model})"
        return f"{where} via {self.rule}: {self.reason}{extra}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (used by ``--json``, MCP and the proxy headers)."""
        return {
            "target": self.target,
            "destination": self.destination,
            "model": self.model,
            "reason": self.reason,
            "fell_back": self.fell_back,
            "rule": self.rule,
            "arm": self.arm,
            "sensitive": self.sensitive,
            "sensitive_reasons": list(self.sensitive_reasons),
            "chain": list(self.chain),
            "detectors": list(self.detectors),
            "classifier_label": self.classifier_label,
            "classifier_ms": self.classifier_ms,
            "classifier_cached": self.classifier_cached,
            "budget": self.budget,
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the destination (or estimated when it reports none)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def as_dict(self) -> dict[str, int]:
        """``input_tokens``, ``output_tokens`` and ``total_tokens``."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of ``Router.complete``.

    Attributes:
        text: The generated text.
        decision: The routing decision (after any failover, ``destination`` is the one
            that answered).
        usage: Token counts.
        audit_id: The id of the audit row for this request.
        finish_reason: Why generation stopped, as the destination reported it.
        raw: The destination's response body, translated to OpenAI chat shape.
    """

    text: str
    decision: Decision
    usage: Usage
    audit_id: str
    finish_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One piece of a streamed completion."""

    text: str
    finish_reason: str | None = None
    raw: Mapping[str, Any] | None = None
