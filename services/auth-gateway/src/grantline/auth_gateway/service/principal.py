"""Who is calling: a tenant API key (everything in the tenant) or a connect session (one user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.problems import Problem, not_found
from grantline.contract import vault, vault_admin


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    kind: Literal["api_key", "connect_session"]
    # Set for a connect session: the only user it may act for.
    user_id: str | None = None
    credential_id: str = ""
    # A connect session minted for missing requirements (a held run's link) may connect only these
    # providers; None: every provider of the tenant.
    providers: tuple[str, ...] | None = None
    # A connect session's new connections of these providers use the tenant's named app given here
    # ((provider, app name) pairs); any other provider, its default app. Chosen by whoever minted the
    # session (the tenant's key or its runner), never by the end user.
    provider_apps: tuple[tuple[str, str], ...] = ()

    @property
    def actor(self) -> str:
        """How audit records name this caller (never the credential itself)."""
        if self.kind == "connect_session":
            return f"user:{self.user_id}"
        return f"api_key:{self.credential_id}"

    def owner_for(self, *, user_id: str | None, workspace: bool) -> str:
        """The connection owner a request names, checked against what this caller may act for."""
        if workspace and user_id:
            raise Problem(422, "invalid_request", "give either user_id or workspace, not both")
        if not workspace and not user_id:
            if self.user_id is not None:
                return f"user:{self.user_id}"
            raise Problem(422, "invalid_request", "give user_id or workspace: true")
        if self.kind == "connect_session" and (workspace or user_id != self.user_id):
            raise Problem(403, "forbidden", "a connect session acts for its own user only")
        return "workspace" if workspace else f"user:{user_id}"

    def may_connect(self, provider: str) -> bool:
        """Whether this caller may list and connect this provider (a scoped link: only its own)."""
        return self.providers is None or provider in self.providers

    def require_connectable(self, provider: str) -> None:
        """Refuse a provider outside a scoped connect session's providers (as if it did not exist)."""
        if not self.may_connect(provider):
            raise Problem(404, "not_found", "this provider is not available")

    def app_for(self, provider: str) -> str | None:
        """The named app this caller's new connections of ``provider`` use (None: the default app)."""
        return dict(self.provider_apps).get(provider)

    def may_see(self, owner: str) -> bool:
        """Whether this caller may see or change a connection with this owner."""
        return self.kind == "api_key" or owner == f"user:{self.user_id}"


def require_api_key(principal: Principal) -> Principal:
    """Refuse connect sessions where only the tenant's own key may act."""
    if principal.kind != "api_key":
        raise Problem(403, "forbidden", "this endpoint needs the tenant API key")
    return principal


async def connection_visible_to(bus: Bus, principal: Principal, connection_id: str) -> vault.ConnectionInfo:
    """A connection this caller may see (the vault's record); another tenant's or user's is a 404."""
    info = await bus.ask(
        vault_admin.SUBJECT_CONNECTION_GET,
        vault_admin.ConnectionRef(tenant_id=principal.tenant_id, connection_id=connection_id),
        vault.ConnectionInfo,
    )
    if info.tenant_id != principal.tenant_id or not principal.may_see(info.owner):
        raise not_found("connection")
    return info
