"""Which webhook URLs a tenant may register: https (http only in development) with a host, and no
literal non-public address unless development allows it. Names are checked where the connection is
made (``grantline.runtime.public_addresses.PublicAddressResolver``), so DNS rebinding gets nowhere."""

from __future__ import annotations

from urllib.parse import urlsplit

from grantline.runtime.public_addresses import is_ip_address, is_public_address


class UnsafeEndpointUrl(ValueError):
    """A URL no delivery may go to; the message names the rule, never more than the host."""


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """The URL when it may be used, else ``UnsafeEndpointUrl``."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeEndpointUrl("the endpoint URL must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise UnsafeEndpointUrl("the endpoint URL must not carry credentials")
    if allow_private:
        return url
    if parts.scheme != "https":
        raise UnsafeEndpointUrl("the endpoint URL must use https")
    if parts.hostname in ("localhost",) or parts.hostname.endswith(".localhost"):
        raise UnsafeEndpointUrl(f"host {parts.hostname!r} is not a public address")
    if is_ip_address(parts.hostname) and not is_public_address(parts.hostname):
        raise UnsafeEndpointUrl(f"host {parts.hostname!r} is not a public address")
    return url
