"""SSRF: every special-purpose address range is refused as a provider address, in every disguise.

The vault connects to providers only at public addresses (outside development). Before, carrier-grade
NAT (100.64.0.0/10, where some clouds serve instance metadata) passed as public, and so did IPv6
forms that carry a private IPv4 address (NAT64, 6to4, Teredo).
"""

import pytest

from grantline.vault.adapters.url_guard import UnsafeProviderUrl, check_provider_url, is_public_address

REFUSED = [
    # IPv4 special-purpose ranges (RFC 6890 and successors)
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "100.100.100.200",  # a cloud metadata address inside carrier-grade NAT
    "100.127.255.254",
    "127.0.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6 special-purpose ranges
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "100::1",
    # IPv6 carrying a private IPv4 address
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:100.64.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo whose client is 10.0.0.1
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "140.82.112.3",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_special_purpose_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeProviderUrl):
        check_provider_url(f"https://{host}/token", allow_private=False)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    check_provider_url(f"https://{host}/token", allow_private=False)
