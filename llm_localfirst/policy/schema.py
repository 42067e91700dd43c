"""The policy schema: destinations, rules, arms, sensitivity settings, validated.

This module owns the pydantic models of a policy file and the compiled form of its
rules (one closure per rule, indexed by kind). It must never read files or the
environment (that is :mod:`.loading`) nor decide (that is :mod:`.decide`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from ..registry import NAME_PATTERN, Destination, TrustedHosts, declared_local_problem
from ..request import Kind, Request
from ..sensitivity.finding import DETECTORS

#: The built-in detectors' names: one list, owned by the detectors.
ALL_DETECTORS = DETECTORS
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
        return (
            (self.lt is None or n < self.lt)
            and (self.lte is None or n <= self.lte)
            and (self.gt is None or n > self.gt)
            and (self.gte is None or n >= self.gte)
        )


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
        classifier: The opt-in classifier's label is one of these.
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
    classifier: list[str] | None = None

    _norm = field_validator(
        "kind", "tags", "any_tags", "model", "detectors", "classifier", mode="before"
    )(classmethod(lambda cls, v: _listify(v)))

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
                "the weights in 'to' sum to 0; at least one arm needs a positive weight"
            )
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


class ClassifierPolicy(_Strict):
    """The opt-in content classifier: a small local model labels each request.

    Attributes:
        destination: A local destination that answers with one label.
        labels: Every label the model may answer.
        sensitive: Labels that make the request sensitive.
        timeout_ms: Past this, the request counts as sensitive (``classifier_timeout``).
    """

    destination: str
    labels: list[str] = Field(min_length=1)
    sensitive: list[str] = []
    timeout_ms: int = Field(default=1500, gt=0, le=120_000)

    @field_validator("labels", "sensitive")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return [v.strip().casefold() for v in value]

    @model_validator(mode="after")
    def _known(self) -> ClassifierPolicy:
        unknown = [s for s in self.sensitive if s not in self.labels]
        if unknown:
            raise ValueError(f"sensitive label(s) {', '.join(unknown)} are not in labels")
        return self


class SensitivityPolicy(_Strict):
    """How a request becomes sensitive, besides the caller's flag."""

    headers: list[str] = ["x-lf-sensitive", "x-sensitive"]
    tags: list[str] = ["sensitive", "pii", "confidential"]
    detectors: list[str] = list(ALL_DETECTORS)
    fail_closed: Literal[True] = True
    pin_to: list[str] | None = None
    classifier: ClassifierPolicy | None = None
    #: Values the detectors cannot read (token ids, images, audio, files, bare numbers
    #: in content): ``sensitive`` (default) keeps such requests local, ``allow`` does not.
    unreadable: Literal["sensitive", "allow"] = "sensitive"
    #: How long message digests and session ids of a sensitive request stay sensitive.
    taint_ttl_s: float = Field(default=86400.0, gt=0, le=366 * 86400)

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


class WorkerPolicy(_Strict):
    """What the local worker may read and what its answers may carry out.

    Attributes:
        roots: Folders whose files ``delegate_to_worker(paths=...)`` may read
            (``~`` expanded), besides ``LF_WORKER_ROOTS`` and the MCP client's roots.
        outbound: What to do when the detectors find personal data or secrets in an
            answer before it returns to the director: ``redact`` (typed placeholders
            such as ``[EMAIL]``), ``refuse`` (a tool error naming the kinds) or ``allow``.
        max_files: Most files one delegation may read.
        max_bytes: Most bytes (on disk) one delegation may read, over all its files.
    """

    roots: list[str] = []
    outbound: Literal["redact", "refuse", "allow"] = "redact"
    max_files: int = Field(default=200, ge=1, le=100_000)
    max_bytes: int = Field(default=50_000_000, ge=1, le=10_000_000_000)

    @field_validator("roots")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not r.strip() for r in value):
            raise ValueError("worker.roots entries must be non-empty paths")
        return value


class BudgetScope(_Strict):
    """What a budget counts: cloud destinations and proxy keys (omitted = all)."""

    destinations: list[str] | None = None
    keys: list[str] | None = None

    _norm = field_validator("destinations", "keys", mode="before")(
        classmethod(lambda cls, v: _listify(v))
    )


class BudgetSpec(_Strict):
    """A ceiling on cloud spend, shared by every instance on one audit store.

    Attributes:
        name: Unique; the key of its counters.
        period: ``day``, ``week`` (ISO, from Monday), ``month`` (UTC) or ``total``.
        limit_usd: USD per period (needs a price for every cloud destination in scope).
        limit_tokens: Tokens (input + output) per period.
        limit_calls: Cloud calls per period.
        scope: Destinations and proxy key names it counts; omitted = every cloud call.
        on_exceeded: ``local`` sends cloud-bound work to the local chain; ``refuse``
            raises ``BudgetExceeded``.
    """

    name: str = Field(min_length=1, max_length=200)
    period: Literal["day", "week", "month", "total"] = "month"
    limit_usd: float | None = Field(default=None, gt=0)
    limit_tokens: int | None = Field(default=None, gt=0)
    limit_calls: int | None = Field(default=None, gt=0)
    scope: BudgetScope = BudgetScope()
    on_exceeded: Literal["local", "refuse"] = "refuse"

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetSpec:
        if self.limit_usd is None and self.limit_tokens is None and self.limit_calls is None:
            raise ValueError("a budget needs limit_usd, limit_tokens or limit_calls")
        return self


