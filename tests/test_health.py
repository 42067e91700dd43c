"""health.py: probe cache (TTL), circuit breaker, DNS re-check, cloud never probed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst.health import Health, http_probe
from llm_localfirst.registry import Destination, TrustedHosts
from llm_localfirst.testing import FakeUpstream


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


LOCAL = Destination(
    name="loc", provider="openai", base_url="http://127.0.0.1:1/v1", model="m", locality="local"
)
CLOUD = Destination(name="cloud", provider="anthropic", model="claude-haiku-4-5")


def make(results: list[bool], clock: Clock) -> tuple[Health, list[str]]:
    probed: list[str] = []

    async def probe(dest: Destination) -> tuple[bool, str]:
        probed.append(dest.name)
        return results[-1], "ok" if results[-1] else "down"

    health = Health(
        {"loc": LOCAL, "cloud": CLOUD},
        probe,
        ttl=30,
        threshold=3,
        cooldown=10,
        clock=clock,
        resolver=lambda host, trusted: (True, ""),
    )
    return health, probed


def test_probe_results_are_cached_for_the_ttl_and_cloud_is_never_probed() -> None:
    clock = Clock()
    health, probed = make([True], clock)
    asyncio.run(health.refresh())
    asyncio.run(health.refresh())
    assert probed == ["loc"]
    clock.now += 31
    assert health.stale() == ["loc"]
    asyncio.run(health.refresh())
    assert probed == ["loc", "loc"]
    assert health.is_up("cloud")


def test_the_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    health, _ = make([True], clock)
    for _ in range(2):
        health.record_failure("cloud")
    assert health.is_up("cloud")
    health.record_failure("cloud")
    assert not health.is_up("cloud")
    assert health.snapshot()["cloud"]["breaker"] == "open"
    clock.now += 11
    assert health.is_up("cloud")  # half-open: one trial goes through
    health.record_success("cloud")
    assert health.snapshot()["cloud"]["failures"] == 0


def test_a_refused_connection_marks_a_destination_down_at_once() -> None:
    clock = Clock()
    health, _ = make([True], clock)
    asyncio.run(health.refresh())
    health.record_failure("loc", hard=True)
    assert not health.is_up("loc")


def test_a_name_that_now_resolves_to_a_public_address_is_down() -> None:
    clock = Clock()
    health, probed = make([True], clock)
    health._resolver = lambda host, trusted: (False, f"{host} resolves to public 8.8.8.8")
    asyncio.run(health.refresh())
    assert not health.is_up("loc") and probed == []
    assert "public" in health.snapshot()["loc"]["detail"]


def test_the_http_probe_speaks_to_a_real_server_and_reports_refusal() -> None:
    with FakeUpstream() as fake:
        d = Destination(
            name="f", provider="openai", base_url=fake.base_url, model="m", locality="local"
        )
        assert asyncio.run(http_probe(d)) == (True, "answered 200")
    assert asyncio.run(http_probe(d))[0] is False


def test_a_cloud_destination_without_its_key_is_not_configured_and_local_ones_need_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_localfirst.health import missing_credentials

    monkeypatch.setenv("HOME", str(tmp_path))  # no Anthropic SDK profile directory
    cases = {
        "haiku": ({"provider": "anthropic", "model": "claude-haiku-4-5"}, "ANTHROPIC_API_KEY"),
        "gpt": ({"provider": "openai", "model": "gpt-4o-mini"}, "OPENAI_API_KEY"),
        "openai": (
            {"provider": "openai", "model": "m", "base_url": "https://api.openai.com/v1"},
            "OPENAI_API_KEY",
        ),
        "named": (
            {
                "provider": "openai",
                "model": "m",
                "base_url": "https://gw.example/v1",
                "api_key_env": "GW_KEY",
            },
            "GW_KEY",
        ),
        "gateway": (
            {"provider": "openai", "model": "m", "base_url": "https://gw.example/v1"},
            None,
        ),
        "local": (
            {
                "provider": "openai",
                "model": "m",
                "base_url": "http://127.0.0.1:1/v1",
                "locality": "local",
                "api_key_env": "LOCAL_KEY",
            },
            None,
        ),
    }
    for name, (fields, wanted) in cases.items():
        dest = Destination(name=name, **fields)
        why = missing_credentials(dest, {})
        assert why == (
            None
            if wanted is None
            else f"not configured: set {wanted} (no API key in the environment)"
        ), name
        if wanted is not None:
            assert missing_credentials(dest, {wanted: "k"}) is None
    haiku = Destination(name="haiku", provider="anthropic", model="claude-haiku-4-5")
    assert missing_credentials(haiku, {"ANTHROPIC_AUTH_TOKEN": "t"}) is None


def test_health_reports_a_keyless_destination_as_down_but_keeps_it_routable() -> None:
    from llm_localfirst.health import missing_credentials

    cloud = Destination(
        name="cloud", provider="openai", model="gpt-4o-mini", api_key_env="LF_TEST_ABSENT_KEY"
    )

    async def never(dest: Destination) -> tuple[bool, str]:
        raise AssertionError("cloud destinations are not probed")

    health = Health({"cloud": cloud}, never, credentials=missing_credentials)
    assert health.is_up("cloud") and not health.usable("cloud")
    snap = health.snapshot()["cloud"]
    assert snap["up"] is False and snap["configured"] is False
    assert str(snap["detail"]).startswith("not configured: set LF_TEST_ABSENT_KEY")


def test_the_http_probe_connects_only_to_a_vetted_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_getaddrinfo = socket.getaddrinfo
    answer = {"gpu.lan": "127.0.0.1"}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo(answer.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    trusted = TrustedHosts.parse(["gpu.lan"])
    with FakeUpstream() as fake:
        d = Destination(
            name="gpu",
            provider="openai",
            model="m",
            locality="local",
            base_url=f"http://gpu.lan:{fake.port}/v1",
        )
        assert asyncio.run(http_probe(d, trusted=trusted)) == (True, "answered 200")
        answer["gpu.lan"] = "8.8.8.8"
        up, detail = asyncio.run(http_probe(d, trusted=trusted))
    assert not up and "8.8.8.8" in detail and "not local" in detail
