"""The policy package: schema errors, rule matching, weighted arms and the privacy pin, offline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from llm_localfirst import (
    Kind,
    LocalUnavailable,
    ModelNotAllowed,
    PolicyError,
    PrivacyViolation,
    Request,
)
from llm_localfirst.config import Settings, policy_from_settings
from llm_localfirst.policy import Assessment, decide, load_policy, parse_policy

ISSUE_POLICY = """
version: 1
destinations:
  local:  {provider: openai, base_url: "http://localhost:11434/v1", model: "qwen2.5:7b",
           locality: local}
  local-big: {provider: openai, base_url: "http://192.168.1.20:8000/v1", model: "qwen2.5:32b",
              locality: local}
  haiku:  {provider: anthropic, model: claude-haiku-4-5, locality: cloud}
sensitivity:
  headers: [x-lf-sensitive, x-sensitive]
  detectors: [email, phone, payment_card, iban, national_id, secret]
rules:
  - name: reasoning goes to the cloud
    when: {kind: reason}
    to: [haiku]
  - name: short prompts A/B
    when: {tokens: {lt: 500}, tags: [chat]}
    to: [{destination: local, weight: 70}, {destination: local-big, weight: 30}]
    fallback: [haiku]
default: {to: [local], fallback: [haiku]}
"""


def req(prompt: str | None = "hello", **kw: object) -> Request:
    return Request.build(prompt, allow_empty=True, **kw)


@pytest.fixture
def policy():
    return parse_policy(ISSUE_POLICY, source="issue.yaml")


@pytest.fixture
def env_policy():
    return policy_from_settings(Settings.load())


# ------------------------------------------------------------- the seed's table


def test_bulk_goes_local_when_local_is_up(env_policy) -> None:
    d = decide(env_policy, req(kind=Kind.BULK))
    assert (d.target, d.destination, d.fell_back) == ("local", "local", False)
    assert d.model == "qwen2.5:7b"


def test_auto_is_bulk_by_default(env_policy) -> None:
    assert decide(env_policy, req()).target == "local"


def test_bulk_falls_back_to_cloud_when_local_is_down(env_policy) -> None:
    d = decide(env_policy, req(kind="bulk"), is_up={"local": False})
    assert (d.target, d.destination, d.fell_back) == ("cloud", "haiku", True)
    assert "fell back" in d.reason


def test_reason_goes_to_cloud_whether_local_is_up_or_down(env_policy) -> None:
    for up in (True, False):
        d = decide(env_policy, req(kind="reason"), is_up={"local": up})
        assert (d.target, d.destination, d.fell_back) == ("cloud", "haiku", False)
        assert d.rule == "reasoning goes to the cloud"


def test_sensitive_goes_local_when_local_is_up(env_policy) -> None:
    d = decide(env_policy, req(sensitive=True))
    assert d.target == "local" and d.sensitive and d.sensitive_reasons == ("flag",)


def test_sensitive_reasoning_is_pinned_to_local_too(env_policy) -> None:
    d = decide(env_policy, req(sensitive=True, kind="reason"))
    assert d.target == "local"
    assert "privacy pin" in d.reason


def test_sensitive_fails_closed_when_local_is_down(env_policy) -> None:
    with pytest.raises(LocalUnavailable) as info:
        decide(env_policy, req(sensitive=True), is_up={"local": False})
    assert info.value.candidates == ("local",)


def test_explicit_cloud_model_with_sensitive_raises_privacy_violation(env_policy) -> None:
    with pytest.raises(PrivacyViolation) as info:
        decide(env_policy, req(sensitive=True, model="haiku"))
    assert info.value.destination == "haiku"


def test_explicit_allowlisted_model_is_used(env_policy) -> None:
    d = decide(env_policy, req(model="haiku", kind="bulk"))
    assert (d.destination, d.rule) == ("haiku", "explicit model")
    assert decide(env_policy, req(model="local", sensitive=True)).destination == "local"


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-unlisted",
        "http://evil.example/v1",
        "../etc/passwd",
        "https://169.254.169.254/latest",
        "LOCAL",
    ],
)
def test_a_model_string_that_is_not_allowlisted_is_refused(env_policy, model: str) -> None:
    with pytest.raises(ModelNotAllowed) as info:
        decide(env_policy, req(model=model))
    assert "auto" in info.value.allowed
    if "://" in model:
        assert "URL" in str(info.value)


# ------------------------------------------------------------- rules and arms


def test_first_matching_rule_wins_and_default_catches_the_rest(policy) -> None:
    assert decide(policy, req(kind="reason", tags=["chat"])).rule == "reasoning goes to the cloud"
    assert decide(policy, req(tags=["chat"])).rule == "short prompts A/B"
    assert decide(policy, req()).rule == "default"


def test_token_bounds_use_the_documented_estimate(policy) -> None:
    assert decide(policy, req("x" * 1996, tags=["chat"])).rule == "short prompts A/B"  # 499 tokens
    assert decide(policy, req("x" * 2000, tags=["chat"])).rule == "default"  # 500 tokens


def test_weighted_arms_are_sticky_per_ab_key(policy) -> None:
    for key in ("alice", "bob", "carol", "dave"):
        first = decide(policy, req(tags=["chat"], ab_key=key)).arm
        assert all(decide(policy, req(tags=["chat"], ab_key=key)).arm == first for _ in range(20))


def test_weighted_arms_split_traffic_by_weight(policy) -> None:
    keyed = Counter(decide(policy, req(tags=["chat"], ab_key=f"user-{i}")).arm for i in range(4000))
    assert 0.65 < keyed["local"] / 4000 < 0.75
    unkeyed = Counter(decide(policy, req(tags=["chat"])).arm for _ in range(4000))
    assert 0.65 < unkeyed["local"] / 4000 < 0.75


def test_rules_match_headers_metadata_model_and_detectors() -> None:
    p = parse_policy("""
