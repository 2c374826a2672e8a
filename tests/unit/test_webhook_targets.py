"""The webhook SSRF guard (`store.webhooks.targets`): which addresses a delivery may reach."""

from __future__ import annotations

import ipaddress

import pytest

from modelyard.store.webhooks.targets import TargetRefused, check_url, refusal, resolve


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0", "::",
     "224.0.0.1", "240.0.0.1"],  # fmt: skip
)
def test_link_local_metadata_and_non_unicast_addresses_are_never_targets(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False) is not None
    assert refusal(ip, allow_private=True) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1", "::1", "fd12::1"])
def test_private_and_loopback_addresses_need_the_setting(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert "MODELYARD_WEBHOOK_ALLOW_PRIVATE" in (refusal(ip, allow_private=False) or "")
    assert refusal(ip, allow_private=True) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_are_targets(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) is None


def test_saved_urls_are_checked_by_address_and_metadata_name_without_resolving() -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://metadata.google.internal/x",
                "https://METADATA.google.internal./", "http://127.0.0.1:8080/hook"):  # fmt: skip
        with pytest.raises(TargetRefused):
            check_url(url, allow_private=False)
    check_url("http://127.0.0.1:8080/hook", allow_private=True)
    check_url("https://hooks.example.invalid/x", allow_private=False)  # a name: checked at each attempt


def test_an_attempt_is_pinned_to_the_checked_address() -> None:
    with pytest.raises(TargetRefused, match="resolves to 127.0.0.1 is a private or loopback"):
        resolve("http://localhost:8123/hook?x=1", allow_private=False)
    target = resolve("http://user:pw@localhost:8123/hook?x=1", allow_private=True)
    assert target.url in ("http://127.0.0.1:8123/hook?x=1", "http://[::1]:8123/hook?x=1")
    assert (target.host, target.hostname) == ("localhost:8123", "localhost")
    with pytest.raises(TargetRefused, match="cannot resolve"):
        resolve("http://no-such-host.invalid/", allow_private=True)
