"""One bearer rule and one Host/Origin gate for every server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llm_localfirst.server.auth import (
    MAX_HEADERS,
    BearerTokens,
    ForbiddenOrigin,
    HeadersTooLarge,
    MisdirectedRequest,
    RequestGuard,
)
from tests.server.conftest import ADMIN_TOKEN, LiveProxy

BODY = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"Bearer k1", True),
        (b"bearer k1", True),
        (b"BEARER k2", True),
        (b"  Bearer k1  ", True),
        (b"Bearer k3", False),
        (b"Bearer  k1", False),
        (b"Basic k1", False),
        (b"Bearer", False),
        (b"k1", False),
        (b"Bearer k1x", False),
        (b"", False),
        (None, False),
    ],
)
def test_the_bearer_scheme_is_case_insensitive_and_the_token_exact(
    header: bytes | None, ok: bool
) -> None:
    tokens = BearerTokens(["k1", "k2"])
    assert tokens.matches(header) is ok
    assert BearerTokens([]).allows(header)  # no tokens configured: everyone is let in
    assert not BearerTokens([]).matches(header)


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in values.items()]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "127.1.2.3:8080",
        "lan-box:8080",
        "proxy.lan:9000",
    ],
)
def test_loopback_the_bound_host_and_allowed_hosts_pass(host: str) -> None:
    guard = RequestGuard(host="lan-box", port=8080, allowed_hosts=["proxy.lan:9000"])
    guard.check(headers(host=host))


@pytest.mark.parametrize(
    "host", ["evil.example:8080", "127.0.0.1:9", "10.0.0.1:8080", "proxy.lan:8080", "", "[bad"]
)
def test_other_hosts_are_misdirected(host: str) -> None:
    guard = RequestGuard(host="lan-box", port=8080, allowed_hosts=["proxy.lan:9000"])
    with pytest.raises(MisdirectedRequest):
        guard.check(headers(host=host))


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://app.lan:3000", True),
        ("http://127.0.0.1:3000", False),
        ("null", False),
        ("http://evil.example", False),
        ("file://", False),
        ("http://127.0.0.1:8080/path", False),
    ],
)
def test_only_the_servers_own_origin_and_allowed_origins_pass(origin: str, ok: bool) -> None:
    guard = RequestGuard(allowed_origins=["http://app.lan:3000"])
    check = headers(host="127.0.0.1:8080", origin=origin)
    if ok:
        guard.check(check)
    else:
        with pytest.raises(ForbiddenOrigin):
            guard.check(check)


def test_header_count_and_size_are_limited() -> None:
    guard = RequestGuard()
    guard.check([(f"x-{i}".encode(), b"v") for i in range(MAX_HEADERS)])
    with pytest.raises(HeadersTooLarge):
        guard.check([(f"x-{i}".encode(), b"v") for i in range(MAX_HEADERS + 1)])
    with pytest.raises(HeadersTooLarge):
        guard.check([(b"x-big", b"v" * 40_000)])


def test_proxy_keys_and_the_admin_token_follow_the_one_bearer_rule(
    proxy_factory: Callable[..., LiveProxy],
) -> None:
    proxy = proxy_factory(proxy_keys="key-one")
    with proxy.client() as client:
        lower = client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "bearer key-one"}
        )
        double = client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer  key-one"}
        )
        admin = client.get("/admin/decisions", headers={"authorization": f"BEARER {ADMIN_TOKEN}"})
    assert lower.status_code == 200 and double.status_code == 401
    assert admin.status_code == 200
