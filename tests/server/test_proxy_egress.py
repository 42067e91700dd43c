"""What leaves is what is scanned: every field, every endpoint; headers; browsers.

A proxy whose default destination is an OpenAI-shaped "cloud" (a loopback fake that
records every byte) with a local fallback: only sensitivity keeps a request local.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy

EMAIL = "alice.private@example.com"
CARD = 4111111111111111
CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES = (
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")


def cloud_first(local: FakeUpstream, cloud: FakeUpstream, **sensitivity: Any) -> Any:
    return policy_from_data({
        "version": 1,
        "destinations": {
            "local": {"provider": "openai", "base_url": local.base_url, "model": "fake-local",
                      "locality": "local", "responses_api": True},
            "cloud": {"provider": "openai", "base_url": cloud.base_url, "model": "fake-cloud",
                      "locality": "cloud", "api_key_env": "LF_FAKE_CLOUD_KEY",
                      "responses_api": True},
        },
        "sensitivity": sensitivity,
        "default": {"to": ["cloud"], "fallback": ["local"]},
    }, source="<cloud first>")


@pytest.fixture
def egress(proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream,
           fake_cloud: FakeUpstream) -> LiveProxy:
    return proxy_factory(policy=cloud_first(fake_local, fake_cloud))


def post(proxy: LiveProxy, path: str, body: Any, **headers: str) -> httpx2.Response:
    with proxy.client() as client:
        return client.post(path, json=body, headers=headers)


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hello"}], **extra}


def messages(*extra: dict[str, Any]) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hello"}, *extra]}


FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "user": (CHAT, chat(user=EMAIL)),
    "metadata": (CHAT, chat(metadata={"owner": EMAIL}, store=True)),
    "metadata key": (CHAT, chat(metadata={EMAIL: "x"}, store=True)),
    "stop": (CHAT, chat(stop=["END", EMAIL])),
    "prediction": (CHAT, chat(prediction={"type": "content", "content": EMAIL})),
    "tool description": (CHAT, chat(tools=[{"type": "function", "function": {
        "name": "lookup", "description": f"ask {EMAIL}",
        "parameters": {"type": "object", "properties": {}}}}])),
    "tool parameters": (CHAT, chat(tools=[{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {
            "who": {"type": "string", "default": EMAIL}}}}}])),
    "response_format schema": (CHAT, chat(response_format={"type": "json_schema", "json_schema": {
        "name": "s", "schema": {"type": "object", "description": EMAIL}}})),
    "message name": (CHAT, messages({"role": "user", "name": EMAIL, "content": "hi"})),
    "refusal part": (CHAT, messages({"role": "assistant", "content": [
        {"type": "refusal", "refusal": f"I will not email {EMAIL}"}]})),
    "tool-call arguments object": (CHAT, messages({"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "f", "arguments": {"to": EMAIL}}}]})),
    "text part not a string": (CHAT, messages({"role": "system", "content": [
        {"type": "text", "text": {"note": EMAIL}}]})),
    "card as a bare number part": (CHAT, messages({"role": "user", "content": [CARD]})),
    "completions suffix": (COMPLETIONS, {"model": "auto", "prompt": "hi", "suffix": EMAIL}),
    "embeddings input": (EMBEDDINGS, {"model": "auto", "input": ["a", EMAIL]}),
    "responses instructions": (RESPONSES, {"model": "auto", "input": "hi",
                                           "instructions": f"mail {EMAIL}"}),
    "responses tools": (RESPONSES, {"model": "auto", "input": "hi", "tools": [
        {"type": "function", "name": "f", "description": EMAIL, "parameters": {}}]}),
}


@pytest.mark.parametrize("field", list(FIELDS))
def test_a_detectable_value_in_any_field_never_reaches_the_cloud(egress: LiveProxy,
                                                                 field: str) -> None:
    path, body = FIELDS[field]
    response = post(egress, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
    assert [r.sensitive for r in egress.rows()] == [True]


def test_the_same_request_without_the_value_goes_to_the_cloud(egress: LiveProxy) -> None:
    response = post(egress, CHAT, chat(user="team-a", metadata={"k": "v"}, stop=["END"]))
    assert response.headers["x-lf-locality"] == "cloud"
    assert len(egress.cloud.model_calls()) == 1


@pytest.mark.parametrize(("path", "body", "kind"), [
    (CHAT, messages({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}), "image"),
    (CHAT, messages({"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}), "audio"),
    (CHAT, messages({"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}]}), "file"),
    (CHAT, messages({"role": "user", "content": [5]}), "number"),
    (COMPLETIONS, {"model": "auto", "prompt": [15496, 11]}, "tokens"),
    (EMBEDDINGS, {"model": "auto", "input": [[15496, 11], [1]]}, "tokens"),
    (RESPONSES, {"model": "auto", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.org/x.png"}]}]}, "image"),
])
def test_values_the_detectors_cannot_read_keep_the_request_local(
        egress: LiveProxy, path: str, body: dict[str, Any], kind: str) -> None:
    response = post(egress, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
    assert f"unreadable:{kind}" in egress.rows()[0].sensitive_reasons


def test_the_policy_can_allow_unreadable_values(proxy_factory: Callable[..., LiveProxy],
                                                fake_local: FakeUpstream,
                                                fake_cloud: FakeUpstream) -> None:
    proxy = proxy_factory(policy=cloud_first(fake_local, fake_cloud, unreadable="allow"))
    response = post(proxy, COMPLETIONS, {"model": "auto", "prompt": [15496, 11]})
    assert response.headers["x-lf-locality"] == "cloud"
    image = messages({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]})
    assert post(proxy, CHAT, image).headers["x-lf-locality"] == "cloud"


@pytest.mark.parametrize("content", [[5, None, True], [None], [True], [["nested"]]])
def test_malformed_content_parts_are_a_400_with_an_audit_row(egress: LiveProxy,
                                                             content: list[Any]) -> None:
    response = post(egress, CHAT, messages({"role": "user", "content": content}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith("messages[1]")
    rows = egress.rows()
    assert [r.outcome for r in rows] == ["error"] and rows[0].id == (
        response.headers["x-lf-decision-id"])
    assert egress.cloud.model_calls() == [] and egress.local.model_calls() == []


@pytest.mark.parametrize("role", [["user"], {"r": "user"}, 5])
def test_a_responses_item_whose_role_is_not_a_string_is_a_400_with_an_audit_row(
        egress: LiveProxy, role: Any) -> None:
    response = post(egress, RESPONSES, {"model": "auto",
                                        "input": [{"role": role, "content": "hi"}]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input[0].role"
    assert [r.outcome for r in egress.rows()] == ["error"]


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("values", [
    ["true", "false"], ["false", "true"], ["true", ""], ["TRUE"], ["1"], ["Yes"], ["on"],
    ["maybe"], ["true, false"], ["no", "On"],
])
def test_any_true_occurrence_of_a_sensitivity_header_makes_the_request_sensitive(
        egress: LiveProxy, values: list[str]) -> None:
    headers = [("content-type", "application/json"), *(("x-lf-sensitive", v) for v in values)]
    with egress.client() as client:
        response = client.post(CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}',
                               headers=headers)
    assert response.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
    assert "header:x-lf-sensitive" in egress.rows()[0].sensitive_reasons


@pytest.mark.parametrize("values", [["false"], ["0"], ["no", "off"], [""], ["False", "NO"]])
def test_false_spellings_of_the_header_do_not_make_a_request_sensitive(
        egress: LiveProxy, values: list[str]) -> None:
    headers = [("content-type", "application/json"), *(("x-sensitive", v) for v in values)]
    with egress.client() as client:
        response = client.post(CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}',
                               headers=headers)
    assert response.headers["x-lf-locality"] == "cloud"


# --------------------------------------------------------------------------- browsers


@pytest.mark.parametrize(("headers", "status"), [
    ({"host": "evil.example"}, 421),
    ({"host": "evil.example:8080"}, 421),
    ({"origin": "http://evil.example"}, 403),
    ({"origin": "null"}, 403),
    ({"origin": "http://localhost:3000"}, 403),
])
def test_a_foreign_host_or_origin_is_refused_and_audited(egress: LiveProxy,
                                                         headers: dict[str, str],
                                                         status: int) -> None:
    response = post(egress, CHAT, chat(), **headers)
    assert response.status_code == status
    assert egress.cloud.model_calls() == [] and egress.local.model_calls() == []
    assert [r.outcome for r in egress.rows()] == ["error"]


def test_a_text_plain_post_from_a_page_is_refused_with_415(egress: LiveProxy) -> None:
    with egress.client() as client:
        response = client.post(CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}',
                               headers={"content-type": "text/plain"})
        missing = client.post(CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}')
    assert response.status_code == missing.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert egress.cloud.model_calls() == []


def test_same_origin_and_configured_hosts_and_origins_are_allowed(
        proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream,
        fake_cloud: FakeUpstream) -> None:
    proxy = proxy_factory(policy=cloud_first(fake_local, fake_cloud),
                          allowed_hosts="proxy.lan", allowed_origins="http://app.lan:3000")
    own = proxy.url
    assert post(proxy, CHAT, chat(), origin=own).status_code == 200
    assert post(proxy, CHAT, chat(), host="proxy.lan:1234").status_code == 200
    assert post(proxy, CHAT, chat(), origin="http://app.lan:3000").status_code == 200
    assert post(proxy, CHAT, chat(), host="localhost:9").status_code == 200


def test_too_many_or_too_large_headers_get_431(egress: LiveProxy) -> None:
    many = [(f"x-h-{i}", "v") for i in range(150)]
    with egress.client() as client:
        response = client.post(CHAT, json=chat(), headers=many)
        large = client.post(CHAT, json=chat(), headers={"x-big": "v" * 40_000})
        models = client.get("/v1/models", headers={"x-big": "v" * 40_000})
    assert response.status_code == large.status_code == models.status_code == 431
    assert egress.cloud.model_calls() == []


def test_the_other_routes_check_host_and_origin_too(egress: LiveProxy) -> None:
    with egress.client() as client:
        assert client.get("/v1/models", headers={"host": "evil.example"}).status_code == 421
        assert client.get("/metrics", headers={"origin": "http://evil.example"}
                          ).status_code == 403
        assert client.get("/healthz", headers={"host": "10.0.0.5:8080"}).status_code == 200


def test_the_openai_sdk_still_works_through_every_check(egress: LiveProxy) -> None:
    sdk = openai.OpenAI(base_url=egress.base_url, api_key="k", max_retries=0, timeout=10)
    answer = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": f"write to {EMAIL}"}],
        user="someone")
    assert answer.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
