"""The invariants of ARCHITECTURE.md, each named, plus a Hypothesis property test.

The property test drives the real Router, policy, detectors, health and egress
guard; only the providers are in-process fakes (fault injection: down, refused,
5xx, 429, timeout) and the DNS resolver is injected (a name that "moves" to a
public address).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_localfirst import (
    LocalFirstError,
    ModelNotAllowed,
    PolicyError,
    PrivacyViolation,
    Router,
)
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.providers.base import AttemptFailed, ChatResult, EgressTicket, egress_guard
from llm_localfirst.registry import Destination
from llm_localfirst.testing import MemoryAuditStore

FAULTS = ("ok", "down", "refused", "http_5xx", "http_429", "timeout", "dns_moved")


class FaultyProvider:
    """In-process fake provider: records every send, fails as told."""

    def __init__(
        self, destination: Destination, faults: dict[str, str], sends: list[tuple[str, bool]]
    ) -> None:
        self.destination = destination
        self._faults = faults
        self._sends = sends

    def _fail(self) -> None:
        fault = self._faults.get(self.destination.name, "ok")
        if fault in ("down", "refused", "dns_moved"):
            raise AttemptFailed("connect_error", "refused")
        if fault == "timeout":
            raise AttemptFailed("timeout", "timed out")
        if fault == "http_5xx":
            raise AttemptFailed.from_status(503, "unavailable")
        if fault == "http_429":
            raise AttemptFailed.from_status(429, "slow down")

    async def chat(self, ticket: EgressTicket, body: Mapping[str, Any]) -> ChatResult:
        ticket.check(self.destination)
        self._sends.append((self.destination.name, ticket.sensitive))
        self._fail()
        return ChatResult({"choices": []}, "ok", "stop", 1, 1)

    async def stream_chat(
        self, ticket: EgressTicket, body: Mapping[str, Any]
    ) -> AsyncIterator[Mapping[str, Any]]:
        ticket.check(self.destination)
        self._sends.append((self.destination.name, ticket.sensitive))
        self._fail()
        yield {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}

    async def embeddings(self, ticket: EgressTicket, body: Mapping[str, Any]) -> Mapping[str, Any]:
        raise AttemptFailed("http_4xx", "no", retryable=False)

    async def probe(self) -> tuple[bool, str]:
        fault = self._faults.get(self.destination.name, "ok")
        return fault not in ("down", "refused"), fault

    async def aclose(self) -> None:
        return None


LOCAL_HOSTS = ["127.0.0.1", "10.0.0.7", "192.168.1.9", "localhost", "gpu.lan"]


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    n_local = draw(st.integers(0, 3))
    n_cloud = draw(st.integers(0, 3))
    if n_local + n_cloud == 0:
        n_cloud = 1
    dests: dict[str, Any] = {}
    for i in range(n_local):
        host = draw(st.sampled_from(LOCAL_HOSTS))
        dests[f"loc{i}"] = {
            "provider": "openai",
            "base_url": f"http://{host}:800{i}/v1",
            "model": f"m{i}",
            "locality": "local",
        }
    for i in range(n_cloud):
        dests[f"cloud{i}"] = {
            "provider": draw(st.sampled_from(["openai", "anthropic"])),
            "model": f"c{i}",
            "locality": "cloud",
            "base_url": f"http://127.0.0.1:9{i}00",
        }
    names = list(dests)
    name = st.sampled_from(names)
    rules = []
    for r in range(draw(st.integers(0, 5))):
        when: dict[str, Any] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "kind": st.sampled_from(["bulk", "reason", "auto"]),
                    "tags": st.lists(st.sampled_from(["chat", "batch", "pii"]), max_size=2),
                    "sensitive": st.booleans(),
                    "detectors": st.lists(
                        st.sampled_from(["email", "any", "secret"]), min_size=1, max_size=2
                    ),
                    "tokens": st.fixed_dictionaries({"lt": st.integers(1, 400)}),
                },
            )
        )
        arms = draw(
            st.lists(
                st.fixed_dictionaries({"destination": name, "weight": st.integers(0, 5)}),
                min_size=1,
                max_size=3,
            )
        )
        if sum(a["weight"] for a in arms) == 0:
            arms[0]["weight"] = 1
        rules.append(
            {
                "name": f"r{r}",
                "when": when,
                "to": arms,
                "fallback": draw(st.lists(name, max_size=3)),
                "sensitive": draw(st.booleans()),
            }
        )
    return {
        "version": 1,
        "destinations": dests,
        "trusted_local_hosts": ["gpu.lan"],
        "rules": rules,
        "default": {"to": [draw(name)], "fallback": draw(st.lists(name))},
    }


PROMPTS = [
    "Summarise the meeting notes.",
    "Email jane.roe@example.org the draft.",
    "Card 4111 1111 1111 1111 on file.",
    "Order #4521-9981 shipped.",
    "Key AKIAZ3MHQW7PL2XKD4RT leaked",
    "Translate: bonjour tout le monde",
]
PII_PROMPTS = {1, 2, 4}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=policies(),
    requests=st.lists(
        st.fixed_dictionaries(
            {
                "prompt": st.integers(0, len(PROMPTS) - 1),
                "sensitive": st.booleans(),
                "header": st.booleans(),
                "tags": st.lists(st.sampled_from(["chat", "batch", "pii"]), max_size=2),
                "kind": st.sampled_from(["bulk", "reason", "auto"]),
                "model": st.one_of(
                    st.just("auto"),
                    st.sampled_from(["loc0", "cloud0", "cloud1", "nope", "http://1.2.3.4/v1"]),
                ),
                "stream": st.booleans(),
            }
        ),
        min_size=1,
        max_size=6,
    ),
    faults=st.dictionaries(
        st.sampled_from(["loc0", "loc1", "loc2", "cloud0", "cloud1", "cloud2"]),
        st.sampled_from(FAULTS),
    ),
)
def test_no_sensitive_request_ever_reaches_a_cloud_destination_and_each_leaves_one_row(
    data: dict[str, Any], requests: list[dict[str, Any]], faults: dict[str, str]
) -> None:
    policy = policy_from_data(data)
    sends: list[tuple[str, bool]] = []
    store = MemoryAuditStore()
    router = Router(
        policy,
        audit=store,
        probe_ttl=0.001,
        provider_factory=lambda d: FaultyProvider(d, faults, sends),
    )
    moved = {n for n, f in faults.items() if f == "dns_moved"}
    hosts = {n: d.base_url for n, d in policy.destinations.items()}
    router.health._resolver = lambda host, trusted: (  # DNS answer moved to a public address
        not any(hosts[n] and host in hosts[n] for n in moved if n in hosts),
        "moved",
    )
    try:
        for spec in requests:
            before = len(sends)
            kwargs: dict[str, Any] = {
                "sensitive": spec["sensitive"],
                "tags": spec["tags"],
                "kind": spec["kind"],
                "model": spec["model"],
                "headers": {"x-lf-sensitive": "true"} if spec["header"] else {},
            }
            prompt = PROMPTS[spec["prompt"]]
            try:
                if spec["stream"]:

                    async def consume(p: str = prompt, kw: dict[str, Any] = kwargs) -> None:
                        async for _ in router.astream(p, **kw):
                            pass

                    router.lifecycle.run_sync(consume())
                else:
                    router.complete(prompt, **kwargs)
            except LocalFirstError:
                pass
            router.flush()
            rows = store.query(AuditFilter(limit=1000))
            row = rows[0]
            declared = (
                spec["sensitive"]
                or spec["header"]
                or "pii" in spec["tags"]
                or spec["prompt"] in PII_PROMPTS
            )
            for name, ticket_sensitive in sends[before:]:
                if declared or row.sensitive or ticket_sensitive:
                    assert policy.destinations[name].is_local, (name, spec, row)
            if declared:
                assert row.sensitive
        assert len(store.query(AuditFilter(limit=1000))) == len(requests)
    finally:
        router.close()


# ------------------------------------------------------------- named invariants


def test_invariant_detector_failure_fails_closed(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(text: str) -> frozenset[str]:
        raise TimeoutError("detector timed out")

    broken = type("Broken", (), {"scan": staticmethod(boom)})()
    monkeypatch.setattr(router.lifecycle.assessor, "scanner", broken)
    assert router.decide("anything").sensitive


def test_invariant_public_host_declared_local_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="public address"):
        policy_from_data(
            {
                "version": 1,
                "destinations": {
                    "x": {
                        "provider": "openai",
                        "base_url": "http://93.184.216.34/v1",
                        "model": "m",
                        "locality": "local",
                    }
                },
                "default": {"to": ["x"]},
            }
        )


def test_invariant_model_strings_off_the_allowlist_are_refused(router: Router) -> None:
    with pytest.raises(ModelNotAllowed):
        router.decide(model="http://169.254.169.254/latest/meta-data")


def test_invariant_egress_guard_refuses_sensitive_to_cloud() -> None:
    cloud = Destination(name="c", provider="openai", model="gpt-4o", locality="cloud")
    with pytest.raises(PrivacyViolation):
        egress_guard(cloud, sensitive=True)
    ticket = egress_guard(cloud, sensitive=False)
    forged = EgressTicket("c", True, ticket.seal)
    with pytest.raises(PrivacyViolation):
        forged.check(cloud)
    with pytest.raises(PrivacyViolation):
        EgressTicket("c", False, object()).check(cloud)


def test_invariant_the_dns_recheck_makes_a_moved_local_host_down(router: Router) -> None:
    router.health._resolver = lambda host, trusted: (False, f"{host} resolves to 1.2.3.4")
    router.health.invalidate()
    with pytest.raises(LocalFirstError):
        router.decide(sensitive=True)
    assert "resolves" in router.health.snapshot()["local"]["detail"]


def test_invariant_an_invalid_policy_on_reload_leaves_the_previous_one_active(
    router: Router, tmp_path: Path
) -> None:
    from llm_localfirst.policy import load_policy

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ndestinations: {a: {provider: openai, model: m}}\ndefault: {to: [nope]}\n"
    )
    before = router.policy
    with pytest.raises(PolicyError, match="unknown destination 'nope'"):
        router.reload(load_policy(bad))
    assert router.policy is before
    assert router.decide(kind="bulk").destination == "local"


def test_invariant_every_request_handled_produces_exactly_one_audit_record(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    outcomes = []
    for kwargs in (
        {},
        {"model": "nope"},
        {"sensitive": True, "model": "cloud"},
        {"kind": "reason"},
        {"prompt": ""},
    ):
        prompt = kwargs.pop("prompt", "hello")
        try:
            router.complete(prompt, **kwargs)
            outcomes.append("ok")
        except LocalFirstError as exc:
            outcomes.append(type(exc).__name__)
    router.flush()
    rows = memory_audit.query(AuditFilter(limit=100))
    assert len(rows) == 5
    assert len({r.id for r in rows}) == 5


def test_invariant_the_worker_refuses_non_local_at_construction_and_at_each_call(
    router: Router,
) -> None:
    from llm_localfirst import Worker

    with pytest.raises(PrivacyViolation):
        Worker(router, destination="cloud")
    worker = Worker(router, destination="local")
    data = router.policy.model_dump()
    data["destinations"]["local"]["locality"] = "cloud"
    router.reload(policy_from_data(data))
    with pytest.raises(PrivacyViolation):
        worker.run("Summarise", "text")
