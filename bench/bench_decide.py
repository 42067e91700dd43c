"""decide() latency, p50/p99, for the default policy and a 50-rule policy.

Target (issue 2): p50 under 20 µs for 50 rules. Run: ``python bench/bench_decide.py``.
The request matches no rule but the last of the 50, so every rule is evaluated.
"""

from __future__ import annotations

import statistics
import time

from llm_localfirst.config import Settings, policy_from_settings
from llm_localfirst.policy import Assessment, decide, policy_from_data
from llm_localfirst.request import Request

N = 20_000
NOTHING = Assessment()


def fifty_rule_policy() -> object:
    rules = []
    for i in range(49):
        when = [
            {"kind": "reason", "tags": [f"team-{i}"]},
            {"headers": {f"x-route-{i}": "yes"}},
            {"metadata": {"tenant": f"t{i}"}},
            {"tokens": {"gt": 100_000 + i}},
            {"any_tags": [f"a{i}", f"b{i}"]},
            {"model": ["big"]},
        ][i % 6]
        rules.append(
            {
                "name": f"rule {i}",
                "when": when,
                "to": [
                    {"destination": "local", "weight": 70},
                    {"destination": "big", "weight": 30},
                ],
                "fallback": ["cloud"],
            }
        )
    rules.append(
        {
            "name": "chat",
            "when": {"tags": ["chat"], "tokens": {"lt": 500}},
            "to": [{"destination": "local", "weight": 70}, {"destination": "big", "weight": 30}],
            "fallback": ["cloud"],
        }
    )
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "model": "qwen2.5:7b",
                    "locality": "local",
                },
                "big": {
                    "provider": "openai",
                    "base_url": "http://10.0.0.2:8000/v1",
                    "model": "qwen2.5:32b",
                    "locality": "local",
                },
                "cloud": {"provider": "anthropic", "model": "claude-haiku-4-5"},
            },
            "rules": rules,
            "default": {"to": ["local"], "fallback": ["cloud"]},
        }
    )


def classifier_policy() -> object:
    """The default policy's shape plus the opt-in classifier and one classifier rule."""
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "model": "qwen2.5:7b",
                    "locality": "local",
                },
                "big": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:11435/v1",
                    "model": "qwen2.5:32b",
                    "locality": "local",
                },
                "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5"},
            },
            "sensitivity": {
                "classifier": {
                    "destination": "local",
                    "sensitive": ["medical", "legal"],
                    "labels": ["medical", "legal", "code", "general"],
                }
            },
            "rules": [
                {"name": "legal to big", "when": {"classifier": ["legal"]}, "to": ["big"]},
                {
                    "name": "reasoning",
                    "when": {"kind": "reason"},
                    "to": ["haiku"],
                    "fallback": ["local"],
                },
            ],
            "default": {"to": ["local"], "fallback": ["haiku"]},
        }
    )


def measure(label: str, policy: object, request: Request, assessment: Assessment = NOTHING) -> None:
    up = {"local": True, "big": True, "cloud": True, "haiku": True}
    for _ in range(2000):
        decide(policy, request, assessment=assessment, is_up=up)  # type: ignore[arg-type]
    samples = []
    clock = time.perf_counter_ns
    for _ in range(N):
        t0 = clock()
        decide(policy, request, assessment=assessment, is_up=up)  # type: ignore[arg-type]
        samples.append(clock() - t0)
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    print(f"{label:<44} p50 {p50:6.2f} µs   p99 {p99:6.2f} µs   mean {mean:6.2f} µs")


def main() -> None:
    print(f"decide() over {N} calls each (pure, no I/O)")
    default = policy_from_settings(Settings.load())
    measure("default policy (LF_* settings), bulk", default, Request.build("hi", kind="bulk"))
    measure("default policy, sensitive", default, Request.build("hi", sensitive=True))
    fifty = fifty_rule_policy()
    chat = Request.build("hello there", tags=["chat"], ab_key="user-42")
    measure("50-rule policy, match at rule 50 (sticky A/B)", fifty, chat)
    measure("50-rule policy, no match -> default", fifty, Request.build("hello there"))
    # The classifier (issue 12): decide() with a label from the classifier's cache. The
    # router adds the cache hit itself (digest + lookup), measured on its own below.
    clf = classifier_policy()
    label = Assessment(classifier_label="general", classifier_ms=0.0, classifier_cached=True)
    measure(
        "classifier policy, cached label 'general'", clf, Request.build("hi", kind="bulk"), label
    )
    legal = Assessment(
        reasons=("classifier:legal",),
        classifier_label="legal",
        classifier_ms=0.0,
        classifier_cached=True,
    )
    measure(
        "classifier policy, cached 'legal' -> rule", clf, Request.build("hi", kind="bulk"), legal
    )
    cache_hit()


def cache_hit() -> None:
    """What the router adds on a cache hit: digest the content, look it up, copy the label."""
    from llm_localfirst.assessment import with_label
    from llm_localfirst.sensitivity.classifier import Classifier

    clf = Classifier(lambda text: "general", labels=["general", "legal"])
    texts = ["hi"]
    clf._cache[Classifier.digest(texts)] = clf._cached["general"]  # a warm cache
    base = Assessment()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(N):
        t0 = clock()
        got = clf.lookup(Classifier.digest(texts))
        with_label(base, got)
        samples.append(clock() - t0)
    samples.sort()
    print(
        f"{'classifier cache hit (digest, lookup, copy)':<44} "
        f"p50 {samples[len(samples) // 2] / 1000:6.2f} µs   "
        f"p99 {samples[int(len(samples) * 0.99)] / 1000:6.2f} µs"
    )


if __name__ == "__main__":
    main()
