"""What leaves is what is scanned: every field, every endpoint; headers; browsers.

A proxy whose default destination is an OpenAI-shaped "cloud" (a loopback fake that
records every byte) with a local fallback: only sensitivity keeps a request local.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_localfirst import Router
from llm_localfirst.audit import open_store
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy

EMAIL = "alice.private@example.com"
CARD = 4111111111111111
CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
)


def cloud_first(local: FakeUpstream, cloud: FakeUpstream, **sensitivity: Any) -> Any:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": "fake-local",
                    "locality": "local",
                    "responses_api": True,
                },
                "cloud": {
                    "provider": "openai",
                    "base_url": cloud.base_url,
                    "model": "fake-cloud",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                    "responses_api": True,
                },
            },
            "sensitivity": sensitivity,
            "default": {"to": ["cloud"], "fallback": ["local"]},
        },
        source="<cloud first>",
    )


@pytest.fixture
def egress(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> LiveProxy:
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
    "tool description": (
        CHAT,
        chat(
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "description": f"ask {EMAIL}",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ]
        ),
    ),
    "tool parameters": (
        CHAT,
        chat(
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "parameters": {
                            "type": "object",
                            "properties": {"who": {"type": "string", "default": EMAIL}},
                        },
                    },
                }
            ]
        ),
    ),
    "response_format schema": (
        CHAT,
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"type": "object", "description": EMAIL}},
            }
        ),
    ),
    "message name": (CHAT, messages({"role": "user", "name": EMAIL, "content": "hi"})),
    "refusal part": (
        CHAT,
        messages(
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": f"I will not email {EMAIL}"}],
            }
        ),
    ),
    "tool-call arguments object": (
        CHAT,
        messages(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": {"to": EMAIL}},
                    }
                ],
            }
        ),
    ),
    "text part not a string": (
        CHAT,
        messages({"role": "system", "content": [{"type": "text", "text": {"note": EMAIL}}]}),
    ),
    "card as a bare number part": (CHAT, messages({"role": "user", "content": [CARD]})),
    "completions suffix": (COMPLETIONS, {"model": "auto", "prompt": "hi", "suffix": EMAIL}),
    "embeddings input": (EMBEDDINGS, {"model": "auto", "input": ["a", EMAIL]}),
    "responses instructions": (
        RESPONSES,
        {"model": "auto", "input": "hi", "instructions": f"mail {EMAIL}"},
    ),
    "responses tools": (
        RESPONSES,
        {
            "model": "auto",
            "input": "hi",
            "tools": [{"type": "function", "name": "f", "description": EMAIL, "parameters": {}}],
        },
    ),
}


@pytest.mark.parametrize("field", list(FIELDS))
def test_a_detectable_value_in_any_field_never_reaches_the_cloud(
    egress: LiveProxy, field: str
) -> None:
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


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        (
            CHAT,
            messages(
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ],
                }
            ),
            "image",
        ),
        (
            CHAT,
            messages(
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                    ],
                }
            ),
            "audio",
        ),
        (
            CHAT,
            messages(
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}
                    ],
                }
            ),
            "file",
        ),
        (CHAT, messages({"role": "user", "content": [5]}), "number"),
        (COMPLETIONS, {"model": "auto", "prompt": [15496, 11]}, "tokens"),
        (EMBEDDINGS, {"model": "auto", "input": [[15496, 11], [1]]}, "tokens"),
        (
            RESPONSES,
            {
                "model": "auto",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_image", "image_url": "https://example.org/x.png"}
                        ],
                    }
                ],
            },
            "image",
        ),
    ],
)
def test_values_the_detectors_cannot_read_keep_the_request_local(
    egress: LiveProxy, path: str, body: dict[str, Any], kind: str
) -> None:
    response = post(egress, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
    assert f"unreadable:{kind}" in egress.rows()[0].sensitive_reasons


def test_the_policy_can_allow_unreadable_values(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    proxy = proxy_factory(policy=cloud_first(fake_local, fake_cloud, unreadable="allow"))
    response = post(proxy, COMPLETIONS, {"model": "auto", "prompt": [15496, 11]})
    assert response.headers["x-lf-locality"] == "cloud"
    image = messages(
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        }
    )
    assert post(proxy, CHAT, image).headers["x-lf-locality"] == "cloud"


@pytest.mark.parametrize("content", [[5, None, True], [None], [True], [["nested"]]])
def test_malformed_content_parts_are_a_400_with_an_audit_row(
    egress: LiveProxy, content: list[Any]
) -> None:
    response = post(egress, CHAT, messages({"role": "user", "content": content}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith("messages[1]")
    rows = egress.rows()
    assert [r.outcome for r in rows] == ["error"] and rows[0].id == (
        response.headers["x-lf-decision-id"]
    )
    assert egress.cloud.model_calls() == [] and egress.local.model_calls() == []


@pytest.mark.parametrize("role", [["user"], {"r": "user"}, 5])
def test_a_responses_item_whose_role_is_not_a_string_is_a_400_with_an_audit_row(
    egress: LiveProxy, role: Any
) -> None:
    response = post(
        egress, RESPONSES, {"model": "auto", "input": [{"role": role, "content": "hi"}]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input[0].role"
    assert [r.outcome for r in egress.rows()] == ["error"]


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "values",
    [
        ["true", "false"],
        ["false", "true"],
        ["true", ""],
        ["TRUE"],
        ["1"],
        ["Yes"],
        ["on"],
        ["maybe"],
        ["true, false"],
        ["no", "On"],
    ],
)
def test_any_true_occurrence_of_a_sensitivity_header_makes_the_request_sensitive(
    egress: LiveProxy, values: list[str]
) -> None:
    headers = [("content-type", "application/json"), *(("x-lf-sensitive", v) for v in values)]
    with egress.client() as client:
        response = client.post(
            CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}', headers=headers
        )
    assert response.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []
    assert "header:x-lf-sensitive" in egress.rows()[0].sensitive_reasons


@pytest.mark.parametrize("values", [["false"], ["0"], ["no", "off"], [""], ["False", "NO"]])
def test_false_spellings_of_the_header_do_not_make_a_request_sensitive(
    egress: LiveProxy, values: list[str]
) -> None:
    headers = [("content-type", "application/json"), *(("x-sensitive", v) for v in values)]
    with egress.client() as client:
        response = client.post(
            CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}', headers=headers
        )
    assert response.headers["x-lf-locality"] == "cloud"


# --------------------------------------------------------------------------- browsers


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example"}, 421),
        ({"host": "evil.example:8080"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"origin": "http://localhost:3000"}, 403),
    ],
)
def test_a_foreign_host_or_origin_is_refused_and_audited(
    egress: LiveProxy, headers: dict[str, str], status: int
) -> None:
    response = post(egress, CHAT, chat(), **headers)
    assert response.status_code == status
    assert egress.cloud.model_calls() == [] and egress.local.model_calls() == []
    assert [r.outcome for r in egress.rows()] == ["error"]


def test_a_text_plain_post_from_a_page_is_refused_with_415(egress: LiveProxy) -> None:
    with egress.client() as client:
        response = client.post(
            CHAT,
            content=b'{"messages":[{"role":"user","content":"hi"}]}',
            headers={"content-type": "text/plain"},
        )
        missing = client.post(CHAT, content=b'{"messages":[{"role":"user","content":"hi"}]}')
    assert response.status_code == missing.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert egress.cloud.model_calls() == []


def test_same_origin_and_configured_hosts_and_origins_are_allowed(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    proxy = proxy_factory(
        policy=cloud_first(fake_local, fake_cloud),
        allowed_hosts="proxy.lan",
        allowed_origins="http://app.lan:3000",
    )
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
        assert client.get("/metrics", headers={"origin": "http://evil.example"}).status_code == 403
        assert client.get("/healthz", headers={"host": "10.0.0.5:8080"}).status_code == 200


def test_the_openai_sdk_still_works_through_every_check(egress: LiveProxy) -> None:
    sdk = openai.OpenAI(base_url=egress.base_url, api_key="k", max_retries=0, timeout=10)
    answer = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": f"write to {EMAIL}"}], user="someone"
    )
    assert answer.headers["x-lf-locality"] == "local"
    assert egress.cloud.model_calls() == []


# --------------------------------------------------------------------------- taint

TURN_1 = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "My diagnosis is confidential: stage 2."},
]
TURN_2 = [
    *TURN_1,
    {"role": "assistant", "content": "Understood."},
    {"role": "user", "content": "Summarise what I said."},
]


def test_the_proxy_session_header_and_history_stick(
    proxy_factory: Callable[..., LiveProxy],
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
) -> None:
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    policy = cloud_first(fake_local, fake_cloud)
    one = proxy_factory(router=Router(policy, audit=open_store(url, data_dir=tmp_path)))
    two = proxy_factory(router=Router(policy, audit=open_store(url, data_dir=tmp_path)))
    with one.client() as client:
        first = client.post(
            "/v1/chat/completions",
            json={"messages": TURN_1},
            headers={"x-lf-sensitive": "true", "x-lf-session": "s-1"},
        )
    assert first.headers["x-lf-locality"] == "local"
    fake_local.status = 503
    with two.client() as client:
        resent = client.post("/v1/chat/completions", json={"messages": TURN_2})
        session = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "new"}]},
            headers={"x-lf-session": "s-1"},
        )
    assert resent.status_code == session.status_code == 503
    assert resent.json()["error"]["code"] == "local_unavailable"
    assert fake_cloud.model_calls() == []


# --------------------------------------------------------------------------- property

SECRETS = [EMAIL, "card 4111 1111 1111 1111", "IBAN GB82 WEST 1234 5698 7654 32"]
_text = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=12)
_schema = st.fixed_dictionaries(
    {
        "type": st.just("object"),
        "properties": st.dictionaries(
            _text,
            st.fixed_dictionaries({"type": st.just("string"), "description": _text}),
            max_size=2,
        ),
    }
)
_tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": (
                st.fixed_dictionaries(
                    {"name": st.just("f"), "description": _text, "parameters": _schema}
                )
            ),
        }
    ),
    max_size=2,
)
_chat_message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant"]), "content": _text}
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("user"),
            "content": st.lists(
                st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
                min_size=1,
                max_size=2,
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "name": _text,
            "tool_calls": st.just(
                [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
            ),
        }
    ),
)
_options = {
    "user": _text,
    "metadata": st.dictionaries(_text, _text, max_size=2),
    "stop": st.lists(_text, max_size=2),
}
BODIES = st.one_of(
    st.tuples(
        st.just(CHAT),
        st.fixed_dictionaries(
            {"messages": st.lists(_chat_message, min_size=1, max_size=3)},
            optional={
                **_options,
                "tools": _tools,
                "response_format": st.fixed_dictionaries(
                    {
                        "type": st.just("json_schema"),
                        "json_schema": st.fixed_dictionaries(
                            {"name": st.just("s"), "schema": _schema}
                        ),
                    }
                ),
            },
        ),
    ),
    st.tuples(
        st.just(COMPLETIONS),
        st.fixed_dictionaries(
            {"prompt": st.one_of(_text, st.lists(_text, min_size=1, max_size=2))},
            optional={**_options, "suffix": _text},
        ),
    ),
    st.tuples(
        st.just(EMBEDDINGS),
        st.fixed_dictionaries(
            {"input": st.one_of(_text, st.lists(_text, min_size=1, max_size=2))},
            optional={"user": _text},
        ),
    ),
    st.tuples(
        st.just(RESPONSES),
        st.fixed_dictionaries(
            {
                "input": st.one_of(
                    _text,
                    st.lists(
                        st.fixed_dictionaries({"role": st.just("user"), "content": _text}),
                        min_size=1,
                        max_size=2,
                    ),
                )
            },
            optional={
                "instructions": _text,
                "metadata": st.dictionaries(_text, _text, max_size=2),
                "tools": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.just("function"),
                            "name": st.just("f"),
                            "description": _text,
                            "parameters": _schema,
                        }
                    ),
                    max_size=1,
                ),
            },
        ),
    ),
)


def _string_slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every string (("key", k) marks a key) except the wire's fixed words."""
    slots: list[tuple[Any, ...]] = []
    if isinstance(value, str):
        slots.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("role", "type", "name", "id") or isinstance(item, dict):
                slots.append((*path, ("key", key)))
            if key not in ("role", "type"):
                slots += _string_slots(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            slots += _string_slots(item, (*path, i))
    return slots


def _plant(body: Any, slot: tuple[Any, ...], secret: str) -> None:
    *parents, last = slot
    holder = body
    for step in parents:
        holder = holder[step]
    if isinstance(last, tuple):  # a key: rename it
        holder[f"{last[1]} {secret}"] = holder.pop(last[1])
    else:
        holder[last] = f"{holder[last]} {secret}"


TRIALS = 300


@settings(
    max_examples=TRIALS,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=BODIES, data=st.data())
def test_a_detectable_value_anywhere_in_a_random_body_never_reaches_the_cloud(
    egress: LiveProxy, case: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    path, body = case
    body = {"model": "auto", **copy.deepcopy(body)}
    # Everything but `model`, which is never forwarded (the destination's own model is).
    slot = data.draw(st.sampled_from([s for s in _string_slots(body) if s != ("model",)]))
    secret = data.draw(st.sampled_from(SECRETS))
    _plant(body, slot, secret)
    egress.cloud.reset()
    response = post(egress, path, body)
    assert response.status_code in (200, 400, 503), response.text
    for seen in egress.cloud.model_calls():
        sent = orjson.dumps(seen.body).decode()
        assert secret not in sent and "4111" not in sent


ANTHROPIC_FIELDS = [
    "user",
    "stop",
    "tool description",
    "response_format schema",
    "message name",
    "tool-call arguments object",
    "text part not a string",
    "card as a bare number part",
]


@pytest.mark.parametrize("field", ANTHROPIC_FIELDS)
def test_an_anthropic_cloud_gets_nothing_the_translation_would_carry(
    proxy: LiveProxy, field: str
) -> None:
    # The scan reads the OpenAI-shaped body before translation; the translation only
    # moves its strings (user -> metadata.user_id, stop -> stop_sequences, ...).
    _, body = FIELDS[field]
    response = post(proxy, CHAT, body, **{"x-lf-kind": "reason"})
    assert response.status_code == 200, response.text
    assert response.headers["x-lf-locality"] == "local"
    assert proxy.cloud.model_calls() == []


def test_an_anthropic_cloud_still_gets_a_clean_reasoning_request(proxy: LiveProxy) -> None:
    response = post(proxy, CHAT, chat(user="team-a", stop=["END"]), **{"x-lf-kind": "reason"})
    assert response.headers["x-lf-locality"] == "cloud"
    (seen,) = proxy.cloud.model_calls()
    assert seen.body["metadata"] == {"user_id": "team-a"}


def test_a_repeated_session_header_is_refused(egress: LiveProxy) -> None:
    with egress.client() as client:
        response = client.post(
            CHAT, json=chat(), headers=[("x-lf-session", "s-1"), ("x-lf-session", "s-2")]
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-lf-session"


def test_a_streamed_request_is_scanned_the_same_way(egress: LiveProxy) -> None:
    sdk = openai.OpenAI(base_url=egress.base_url, api_key="k", max_retries=0, timeout=10)
    with sdk.chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        metadata={"contact": EMAIL},
        store=True,
    ) as response:
        assert response.headers["x-lf-locality"] == "local"
        assert "".join(response.iter_lines())
    assert egress.cloud.model_calls() == []
