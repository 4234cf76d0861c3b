"""Refuse provider URLs that point inside the network (SSRF), unless development allows it.

Two checks. ``check_provider_url``, before a request: http(s) with a host, https only in production,
and a literal IP address must be public. ``provider_http.PublicAddressResolver``, when connecting:
every address a host name resolves to must be public. The second is where a name is checked, so the
addresses checked are the ones connected to (no window for DNS rebinding between check and connect).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class UnsafeProviderUrl(Exception):
    """The URL's host is private, loopback, link-local or otherwise not a public address."""


# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Ranges no provider lives in that this Python's ``is_global`` still counts as global: IETF protocol
# assignments (192.0.0.8, the dummy address, among them) and the deprecated 6to4 relay anycast.
_NEVER_PROVIDERS = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("192.88.99.0/24"))


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (``ipaddress``'s ``is_global``: not private,
    loopback, link-local, carrier-grade NAT, documentation, benchmarking, reserved, ...) and not
    multicast. An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4, Teredo) is judged by
    the IPv4 address traffic to it ends up at: ``64:ff9b::a9fe:a9fe`` is the metadata service."""
    ip = ipaddress.ip_address(address)
    carried = _carried_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    if carried:
        return all(_is_global(v4) for v4 in carried)
    return _is_global(ip)


def _is_global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv4Address) and any(ip in network for network in _NEVER_PROVIDERS):
        return False
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def _carried_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # (server, client)
    return []


def check_provider_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeProviderUrl for a URL no provider call may use (host names are checked on connect)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeProviderUrl(
            f"provider URL must be http(s) with a host: {parts.scheme}://{parts.hostname}"
        )
    if allow_private:
        return
    if parts.scheme != "https":
        raise UnsafeProviderUrl(f"provider URL must use https: {parts.hostname}")
    host = parts.hostname
    if _is_ip(host) and not is_public_address(host):
        raise UnsafeProviderUrl(f"provider host {host!r} is not a public address")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
