"""The routing policy: a YAML file in version control, validated, and a pure ``decide``.

This module owns the policy schema, its loading (with precise errors naming the
file, rule and field), the default policy built from ``LF_*`` settings, and
:func:`decide`, which maps a request plus destination health to a
:class:`~llm_localfirst.request.Decision`. ``decide`` performs no I/O. The privacy
pin is applied after rule matching and no rule can undo it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import LocalUnavailable, ModelNotAllowed, PolicyError, PrivacyViolation
from .registry import NAME_PATTERN, Destination, TrustedHosts, declared_local_problem
from .request import Decision, Kind, Request

__all__ = [
    "Arm",
    "Policy",
    "Rule",
    "When",
    "decide",
    "load_policy",
    "parse_policy",
]

ALL_DETECTORS = ("email", "phone", "payment_card", "iban", "national_id", "secret")
MAX_POLICY_BYTES = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(_Strict):
    """One weighted destination inside a rule's ``to`` list."""

    destination: str
    weight: float = Field(default=1.0, ge=0)


class TokenRange(_Strict):
    """Bounds on the estimated input tokens (``ceil(chars / 4)``)."""

    lt: int | None = None
    lte: int | None = None
    gt: int | None = None
    gte: int | None = None

    def matches(self, n: int) -> bool:
        return ((self.lt is None or n < self.lt) and (self.lte is None or n <= self.lte)
                and (self.gt is None or n > self.gt) and (self.gte is None or n >= self.gte))


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class When(_Strict):
    """Conditions of a rule; all given conditions must hold.

    Attributes:
        kind: One kind or a list of kinds.
        tags: Tags that must all be present.
        any_tags: At least one of these tags must be present.
        headers: Header name -> expected value (case-insensitive); ``"*"`` = present.
        metadata: Metadata key -> expected value; ``"*"`` = present.
        model: The requested model name(s) (``auto`` included).
        tokens: Bounds on estimated input tokens.
        detectors: At least one of these detectors fired (``any`` = any detector).
        sensitive: Match on whether the request is already sensitive.
    """

    kind: list[Kind] | None = None
    tags: list[str] = []
    any_tags: list[str] = []
    headers: dict[str, str] = {}
    metadata: dict[str, str] = {}
    model: list[str] | None = None
    tokens: TokenRange | None = None
    detectors: list[str] | None = None
    sensitive: bool | None = None

    _norm = field_validator("kind", "tags", "any_tags", "model", "detectors", mode="before")(
        classmethod(lambda cls, v: _listify(v)))

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if name != "any" and name not in ALL_DETECTORS:
                known = ", ".join(ALL_DETECTORS)
                raise ValueError(f"unknown detector {name!r}; known: any, {known}")
        return value


class Target(_Strict):
    """Where to send: weighted arms, then a fallback chain."""

    to: list[Arm] = Field(min_length=1)
    fallback: list[str] = []

    @field_validator("to", mode="before")
    @classmethod
    def _arms(cls, value: Any) -> Any:
        value = _listify(value)
        if isinstance(value, list):
            return [{"destination": v} if isinstance(v, str) else v for v in value]
        return value

    _fb = field_validator("fallback", mode="before")(classmethod(lambda cls, v: _listify(v)))

    @model_validator(mode="after")
    def _weights(self) -> Target:
        if sum(a.weight for a in self.to) <= 0:
            raise ValueError(
                "the weights in 'to' sum to 0; at least one arm needs a positive weight")
        return self


class Rule(Target):
    """A named rule: first match wins.

    Attributes:
        name: Unique, shown in decisions and the audit log.
        when: Conditions (all must hold); empty matches everything.
        sensitive: Mark matching requests sensitive (the privacy pin then applies).
    """

    name: str = Field(min_length=1, max_length=200)
    when: When = When()
    sensitive: bool = False


class SensitivityPolicy(_Strict):
    """How a request becomes sensitive, besides the caller's flag."""

    headers: list[str] = ["x-lf-sensitive", "x-sensitive"]
    tags: list[str] = ["sensitive", "pii", "confidential"]
    detectors: list[str] = list(ALL_DETECTORS)
    fail_closed: Literal[True] = True
    pin_to: list[str] | None = None

    @field_validator("headers", "tags")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in ALL_DETECTORS:
                raise ValueError(f"unknown detector {name!r}; known: {', '.join(ALL_DETECTORS)}")
        return value


@dataclass(slots=True)
class _Facts:
    """What rules match on, computed once per decision."""

    request: Request
    detectors: frozenset[str]
    sensitive: bool
    tokens: int


