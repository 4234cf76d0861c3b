"""Refuse provider URLs that point inside the network (SSRF), unless development allows it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeProviderUrl(Exception):
    """The URL's host is private, loopback, link-local or otherwise not a public address."""


def _is_public(address: str) -> bool:
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


async def check_provider_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeProviderUrl unless every address the host resolves to is public (or allowed)."""
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
    try:
        addresses = [host] if _is_ip(host) else await _resolve(host, parts.port or 443)
    except OSError:
        raise UnsafeProviderUrl(f"provider host {host!r} does not resolve") from None
    for address in addresses:
        if not _is_public(address):
            raise UnsafeProviderUrl(f"provider host {host!r} resolves to a non-public address")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
