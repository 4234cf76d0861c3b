"""Refuse provider URLs that point inside the network (SSRF), unless development allows it.

Two checks. ``check_provider_url``, before a request: http(s) with a host, https only in production,
and a literal IP address must be public. ``PublicAddressResolver`` (grantline.runtime.public_addresses),
when connecting: every address a host name resolves to must be public. The second is where a name is
checked, so the addresses checked are the ones connected to (no window for DNS rebinding).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from grantline.runtime.public_addresses import is_ip_address, is_public_address

__all__ = ["UnsafeProviderUrl", "check_provider_url", "is_public_address"]


class UnsafeProviderUrl(Exception):
    """The URL's host is private, loopback, link-local or otherwise not a public address."""


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
    if is_ip_address(host) and not is_public_address(host):
        raise UnsafeProviderUrl(f"provider host {host!r} is not a public address")
