"""The caller's address, as rate limits key it (shared by the API and the pages)."""

from __future__ import annotations

from starlette.requests import Request


def client_address(request: Request) -> str:
    """The TCP peer's address: the load balancer's, unless FORWARDED_ALLOW_IPS trusts its headers."""
    return request.client.host if request.client else "unknown"
