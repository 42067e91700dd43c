"""Security defaults: loopback bind, client keys, CORS only when configured, no secrets logged."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest

from llm_localfirst.config import Settings
from llm_localfirst.server.proxy import app as proxy_module
from llm_localfirst.server.proxy.app import bind_problem, serve
from tests.server.conftest import LiveProxy

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_binds_need_no_keys(host: str) -> None:
    assert bind_problem(host, Settings.load(), insecure=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_other_binds_need_keys_or_insecure(host: str) -> None:
    problem = bind_problem(host, Settings.load(), insecure=False)
    assert problem is not None and "LF_PROXY_KEYS" in problem and "--insecure" in problem
    assert bind_problem(host, Settings.load(proxy_keys="k"), insecure=False) is None
    assert bind_problem(host, Settings.load(), insecure=True) is None


def test_serve_refuses_a_public_bind_without_keys_before_doing_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_module, "build_router", None)  # proves nothing was built
    assert serve(policy=None, host="0.0.0.0", port=1, insecure=False) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_client_keys_are_required_when_configured_and_refusals_are_audited(
    proxy_factory: Any,
) -> None:
    proxy: LiveProxy = proxy_factory(proxy_keys="key-one, key-two")
    with proxy.client() as client:
        missing = client.post("/v1/chat/completions", json=BODY)
        wrong = client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer key-three"}
        )
        bad_tags = client.post("/v1/chat/completions", json=BODY, headers={"x-lf-tags": "<bad>"})
        models = client.get("/v1/models")
        right = client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer key-two"}
        )
    for response in (missing, wrong, bad_tags, models):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "key-one" not in response.text and "key-two" not in response.text
    assert right.status_code == 200
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key="key-one", max_retries=0, timeout=10)
    assert sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    rows = proxy.rows()
    assert [r.error_class for r in rows if r.outcome == "error"] == ["Unauthorized"] * 3
    assert not proxy.local.model_calls()[2:]  # only the two authorised requests went out


def test_no_cors_headers_unless_configured(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        preflight = client.options(
            "/v1/chat/completions",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        simple = client.post(
            "/v1/chat/completions", json=BODY, headers={"origin": "https://evil.example"}
        )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_the_configured_origins(proxy_factory: Any) -> None:
    proxy: LiveProxy = proxy_factory(cors_origins="https://app.example")
    with proxy.client() as client:
        allowed = client.options(
            "/v1/chat/completions",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-lf-sensitive",
            },
        )
        refused = client.options(
            "/v1/chat/completions",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        simple = client.post(
            "/v1/chat/completions", json=BODY, headers={"origin": "https://app.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert "x-lf-destination" in simple.headers["access-control-expose-headers"]


def test_keys_and_prompts_never_reach_the_logs(
    proxy_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy: LiveProxy = proxy_factory(proxy_keys="sk-very-secret-key")
    secret_prompt = "zq-confidential-prompt jane.doe@example.com"
    with proxy.client() as client:
        for headers in (
            {"authorization": "Bearer sk-very-secret-key"},
            {"authorization": "Bearer sk-wrong-secret"},
        ):
            client.post(
                "/v1/chat/completions",
                headers=headers,
                json={"model": "auto", "messages": [{"role": "user", "content": secret_prompt}]},
            )
        client.post(
            "/v1/chat/completions",
            content=b'{"messages": "' + secret_prompt.encode(),
            headers={"authorization": "Bearer sk-very-secret-key"},
        )
        proxy.local.status = 500
        proxy.cloud.status = 500
        client.post(
            "/v1/chat/completions",
            headers={"authorization": "Bearer sk-very-secret-key"},
            json={"model": "auto", "messages": [{"role": "user", "content": "zq-x"}]},
        )
    proxy.router.flush(10)
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    for secret in ("sk-very-secret-key", "sk-wrong-secret", "zq-confidential", "jane.doe"):
        assert secret not in logged
    for row in proxy.rows():
        assert "zq-" not in (row.error_message or "")
