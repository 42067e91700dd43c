"""``GET /metrics``: Prometheus text, parsed back with ``prometheus_client``'s own parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from llm_localfirst.server.proxy.metrics import ProxyMetrics
from tests.server.conftest import LiveProxy


def chat(proxy: LiveProxy, text: str, **headers: str) -> int:
    with proxy.client() as client:
        return client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        ).status_code


def scrape(
    proxy: LiveProxy, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with proxy.client() as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_fallbacks_refusals_detectors_and_latency_are_exported(proxy: LiveProxy) -> None:
    assert chat(proxy, "plain") == 200
    assert chat(proxy, "write to jane.doe@example.com") == 200
    proxy.local.status = 500
    assert chat(proxy, "plain again") == 200  # fails over to the cloud
    proxy.local.stop()
    proxy.router.health.invalidate("local")
    assert chat(proxy, "card 4111 1111 1111 1111") == 503  # fail closed
    with proxy.client() as client:
        client.post("/v1/chat/completions", content=b"{")  # bad input
    samples = scrape(proxy)

    requests = "llm_localfirst_requests_total"
    assert (
        value(
            samples, requests, endpoint="chat", destination="local", locality="local", outcome="ok"
        )
        == 2
    )
    assert (
        value(
            samples, requests, endpoint="chat", destination="cloud", locality="cloud", outcome="ok"
        )
        == 1
    )
    assert (
        value(
            samples,
            requests,
            endpoint="chat",
            destination="none",
            locality="none",
            outcome="refused",
        )
        == 1
    )
    assert (
        value(
            samples, requests, endpoint="chat", destination="none", locality="none", outcome="error"
        )
        == 1
    )
    assert value(samples, "llm_localfirst_fallbacks_total", destination="cloud") == 1
    assert value(samples, "llm_localfirst_fail_closed_total") == 1
    assert value(samples, "llm_localfirst_refusals_total", error="LocalUnavailable") == 1
    assert value(samples, "llm_localfirst_detector_hits_total", detector="email") == 1
    assert value(samples, "llm_localfirst_detector_hits_total", detector="payment_card") == 1

    assert value(samples, "llm_localfirst_request_duration_seconds_count", endpoint="chat") == 5
    assert value(samples, "llm_localfirst_upstream_duration_seconds_count", endpoint="chat") == 3
    assert value(samples, "llm_localfirst_overhead_seconds_count", endpoint="chat") == 3
    overhead = value(samples, "llm_localfirst_overhead_seconds_sum", endpoint="chat")
    total = value(samples, "llm_localfirst_request_duration_seconds_sum", endpoint="chat")
    assert 0 < overhead < total
    assert value(samples, "llm_localfirst_in_flight_requests") == 0


def test_streams_report_time_to_first_byte_overhead(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        response = client.post(
            "/v1/chat/completions",
            json={"stream": True, "messages": [{"role": "user", "content": "s"}]},
        )
    assert response.status_code == 200
    samples = scrape(proxy)
    assert value(samples, "llm_localfirst_overhead_seconds_count", endpoint="stream") == 1
    assert (
        value(
            samples,
            "llm_localfirst_requests_total",
            endpoint="stream",
            destination="local",
            locality="local",
            outcome="ok",
        )
        == 1
    )


def test_reloads_are_counted(proxy: LiveProxy) -> None:
    policy = proxy.router.policy
    with proxy.client() as client:
        refused = client.post("/admin/reload", headers=proxy.admin_headers())
    # The offline policy was built in memory: there is no file to re-read, so nothing changes.
    assert refused.status_code == 400
    assert "nothing to reload" in refused.json()["error"]["message"]
    assert proxy.router.policy is policy
    samples = scrape(proxy)
    assert value(samples, "llm_localfirst_policy_reloads_total", result="error") == 1


def test_each_app_has_its_own_registry_and_other_faces_are_not_counted() -> None:
    first, second = ProxyMetrics(process=False), ProxyMetrics(process=False)
    first.fail_closed += 1
    assert b"llm_localfirst_fail_closed_total 1.0" in first.render()
    assert b"llm_localfirst_fail_closed_total 0.0" in second.render()


def test_metrics_need_a_client_key_when_keys_are_set(proxy_factory: Any) -> None:
    proxy = proxy_factory(proxy_keys="k-one")
    with proxy.client() as client:
        assert client.get("/metrics").status_code == 401
    assert scrape(proxy, authorization="Bearer k-one")
