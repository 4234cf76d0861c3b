"""The `api` section of a provider definition: how the tool-call proxy reaches the provider's API."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from grantline.providers.spec_base import FrozenSpec

# Headers the proxy owns: a definition may not make it send the token in one of these, or fix them.
_RESERVED_API_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "cookie", "te", "upgrade", "trailer"}
)


class ApiSpec(FrozenSpec):
    """How the tool-call proxy reaches the provider's API (docs/proxy.md).

    `base_url` is templated from the connection's settings (Shopify shop, Atlassian cloud id). Only
    its host and the `hosts` listed here are ever contacted, redirects included.
    """

    base_url: str
    # More hosts of the same provider that the API may redirect to or that tools address by path
    # prefix (GitHub's uploads host). Exact names, templated like base_url; no wildcards.
    hosts: tuple[str, ...] = ()
    # Where the token goes: a header whose value is `token_format` with `{token}` replaced.
    token_header: str = "Authorization"
    token_format: str = "Bearer {token}"
    # Headers the provider requires on every call (API version pins); the tool cannot drop them.
    headers: dict[str, str] = Field(default_factory=dict)
    # A cheap authenticated GET (path under base_url) that answers 401 when the token is dead; the
    # vault uses it (else oauth.userinfo_url) to tell a dead connection from a refused call.
    check_path: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    max_response_bytes: int = Field(default=256 * 1024 * 1024, ge=0)

    @field_validator("token_format")
    @classmethod
    def _has_token(cls, value: str) -> str:
        if value.count("{token}") != 1:
            raise ValueError("token_format must contain {token} exactly once")
        return value

    @field_validator("token_header")
    @classmethod
    def _usable_header(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value) or value.lower() in _RESERVED_API_HEADERS:
            raise ValueError(f"token_header {value!r} is not a header the proxy may set")
        return value

    @field_validator("headers")
    @classmethod
    def _usable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name) or name.lower() in _RESERVED_API_HEADERS:
                raise ValueError(f"header {name!r} is not a header the proxy may set")
        return value

    @field_validator("check_path")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "//" in value or ".." in value):
            raise ValueError("check_path must be an absolute path under base_url")
        return value

    def template_texts(self) -> dict[str, str]:
        """Every templated string, keyed by its field path."""
        texts = {"api.base_url": self.base_url}
        texts.update({f"api.hosts[{i}]": host for i, host in enumerate(self.hosts)})
        return texts
