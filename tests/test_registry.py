"""registry.py: what may count as local."""

from __future__ import annotations

import ipaddress

import pytest

from llm_localfirst.registry import TrustedHosts, address_is_local, resolves_local


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.9", True), ("192.168.1.1", True),
    ("169.254.10.1", True), ("::1", True), ("fd00::1", True), ("fe80::1", True),
    ("::ffff:127.0.0.1", True), ("::ffff:8.8.8.8", False), ("8.8.8.8", False),
    ("1.1.1.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("2606:4700::1111", False),
])
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


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)])
def test_servers_know_which_bind_addresses_are_loopback(host: str, loopback: bool) -> None:
    from llm_localfirst.registry import is_loopback_host

    assert is_loopback_host(host) is loopback