Predicate = Callable[[_Facts], bool]


def _always(_: _Facts) -> bool:
    return True


def _compile_when(when: When) -> Predicate:
    """One closure for a rule's conditions except ``kind`` (rules are indexed by kind)."""
    preds = _predicates(when)
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda f: first(f) and second(f)
    return lambda f: all(pred(f) for pred in preds)


@dataclass(frozen=True, slots=True)
class _CompiledRules:
    """Rules as closures, indexed by request kind; built once per policy."""

    by_kind: Mapping[Kind, tuple[tuple[Rule, Predicate], ...]]
    needs_tokens: bool

    @classmethod
    def build(cls, rules: list[Rule]) -> _CompiledRules:
        compiled = [(rule, _compile_when(rule.when)) for rule in rules]
        by_kind = {kind: tuple((rule, pred) for rule, pred in compiled
                               if rule.when.kind is None or kind in rule.when.kind)
                   for kind in Kind}
        return cls(by_kind, any(rule.when.tokens is not None for rule in rules))


def _predicates(when: When) -> tuple[Predicate, ...]:
    """Compile a rule's conditions (but ``kind``) into closures, only for those it sets."""
    preds: list[Predicate] = []
    if when.model is not None:
        models = frozenset(when.model)
        preds.append(lambda f: f.request.model in models)
    if when.tags:
        tags = frozenset(t.lower() for t in when.tags)
        preds.append(lambda f: f.request.tags.issuperset(tags))
    if when.any_tags:
        any_tags = frozenset(t.lower() for t in when.any_tags)
        preds.append(lambda f: not f.request.tags.isdisjoint(any_tags))
    for name, expected in when.headers.items():
        preds.append(_header_pred(name.lower(), expected.lower()))
    for key, expected in when.metadata.items():
        preds.append(_meta_pred(key, expected))
    if when.tokens is not None:
        bounds = when.tokens
        preds.append(lambda f: bounds.matches(f.tokens))
    if when.detectors is not None:
        wanted = frozenset(when.detectors)
        if "any" in wanted:
            preds.append(lambda f: bool(f.detectors))
        else:
            preds.append(lambda f: not f.detectors.isdisjoint(wanted))
    if when.sensitive is not None:
        flag = when.sensitive
        preds.append(lambda f: f.sensitive == flag)
    return tuple(preds)


def _header_pred(name: str, expected: str) -> Predicate:
    def match(f: _Facts) -> bool:
        got = f.request.headers.get(name)
        return got is not None and (expected == "*" or got.strip().lower() == expected)
    return match


def _meta_pred(key: str, expected: str) -> Predicate:
    def match(f: _Facts) -> bool:
        got = f.request.metadata.get(key)
        return got is not None and (expected == "*" or got == expected)
    return match


class Policy(_Strict):
    """A validated routing policy (``version: 1``)."""

    version: Literal[1] = 1
    destinations: dict[str, Destination] = Field(min_length=1)
    trusted_local_hosts: list[str] = []
    sensitivity: SensitivityPolicy = SensitivityPolicy()
    rules: list[Rule] = []
    default: Target

    @field_validator("destinations", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _references(self) -> Policy:
        problems: list[str] = []
        names = set(self.destinations)
        try:
            trusted = TrustedHosts.parse(self.trusted_local_hosts)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        for name, dest in self.destinations.items():
            if not NAME_PATTERN.match(name) or name == "auto":
                problems.append(f"destinations.{name}: invalid name (letters, digits, . _ : + -; "
                                "not 'auto', no slashes)")
            problem = declared_local_problem(dest, trusted)
            if problem:
                problems.append(f"destinations.{name}: {problem}")
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}] {rule.name!r}"
            if rule.name in seen:
                problems.append(f"{where}: duplicate rule name")
            seen.add(rule.name)
            problems += [f"{where}: {p}" for p in _unknown_refs(rule, names)]
            for model in rule.when.model or ():
                if model != "auto" and model not in names:
                    problems.append(f"{where}: when.model {model!r} is not a destination")
        problems += [f"default: {p}" for p in _unknown_refs(self.default, names)]
        for name in self.sensitivity.pin_to or ():
            if name not in names:
                problems.append(f"sensitivity.pin_to: unknown destination {name!r}")
            elif not self.destinations[name].is_local:
                problems.append(f"sensitivity.pin_to: {name!r} is not a local destination")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    _compiled: _CompiledRules | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = _CompiledRules.build(self.rules)

    @property
    def compiled_rules(self) -> _CompiledRules:
        """Rules compiled to closures and indexed by kind (built once, at validation)."""
        private = self.__pydantic_private__  # a plain dict: skips BaseModel.__getattr__
        compiled = private.get("_compiled") if private is not None else None
        if compiled is None:
            compiled = _CompiledRules.build(self.rules)
        return compiled

    @property
    def trusted(self) -> TrustedHosts:
        """The parsed ``trusted_local_hosts``."""
        return TrustedHosts.parse(self.trusted_local_hosts)

    @property
    def local_names(self) -> tuple[str, ...]:
        """Local destinations in policy order (the default privacy pin)."""
        return tuple(n for n, d in self.destinations.items() if d.is_local)

    def redacted(self) -> dict[str, Any]:
        """The policy as plain data, safe to show (it holds env var names, never keys)."""
        return self.model_dump(mode="json", exclude_none=True)


