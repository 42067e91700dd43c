"""``decide``: a request plus destination health to a :class:`Decision`; pure, no I/O.

This module owns rule matching, the weighted arm (sticky per key) and the privacy
pin, applied after the rules so that no rule can undo it. It must never perform I/O.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import LocalUnavailable, ModelNotAllowed, PrivacyViolation
from ..request import Decision, Request, header_says_sensitive
from .schema import Arm, Facts, Policy, Rule, Target


@dataclass(frozen=True, slots=True)
class Assessment:
    """What is known about a request's sensitivity before rules run.

    Attributes:
        reasons: Detected reasons (``detector:email``, ``detector_error``); the declared
            ones (flag, headers, tags) are derived by :func:`decide` itself.
        detectors: Detector names that fired.
        classifier_label: The classifier's label (``None``: off, or it failed closed).
        classifier_ms: How long it took (0 from the cache; ``None`` when off).
        classifier_cached: Whether the label came from the digest cache.
    """

    reasons: tuple[str, ...] = ()
    detectors: frozenset[str] = frozenset()
    classifier_label: str | None = None
    classifier_ms: float | None = None
    classifier_cached: bool = False


def declared_reasons(policy: Policy, request: Request) -> list[str]:
    """Sensitivity declared by the caller: flag, headers, tags."""
    reasons = ["flag"] if request.sensitive else []
    for header in policy.sensitivity.headers:
        value = request.headers.get(header)
        if value is not None and header_says_sensitive(value):
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


def decide(
    policy: Policy,
    request: Request,
    *,
    assessment: Assessment = Assessment(),
    is_up: Callable[[str], bool] | Mapping[str, bool] | None = None,
) -> Decision:
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
    facts = Facts(
        request,
        assessment.detectors,
        sensitive,
        request.estimated_tokens if compiled.needs_tokens else 0,
        assessment.classifier_label,
    )
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
        if request.local_only and not dests[request.model].is_local:
            raise PrivacyViolation(
                f"the request is local-only and {request.model!r} is a cloud destination; "
                "nothing was sent",
                destination=request.model,
                sensitive_reasons=tuple(reasons),
            )
        if sensitive and not dests[request.model].is_local:
            raise PrivacyViolation(
                f"request is sensitive ({', '.join(reasons)}) and {request.model!r} is a cloud "
                "destination; sensitive requests run only on local models",
                destination=request.model,
                sensitive_reasons=tuple(reasons),
            )
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
                "destination; refusing to send it anywhere",
                rule=rule_name,
                sensitive_reasons=tuple(reasons),
            )
        chain = local_chain
    if request.local_only:
        chain = _local_only_chain(policy, request, chain)
        why += "; local only"
    live = tuple(d for d in chain if up(d))
    if not live:
        if request.local_only and not sensitive:
            raise LocalUnavailable(
                f"the request is local-only and no local destination is up ({', '.join(chain)}); "
                "nothing was sent",
                candidates=chain,
                rule=rule_name,
            )
        if sensitive:
            raise LocalUnavailable(
                f"request is sensitive ({', '.join(reasons)}) and no local destination is up "
                f"({', '.join(chain)}); failing closed, nothing was sent",
                candidates=chain,
                rule=rule_name,
                sensitive_reasons=tuple(reasons),
            )
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
        target="local" if dest.is_local else "cloud",
        destination=chosen,
        model=dest.model,
        reason=why,
        fell_back=fell_back,
        rule=rule_name,
        arm=arm,
        sensitive=sensitive,
        sensitive_reasons=tuple(reasons),
        chain=live,
        detectors=tuple(sorted(assessment.detectors)),
        classifier_label=assessment.classifier_label,
        classifier_ms=assessment.classifier_ms,
        classifier_cached=assessment.classifier_cached,
    )


def _local_only_chain(policy: Policy, request: Request, chain: tuple[str, ...]) -> tuple[str, ...]:
    """A local-only request's candidates: the local ones, then every other local destination.

    ``local_only`` as a tuple names the destinations (in order) instead; an
    explicit ``model`` keeps its one-destination chain (checked local above).
    """
    dests = policy.destinations
    wanted = request.local_only
    if isinstance(wanted, tuple):
        for name in wanted:
            if name not in dests:
                raise ModelNotAllowed(name, policy.local_names)
            if not dests[name].is_local:
                raise PrivacyViolation(
                    f"the request is local-only and {name!r} is a cloud destination; "
                    "nothing was sent",
                    destination=name,
                )
        if request.model == "auto":
            chain = wanted
    local = [d for d in chain if dests[d].is_local]
    if request.model == "auto" and not isinstance(wanted, tuple):
        local += policy.sensitivity.pin_to or policy.local_names
    if not local:
        raise LocalUnavailable(
            "the request is local-only and the policy has no local destination; "
            "refusing to send it anywhere",
            rule=None,
        )
    return _dedup(local)


def _always_up(_: str) -> bool:
    return True


def _lookup(table: Mapping[str, bool]) -> Callable[[str], bool]:
    return lambda name: table.get(name, True)
