"""Who is calling: a tenant API key (everything in the tenant) or a connect session (one user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.problems import Problem, not_found
from grantline.common.contract import vault, vault_admin


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    kind: Literal["api_key", "connect_session"]
    # Set for a connect session: the only user it may act for.
    user_id: str | None = None
    credential_id: str = ""

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