def _unknown_refs(target: Target, names: set[str]) -> list[str]:
    refs = [a.destination for a in target.to] + list(target.fallback)
    return [f"unknown destination {r!r} (known: {', '.join(sorted(names))})"
            for r in refs if r not in names]


# --------------------------------------------------------------------------- loading


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate mapping keys (PyYAML silently keeps the last).

    PyYAML is imported here, not at module import: deciding never needs it.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in mapping:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {line})", key_node.start_mark)
            mapping[key] = loader.construct_object(value_node)
        return mapping

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                    construct_mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _locate(data: Any, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location with the rule's name: ``rules[2] 'x': to[0].weight``."""
    head, tail = "", ""
    node = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = f"[{part}]"
            if not tail and isinstance(node, dict) and isinstance(node.get("name"), str):
                head, tail = f"{head}{label} {node['name']!r}", ":"
                continue
        else:
            node = node.get(part) if isinstance(node, dict) else None
            label = f".{part}" if (head and not tail) or tail not in ("", ":") else str(part)
            if tail == ":":
                label = f" {part}"
        if tail:
            tail += label
        else:
            head += label
    return (head + tail).removesuffix(":") or "(top level)"


def parse_policy(text: str, *, source: str = "<string>") -> Policy:
    """Parse and validate a YAML policy.

    Raises:
        PolicyError: malformed YAML, duplicate keys, unknown keys, bad references,
            zero weights, a public host declared local; each problem names its place.
    """
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyError(f"the file is larger than {MAX_POLICY_BYTES} bytes", source=source)
    try:
        data = _load_yaml(text)
    except Exception as exc:  # yaml.YAMLError and its subclasses; yaml is imported lazily
        if not type(exc).__module__.startswith("yaml"):
            raise
        raise PolicyError(f"malformed YAML: {exc}".replace("\n", " "), source=source) from None
    if not isinstance(data, dict):
        raise PolicyError("the top level must be a mapping (version, destinations, rules, default)",
                          source=source)
    return policy_from_data(data, source=source)


def policy_from_data(data: dict[str, Any], *, source: str = "<data>") -> Policy:
    """Validate already-parsed policy data.

    Raises:
        PolicyError: with one problem per invalid field.
    """
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{_locate(data, tuple(err['loc']))}: {msg}")
        raise PolicyError(f"{len(problems)} problem(s)", source=source,
                          problems=tuple(problems)) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file.

    Raises:
        PolicyError: the file is missing, unreadable or invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the file: {exc}", source=str(p)) from None
    return parse_policy(text, source=str(p))


# --------------------------------------------------------------------------- decide


@dataclass(frozen=True, slots=True)
class Assessment:
    """What is known about a request's sensitivity before rules run.

    Attributes:
        reasons: Detected reasons (``detector:email``, ``detector_error``); the declared
            ones (flag, headers, tags) are derived by :func:`decide` itself.
        detectors: Detector names that fired.
    """

    reasons: tuple[str, ...] = ()
    detectors: frozenset[str] = frozenset()


def declared_reasons(policy: Policy, request: Request) -> list[str]:
    """Sensitivity declared by the caller: flag, headers, tags."""
    reasons = ["flag"] if request.sensitive else []
    for header in policy.sensitivity.headers:
        value = request.headers.get(header)
        if value is not None and value.strip().lower() in ("1", "true", "yes", "on"):
            reasons.append(f"header:{header}")
    reasons += [f"tag:{t}" for t in policy.sensitivity.tags if t in request.tags]
    return reasons


def _pick_arm(arms: list[Arm], key: str | None, salt: str) -> Arm:
    live = [a for a in arms if a.weight > 0]
    if len(live) == 1:
        return live[0]
    total = sum(a.weight for a in live)
    if key is None:
        point = random.random() * total  # noqa: S311 - traffic split, not security
    else:
        digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64 * total
    for arm in live:
        point -= arm.weight
        if point < 0:
            return arm
    return live[-1]


def _dedup(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def decide(policy: Policy, request: Request, *, assessment: Assessment = Assessment(),
           is_up: Callable[[str], bool] | Mapping[str, bool] | None = None) -> Decision:
    """Choose a destination for ``request``. Pure: no I/O.

    Order: allowlist check, first matching rule (or ``default``), weighted arm
    (sticky by ``ab_key``), then the privacy pin (sensitive requests keep only
    local candidates, or the policy's ``pin_to``), then health.

    Raises:
        ModelNotAllowed: ``request.model`` is neither ``auto`` nor a destination name.
        PrivacyViolation: a sensitive request names a cloud destination explicitly.
        LocalUnavailable: a sensitive request has no local candidate that is up.
    """
    dests = policy.destinations
    if request.model != "auto" and request.model not in dests:
        raise ModelNotAllowed(request.model, ("auto", *dests))
    up: Callable[[str], bool]
    if is_up is None:
        up = _always_up
    elif callable(is_up):
        up = is_up
    else:
        up = _lookup(is_up)
    reasons = list(dict.fromkeys([*declared_reasons(policy, request), *assessment.reasons]))
    sensitive = bool(reasons)
    rule: Rule | None = None
    compiled = policy.compiled_rules
    facts = _Facts(request, assessment.detectors, sensitive,
                   request.estimated_tokens if compiled.needs_tokens else 0)
    for candidate, matches in compiled.by_kind[request.kind]:
        if matches(facts):
            rule = candidate
            break
    if rule is not None and rule.sensitive:
        reasons.append(f"rule:{rule.name}")
        sensitive = True
    arm: str | None = None
    if request.model != "auto" and (rule is None or rule.when.model is None):
        rule_name = "explicit model"
        chain: tuple[str, ...] = (request.model,)
        why = f"the caller asked for {request.model!r}"
        if sensitive and not dests[request.model].is_local:
            raise PrivacyViolation(
                f"request is sensitive ({', '.join(reasons)}) and {request.model!r} is a cloud "
                "destination; sensitive requests run only on local models",
                destination=request.model, sensitive_reasons=tuple(reasons))
    else:
        target: Target = rule if rule is not None else policy.default
        rule_name = rule.name if rule is not None else "default"
        picked = _pick_arm(target.to, request.ab_key, rule_name)
        if len(target.to) > 1:
            arm = picked.destination
        others = [a.destination for a in target.to if a.weight > 0]
        chain = _dedup([picked.destination, *target.fallback, *others])
        why = f"rule {rule_name!r}"
    if sensitive:
        local_chain = tuple(d for d in chain if dests[d].is_local)
        if not local_chain:
            local_chain = tuple(policy.sensitivity.pin_to or policy.local_names)
        if local_chain != chain:
            why += "; privacy pin: local destinations only"
        if not local_chain:
            raise LocalUnavailable(
                f"request is sensitive ({', '.join(reasons)}) and the policy has no local "
                "destination; refusing to send it anywhere", rule=rule_name,
                sensitive_reasons=tuple(reasons))
        chain = local_chain
    live = tuple(d for d in chain if up(d))
    if not live:
        if sensitive:
            raise LocalUnavailable(
                f"request is sensitive ({', '.join(reasons)}) and no local destination is up "
                f"({', '.join(chain)}); failing closed, nothing was sent", candidates=chain,
                rule=rule_name, sensitive_reasons=tuple(reasons))
        live = chain
        why += "; every candidate looks down, trying in order"
    chosen = live[0]
    fell_back = chosen != chain[0]
    if fell_back:
        why += f"; {chain[0]!r} is down, fell back to {chosen!r}"
    else:
        why += f" -> {chosen!r}"
    if sensitive:
        why += f" (sensitive: {', '.join(reasons)})"
    dest = dests[chosen]
    return Decision(
        target="local" if dest.is_local else "cloud", destination=chosen, model=dest.model,
        reason=why, fell_back=fell_back, rule=rule_name, arm=arm, sensitive=sensitive,
        sensitive_reasons=tuple(reasons), chain=live,
        detectors=tuple(sorted(assessment.detectors)))


def _always_up(_: str) -> bool:
    return True


def _lookup(table: Mapping[str, bool]) -> Callable[[str], bool]:
    return lambda name: table.get(name, True)
