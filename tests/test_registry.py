"""registry.py: what may count as local."""

from __future__ import annotations

import ipaddress

import pytest

from llm_localfirst.registry import TrustedHosts, address_is_local, resolves_local


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.9", True),
        ("192.168.1.1", True),
        ("169.254.10.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("2606:4700::1111", False),
    ],
)
def test_loopback_private_and_link_local_addresses_are_local(address: str, local: bool) -> None:
    assert address_is_local(ipaddress.ip_address(address)) is local


def test_trusted_networks_extend_what_is_local() -> None:
    trusted = TrustedHosts.parse(["100.64.0.0/10", "gpu.lan"])
    assert address_is_local(ipaddress.ip_address("100.100.1.1"), trusted)
    assert "gpu.lan" in trusted.names
    with pytest.raises(ValueError, match="not a host name or network"):
        TrustedHosts.parse(["http://x/"])


def test_resolving_checks_every_address() -> None:
    assert resolves_local("localhost", TrustedHosts())[0]
    assert resolves_local("127.0.0.1", TrustedHosts()) == (True, "")
    ok, detail = resolves_local("8.8.4.4", TrustedHosts())
    assert not ok and "not a local address" in detail
    ok, detail = resolves_local("no-such-host.invalid", TrustedHosts())
    assert not ok and "cannot resolve" in detail


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_servers_know_which_bind_addresses_are_loopback(host: str, loopback: bool) -> None:
    from llm_localfirst.registry import is_loopback_host

    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    "address",
    [
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: tunnels to the internet
        "2002:c000:204::1",  # 6to4
        "64:ff9b::808:808",  # NAT64 to 8.8.8.8
        "100.64.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "203.0.113.9",
        "2001:db8::1",
    ],
)
def test_relay_and_other_special_ranges_are_never_local(address: str) -> None:
    assert address_is_local(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "entry",
    [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/7",
        "fd00::/31",
        "2001::/32",
        "2002:c000::/48",
        "224.0.0.0/8",
        "::/128",
    ],
)
def test_trusts_that_cover_everything_or_too_much_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="trusted_local_hosts entry"):
        TrustedHosts.parse([entry])


def test_a_policy_trusting_everything_is_a_policy_error() -> None:
    from llm_localfirst.errors import PolicyError
    from llm_localfirst.policy import policy_from_data

    data = {
        "version": 1,
        "trusted_local_hosts": ["0.0.0.0/0"],
        "destinations": {
            "a": {
                "provider": "openai",
                "model": "m",
                "locality": "local",
                "base_url": "http://8.8.8.8:11434/v1",
            }
        },
        "default": {"to": ["a"]},
    }
    with pytest.raises(PolicyError, match="trusts too much"):
        policy_from_data(data)
