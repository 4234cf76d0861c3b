"""Public addresses only: the SSRF guard shared by every service that calls URLs it was given.

``is_public_address`` judges one IP address; ``PublicAddressResolver`` resolves like the system
resolver for aiohttp and refuses a host any of whose addresses is not public. Checked at connect time,
the addresses checked are the ones connected to, so DNS rebinding between a check and the connection
gets nowhere. The vault uses both for provider calls, the notifier for tenants' webhook endpoints.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class NonPublicAddress(OSError):
    """A host resolved to a non-public address (an OSError: aiohttp wraps it in ClientConnectorDNSError)."""


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


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IP literal (rather than a name to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class PublicAddressResolver(AbstractResolver):
    """Resolves like the system resolver, and refuses hosts with a private, loopback or link-local address.

    Checked here, at connect time, the addresses checked are the addresses connected to: a name that
    resolves to a public address for a check and to an internal one a moment later (DNS rebinding)
    never gets a connection.
    """

    def __init__(self, what: str = "host") -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._what = what

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, all of them public, or ``NonPublicAddress``."""
        results = await self._inner.resolve(host, port, family)
        if not all(is_public_address(result["host"]) for result in results):
            raise NonPublicAddress(f"{self._what} {host.rstrip('.')!r} resolves to a non-public address")
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()
