"""``/healthz``, ``/readyz``, and answers the OpenAI SDK must not retry (``x-should-retry``).

The proxy runs over loopback fakes; the client is the real ``openai`` SDK with its
default retry policy (two retries), and the audit rows count how many requests
reached the proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from llm_localfirst import Router
from llm_localfirst.audit import AuditFilter
from llm_localfirst.audit.record import AuditRecord
from llm_localfirst.config import Settings
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.server.conftest import LiveProxy

SENSITIVE = {"x-lf-sensitive": "true"}


def sdk(proxy: LiveProxy, **kwargs: Any) -> openai.OpenAI:
    """The SDK as an application would build it: default retries, bounded timeout."""
    return openai.OpenAI(base_url=proxy.base_url, api_key="sk-anything", timeout=10, **kwargs)


def chat(client: openai.OpenAI, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=kwargs.pop("model", "auto"), messages=[{"role": "user", "content": text}], **kwargs
    )


# --------------------------------------------------------------------------- healthz / readyz


def test_healthz_answers_without_a_client_key(proxy_factory: Callable[..., LiveProxy]) -> None:
    proxy = proxy_factory(proxy_keys="client-key")
    with proxy.client() as http:
        assert http.post("/v1/chat/completions", json={}).status_code == 401
        answer = http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert answer.headers["cache-control"] == "no-store"


def test_readyz_names_destinations_and_whether_they_are_up_and_nothing_else(
    proxy: LiveProxy,
) -> None:
    proxy.local.stop()
    with proxy.client() as http:
        answer = http.get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"policy": "ok", "audit": "ok"}
    assert body["destinations"] == {"local": {"up": False}, "cloud": {"up": True}}
    # Unauthenticated, so nothing private: no URL, port, model, key name or error detail.
    text = answer.text
    for private in (
        str(proxy.local.port),
        str(proxy.cloud.port),
        "127.0.0.1",
        "fake-local",
        "fake-cloud",
        "LF_FAKE_CLOUD_KEY",
        "unreachable",
        "refused",
    ):
        assert private not in text


def test_readyz_shows_a_keyless_cloud_destination_as_down(
    proxy_factory: Callable[..., LiveProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LF_FAKE_CLOUD_KEY")
    proxy = proxy_factory()
    with proxy.client() as http:
        assert http.get("/readyz").json()["destinations"]["cloud"] == {"up": False}
        health = http.get("/admin/health", headers=proxy.admin_headers()).json()
    cloud = health["destinations"]["cloud"]
    assert cloud["up"] is False and cloud["configured"] is False
    assert cloud["detail"].startswith("not configured: set LF_FAKE_CLOUD_KEY")


class UnwritableStore(MemoryAuditStore):
    """Fault injection: an audit store that no longer answers."""

    broken = False

    def query(self, filter: AuditFilter) -> list[AuditRecord]:
        if self.broken:
            raise OSError("disk gone")
        return super().query(filter)


def test_readyz_is_503_when_the_audit_store_cannot_be_used(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    store = UnwritableStore()
    router = Router(offline_policy(fake_local, fake_cloud), settings=Settings.load(), audit=store)
    proxy = proxy_factory(router=router)
    with proxy.client() as http:
        assert http.get("/readyz").status_code == 200
        store.broken = True
        answer = http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["checks"]["audit"] == "not writable"
    assert "disk gone" not in answer.text


# --------------------------------------------------------------------------- x-should-retry


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_sdk_sends_a_fail_closed_request_once(proxy: LiveProxy, stream: bool) -> None:
    proxy.local.stop()
    with pytest.raises(openai.InternalServerError) as caught:
        chat(sdk(proxy), "redact this record", extra_headers=SENSITIVE, stream=stream)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    (row,) = proxy.rows()
    assert row.outcome == "refused"
    assert proxy.cloud.model_calls() == []


def test_the_sdk_sends_a_request_that_fails_for_a_missing_key_once(
    proxy_factory: Callable[..., LiveProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LF_FAKE_CLOUD_KEY")
    proxy = proxy_factory()
    proxy.local.stop()
    with pytest.raises(openai.InternalServerError) as caught:
        chat(sdk(proxy), "summarise the minutes")
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    message = caught.value.message
    assert "not configured: set LF_FAKE_CLOUD_KEY" in message
    assert "local" in message
    assert len(proxy.rows()) == 1
    assert proxy.cloud.requests == []


@pytest.mark.parametrize(
    ("kwargs", "headers", "error", "status"),
    [
        ({"model": "cloud"}, SENSITIVE, openai.PermissionDeniedError, 403),
        ({"model": "http://10.0.0.1/v1"}, {}, openai.NotFoundError, 404),
        ({}, {"x-lf-kind": "poetry"}, openai.BadRequestError, 400),
    ],
    ids=["privacy_violation", "model_not_allowed", "bad_header"],
)
def test_refusals_say_do_not_retry(
    proxy: LiveProxy,
    kwargs: dict[str, Any],
    headers: dict[str, str],
    error: type[Exception],
    status: int,
) -> None:
    with pytest.raises(error) as caught:
        chat(sdk(proxy), "hello", extra_headers=headers, **kwargs)
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(proxy.rows()) == 1


def test_an_upstream_failure_worth_retrying_does_not_forbid_it(proxy: LiveProxy) -> None:
    proxy.local.status = 500
    proxy.cloud.status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        chat(sdk(proxy, max_retries=0), "summarise the minutes")
    assert caught.value.status_code == 502
    assert "x-should-retry" not in caught.value.response.headers


def test_every_destination_failed_says_the_local_model_was_skipped_as_down(
    proxy: LiveProxy,
) -> None:
    proxy.local.stop()
    proxy.cloud.status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        chat(sdk(proxy, max_retries=0), "summarise the minutes")
    message = caught.value.message
    assert "every destination failed" in message
    assert "'local'" in message and "skipped as down" in message and "ollama serve" in message


def test_a_sensitive_request_right_after_the_local_model_starts_is_served(proxy: LiveProxy) -> None:
    proxy.local.stop()
    client = sdk(proxy, max_retries=0)
    with pytest.raises(openai.InternalServerError):
        chat(client, "redact this record", extra_headers=SENSITIVE)
    proxy.local.start()  # the cached probe still says "down" (LF_PROBE_TTL is 30 s here)
    answer = chat(client, "redact this record", extra_headers=SENSITIVE)
    assert answer.choices[0].message.content == "echo: redact this record"
    assert [r.outcome for r in proxy.rows()] == ["ok", "refused"]


def test_the_sdk_sends_a_request_refused_by_a_spent_budget_once(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    data = offline_policy(fake_local, fake_cloud).redacted()
    data["budgets"] = [
        {"name": "cloud calls", "period": "total", "limit_calls": 1, "on_exceeded": "refuse"}
    ]
    proxy = proxy_factory(policy=policy_from_data(data, source="<test>"))
    client = sdk(proxy)
    chat(client, "prove this", extra_headers={"x-lf-kind": "reason"})
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, "prove that", extra_headers={"x-lf-kind": "reason"})
    assert caught.value.status_code == 429
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(proxy.rows()) == 2
    assert len(fake_cloud.model_calls()) == 1