version: 1
destinations:
  a: {provider: openai, base_url: "http://127.0.0.1:1/v1", model: m, locality: local}
  b: {provider: openai, base_url: "http://10.0.0.5:1/v1", model: m2, locality: local}
  c: {provider: openai, model: gpt-4o}
rules:
  - {name: by header, when: {headers: {x-team: legal}}, to: [b]}
  - {name: by metadata, when: {metadata: {tenant: "*"}}, to: [b]}
  - {name: by model, when: {model: c}, to: [a]}
  - {name: by detector, when: {detectors: [email]}, to: [b]}
  - {name: any detector, when: {detectors: [any]}, to: [a]}
  - {name: any tag, when: {any_tags: [x, y]}, to: [c]}
default: {to: [c]}
""")
    assert decide(p, req(headers={"X-Team": "Legal"})).rule == "by header"
    assert decide(p, req(metadata={"tenant": "t1"})).rule == "by metadata"
    assert decide(p, req(model="c")).destination == "a"
    fired = Assessment(("detector:email",), frozenset({"email"}))
    d = decide(p, req(), assessment=fired)
    assert (d.rule, d.sensitive, d.destination) == ("by detector", True, "b")
    phone = Assessment(("detector:phone",), frozenset({"phone"}))
    assert decide(p, req(), assessment=phone).rule == "any detector"
    assert decide(p, req(tags=["y"])).destination == "c"


def test_a_rule_can_mark_requests_sensitive_and_the_pin_follows() -> None:
    p = parse_policy("""
version: 1
destinations:
  loc: {provider: openai, base_url: "http://127.0.0.1:1/v1", model: m, locality: local}
  cloud: {provider: anthropic, model: claude-haiku-4-5}
rules:
  - {name: hr data, when: {tags: [hr]}, to: [cloud], sensitive: true}
default: {to: [cloud]}
""")
    d = decide(p, req(tags=["hr"]))
    assert (d.destination, d.sensitive, d.sensitive_reasons) == ("loc", True, ("rule:hr data",))
    with pytest.raises(LocalUnavailable):
        decide(p, req(tags=["hr"]), is_up={"loc": False})


def test_rule_order_cannot_undo_the_privacy_pin() -> None:
    p = parse_policy("""
version: 1
destinations:
  loc: {provider: openai, base_url: "http://127.0.0.1:1/v1", model: m, locality: local}
  cloud: {provider: anthropic, model: claude-haiku-4-5}
rules:
  - {name: everything to cloud first, to: [cloud], fallback: [cloud]}
  - {name: never reached, when: {sensitive: true}, to: [loc]}
