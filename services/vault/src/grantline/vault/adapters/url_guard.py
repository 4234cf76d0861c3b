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


def is_public_address(address: str) -> bool:
    """Whether an IP address is routable on the internet (not private, loopback, link-local, ...)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


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
