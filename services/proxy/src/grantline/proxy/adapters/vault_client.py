"""Asking the vault for a tool call's token (`vault.resolve.<tenant>`) and reporting a refused one
(`vault.report.<tenant>`), presenting the run grant: the vault alone judges what a grant allows.

Raw nats-py with hand-built JSON: this runs on every call that misses the token cache, and the
pydantic round trip cost more than the request itself. Replies are read as the contract defines
them (``ResolveReply`` or ``ErrorReply``); the token goes straight into a ``SecretStr``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from pydantic import SecretStr

from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorCode
from grantline.contract.vault import SUBJECT_REPORT, SUBJECT_RESOLVE


@dataclass(frozen=True, slots=True)
class Resolved:
    """A token for one call, the connection it belongs to and that connection's settings."""

    token: SecretStr
    connection_id: str
    settings: dict[str, str]
    expires_in: float | None


@dataclass(frozen=True, slots=True)
class VaultRefused:
    """The vault's error reply (code and message, safe to show the tool)."""

    code: str
    message: str
    retry_after_seconds: float | None = None


class VaultClient:
    """Resolve and report over NATS with the proxy's own identity."""

    def __init__(self, nats: Callable[[], Client], *, timeout: float) -> None:
        self._nats = nats
        self._timeout = timeout

    async def resolve(
        self, tenant_id: str, grant: str, provider: str, tool: str | None, connection_id: str | None = None
    ) -> Resolved | VaultRefused:
        """The acting user's token for ``provider`` inside the grant (of ``connection_id`` if named)."""
        body: dict[str, object] = {
            "grant": grant,
            "provider": provider,
            "tool": tool,
            "include_settings": True,
        }
        if connection_id is not None:
            body["connection_id"] = connection_id
        return await self._ask(tenant_scoped(SUBJECT_RESOLVE, tenant_id), body)

    async def report(
        self,
        tenant_id: str,
        grant: str,
        provider: str,
        tool: str | None,
        connection_id: str,
        *,
        after_refresh: bool = False,
        insufficient_scope: Sequence[str] = (),
    ) -> Resolved | VaultRefused:
        """Tell the vault the provider answered 401 (a new token to retry with, or why there is none),
        or, with ``insufficient_scope``, 403 naming those scopes (the vault marks what the connection
        lacks for the user's next re-authorization and answers ``missing_scopes``)."""
        body: dict[str, object] = {
            "grant": grant,
            "provider": provider,
            "tool": tool,
            "connection_id": connection_id,
            "after_refresh": after_refresh,
        }
        if insufficient_scope:
            body.update(kind="insufficient_scope", scopes=list(insufficient_scope))
        return await self._ask(tenant_scoped(SUBJECT_REPORT, tenant_id), body)

    async def _ask(self, subject: str, body: Mapping[str, object]) -> Resolved | VaultRefused:
        try:
            reply = await self._nats().request(subject, json.dumps(body).encode(), timeout=self._timeout)
        except (TimeoutError, NoRespondersError):
            return VaultRefused(ErrorCode.PROVIDER_UNAVAILABLE.value, "the vault did not answer; retry")
        try:
            data = json.loads(reply.data)
        except ValueError:
            return VaultRefused(ErrorCode.INTERNAL.value, "the vault's answer was unreadable")
        error = data.get("error")
        if isinstance(error, dict):
            return VaultRefused(
                str(error.get("code", "internal")),
                str(error.get("message", "")),
                error.get("retry_after_seconds"),
            )
        expires_at = data.get("expires_at")
        expires_in = (
            (datetime.fromisoformat(expires_at) - datetime.now(UTC)).total_seconds() if expires_at else None
        )
        return Resolved(
            SecretStr(data["access_token"]),
            data["connection_id"],
            dict(data.get("settings") or {}),
            expires_in,
        )