@dataclass(slots=True)
class Facts:
    """What rules match on, computed once per decision."""

    request: Request
    detectors: frozenset[str]
    sensitive: bool
    tokens: int
    classifier: str | None = None


Predicate = Callable[[Facts], bool]


def _always(_: Facts) -> bool:
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
        by_kind = {
            kind: tuple(
                (rule, pred)
                for rule, pred in compiled
                if rule.when.kind is None or kind in rule.when.kind
            )
            for kind in Kind
        }
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
    if when.classifier is not None:
        labels = frozenset(v.strip().casefold() for v in when.classifier)
        preds.append(lambda f: f.classifier in labels)
    return tuple(preds)


def _header_pred(name: str, expected: str) -> Predicate:
    def match(f: Facts) -> bool:
        got = f.request.headers.get(name)
        return got is not None and (expected == "*" or got.strip().lower() == expected)

    return match


def _meta_pred(key: str, expected: str) -> Predicate:
    def match(f: Facts) -> bool:
        got = f.request.metadata.get(key)
        return got is not None and (expected == "*" or got == expected)

    return match


class AuditPolicy(_Strict):
    """The ``audit`` section: how the audit log is written.

    Attributes:
        durability: ``intent`` (default: an intent row is committed before every
            upstream attempt, so every request that was sent has a committed row
            even if the process is killed; a request whose intent cannot be
            committed is not sent) or ``batch`` (decision rows only, committed in
            batches after the answer; a SIGKILL may lose the last ~50 ms of rows).
            ``LF_AUDIT_DURABILITY`` overrides it. See bench/bench_audit_durability.py.
    """

    durability: Literal["batch", "intent"] = "intent"


class Policy(_Strict):
    """A validated routing policy (``version: 1``)."""

    version: Literal[1] = 1
    destinations: dict[str, Destination] = Field(min_length=1)
    trusted_local_hosts: list[str] = []
    sensitivity: SensitivityPolicy = SensitivityPolicy()
    rules: list[Rule] = []
    default: Target
    budgets: list[BudgetSpec] = []
    worker: WorkerPolicy = WorkerPolicy()
    audit: AuditPolicy = AuditPolicy()

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
                problems.append(
                    f"destinations.{name}: invalid name (letters, digits, . _ : + -; "
                    "not 'auto', no slashes)"
                )
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
        problems += _classifier_problems(self)
        problems += _budget_problems(self)
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
    return [
        f"unknown destination {r!r} (known: {', '.join(sorted(names))})"
        for r in refs
        if r not in names
    ]


def _classifier_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    clf = policy.sensitivity.classifier
    uses = [r.name for r in policy.rules if r.when.classifier is not None]
    if clf is None:
        if uses:
            problems.append(
                f"rules {', '.join(map(repr, uses))} match on 'classifier' but "
                "sensitivity.classifier is not configured"
            )
        return problems
    dest = policy.destinations.get(clf.destination)
    if dest is None:
        problems.append(
            f"sensitivity.classifier.destination: unknown destination {clf.destination!r}"
        )
    elif not dest.is_local:
        problems.append(
            f"sensitivity.classifier.destination: {clf.destination!r} is a cloud "
            "destination; the classifier reads every request and must be local"
        )
    for i, rule in enumerate(policy.rules):
        for label in rule.when.classifier or ():
            if label.strip().casefold() not in clf.labels:
                problems.append(
                    f"rules[{i}] {rule.name!r}: when.classifier {label!r} is not "
                    "one of sensitivity.classifier.labels"
                )
    return problems


def _budget_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, spec in enumerate(policy.budgets):
        where = f"budgets[{i}] {spec.name!r}"
        if spec.name in seen:
            problems.append(f"{where}: duplicate budget name")
        seen.add(spec.name)
        for name in spec.scope.destinations or ():
            dest = policy.destinations.get(name)
            if dest is None:
                problems.append(f"{where}: scope.destinations: unknown destination {name!r}")
            elif dest.is_local:
                problems.append(
                    f"{where}: scope.destinations: {name!r} is local; budgets gate cloud calls only"
                )
        if spec.limit_usd is not None:
            scope = spec.scope.destinations or list(policy.destinations)
            unpriced = [
                n
                for n in scope
                if n in policy.destinations
                and not policy.destinations[n].is_local
                and policy.destinations[n].price is None
            ]
            if unpriced:
                problems.append(
                    f"{where}: limit_usd over unpriced cloud destination(s) "
                    f"{', '.join(unpriced)}; give them a price (price: {{input: .., output: ..}} "
                    "or LF_PRICES) or use limit_tokens / limit_calls"
                )
    return problems