default: {to: [cloud]}
""")
    d = decide(p, req(headers={"x-sensitive": "true"}))
    assert d.target == "local" and d.chain == ("loc",)


def test_sensitive_with_a_policy_without_local_destinations_fails_closed() -> None:
    p = parse_policy("""
version: 1
destinations: {cloud: {provider: anthropic, model: claude-haiku-4-5}}
default: {to: [cloud]}
""")
    with pytest.raises(LocalUnavailable, match="no local destination"):
        decide(p, req(tags=["pii"]))


def test_declared_sensitivity_sources_are_flag_header_and_tag(env_policy) -> None:
    assert decide(env_policy, req(headers={"X-LF-Sensitive": "TRUE"})).sensitive_reasons == (
        "header:x-lf-sensitive",
    )
    assert decide(env_policy, req(headers={"x-sensitive": "false"})).sensitive is False
    assert decide(env_policy, req(tags=["Confidential"])).sensitive_reasons == ("tag:confidential",)


def test_non_sensitive_requests_with_everything_down_still_get_a_decision(env_policy) -> None:
    d = decide(env_policy, req(), is_up=lambda n: False)
    assert d.destination == "local" and "looks down" in d.reason


# ------------------------------------------------------------- invalid policies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ndestinations: {a: [1,", "malformed YAML"),
        ("- just\n- a list", "top level must be a mapping"),
        (
            "version: 1\ndestinations:\n  a: {provider: openai, model: m}\n  a: {provider: openai, "
            "model: n}\ndefault: {to: [a]}",
            "duplicate key 'a'",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m, colour: red}}\n"
            "default: {to: [a]}",
            "destinations.a.colour: Extra inputs are not permitted",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\ndefault: {to: [b]}",
            "default: unknown destination 'b'",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\nrules:\n"
            "  - {name: split, to: [{destination: a, weight: 0}]}\ndefault: {to: [a]}",
            "rules[0] 'split': the weights in 'to' sum to 0",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\nrules:\n"
            "  - {name: r, to: [{destination: a, weight: -1}]}\ndefault: {to: [a]}",
            "rules[0] 'r': to[0].weight",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m, base_url: 'http://8.8.8.8/v1',"
            " locality: local}}\ndefault: {to: [a]}",
            "8.8.8.8 is a public address",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m, base_url: 'http://gpu.example.com/v1',"
            " locality: local}}\ndefault: {to: [a]}",
            "add it to trusted_local_hosts",
        ),
        (
            "version: 2\ndestinations: {a: {provider: openai, model: m}}\ndefault: {to: [a]}",
            "version",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\nsensitivity: "
            "{detectors: [email, horoscope]}\ndefault: {to: [a]}",
            "unknown detector 'horoscope'",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\nsensitivity: "
            "{fail_closed: false}\ndefault: {to: [a]}",
            "sensitivity.fail_closed",
        ),
        (
            "version: 1\ndestinations: {'http://x/v1': {provider: openai, model: m}}\n"
            "default: {to: ['http://x/v1']}",
            "invalid name",
        ),
        (
            "version: 1\ndestinations: {a: {provider: openai, model: m}}\nrules:\n"
            "  - {name: r, to: [a]}\n  - {name: r, to: [a]}\ndefault: {to: [a]}",
            "duplicate rule name",
        ),
    ],
)
def test_an_invalid_policy_gets_a_precise_error(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="team.yaml")
    assert "team.yaml" in str(info.value)
    assert expected in str(info.value), str(info.value)


def test_a_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_trusted_hosts_make_a_named_lan_host_local() -> None:
    p = parse_policy("""
version: 1
trusted_local_hosts: [gpu-box.lan, 100.64.0.0/10]
destinations:
  box: {provider: openai, base_url: "http://gpu-box.lan:8000/v1", model: m, locality: local}
  tail: {provider: openai, base_url: "http://100.100.1.2:8000/v1", model: m, locality: local}
default: {to: [box]}
""")
    assert p.local_names == ("box", "tail")


def test_the_policy_built_from_lf_variables_turns_on_every_detector(env_policy) -> None:
    assert set(env_policy.sensitivity.detectors) == {
        "email",
        "phone",
        "payment_card",
        "iban",
        "national_id",
        "secret",
    }
