"""Events on the CONNECTIONS stream (``connections.>``)."""

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from grantline.contract.envelope import Event, Message

# "user:<id>" or "workspace"; the owner of a connection.
Owner = str


class ConnectionEvent(Event):
    connection_id: str
    owner: Owner = Field(pattern=r"^(user:.+|workspace)$")
    provider: str

    def user_id(self) -> str | None:
        """The user id of a user-owned connection, None for a workspace connection."""
        return self.owner.removeprefix("user:") if self.owner.startswith("user:") else None


class ConnectionGranted(ConnectionEvent):
    SUBJECT: ClassVar[str] = "connections.granted"
    type: Literal["connections.granted"] = "connections.granted"
    scopes: list[str] = []
    account: str | None = None
    expires_at: datetime | None = None
    reauthorized: bool = False
    # Not in the v1 table of DESIGN section 3 but needed by the refresher: a known hard expiry of the
    # refresh token itself (Microsoft), and whether the provider issued a refresh token at all.
    refresh_token_expires_at: datetime | None = None
    refreshable: bool = True
    # Whether this workspace connection may serve users without their own (the provider app's setting).
    shared_fallback: bool = False
    # Whether this workspace connection is the only one that counts for the provider: the tenant forced
    # the shared connection ("all apps use the shared authorization"), users' own ones are ignored.
    workspace_forced: bool = False
    auth_kind: str = "oauth2"
    # Scopes a server said the connection lacks that this grant still did not add (step-up).
    missing_scopes: list[str] = []


class TokenRefreshed(ConnectionEvent):
    SUBJECT: ClassVar[str] = "connections.refreshed"
    type: Literal["connections.refreshed"] = "connections.refreshed"
    expires_at: datetime | None = None
    refresh_token_rotated: bool = False
    refresh_token_expires_at: datetime | None = None


RevokeReason = Literal["user", "admin", "provider", "provider_app_disabled"]


class ConnectionRevoked(ConnectionEvent):
    SUBJECT: ClassVar[str] = "connections.revoked"
    type: Literal["connections.revoked"] = "connections.revoked"
    reason: RevokeReason


class ReauthRequired(ConnectionEvent):
    SUBJECT: ClassVar[str] = "connections.reauth_required"
    type: Literal["connections.reauth_required"] = "connections.reauth_required"
    reason: str


class ScopesMissing(ConnectionEvent):
    """A server refused a call for lack of scope (step-up): the connection does not hold ``missing_scopes``.

    ``missing_scopes`` is everything marked missing since the connection's last grant (not only what
    this report added); ``scopes`` is what the connection still holds for sure, its recorded scopes
    without the missing ones. A later ``connections.granted`` carries what remains missing after it.
    """

    SUBJECT: ClassVar[str] = "connections.scopes_missing"
    type: Literal["connections.scopes_missing"] = "connections.scopes_missing"
    scopes: list[str] = []
    missing_scopes: list[str]


class SharingChanged(ConnectionEvent):
    """A workspace connection's sharing changed with its provider app's settings (no new grant).

    ``shared_fallback``: it may serve users without their own; ``workspace_forced``: it serves every
    user, and users' own connections to the provider do not count. A later grant carries both again.
    """

    SUBJECT: ClassVar[str] = "connections.sharing_changed"
    type: Literal["connections.sharing_changed"] = "connections.sharing_changed"
    shared_fallback: bool
    workspace_forced: bool


class ConnectionExpiring(ConnectionEvent):
    SUBJECT: ClassVar[str] = "connections.expiring"
    type: Literal["connections.expiring"] = "connections.expiring"
    expires_at: datetime


class WebhookReceived(Event):
    SUBJECT: ClassVar[str] = "connections.webhook"
    type: Literal["connections.webhook"] = "connections.webhook"
    provider: str
    kind: str
    account: str | None = None
    verified: bool
    received_at: datetime
    # The connections the webhook affected, when the gateway could match them.
    connection_ids: list[str] = []


# A tenant's own provider as requirements see it: ids as the catalogue schema allows them.
ProviderIdentifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class TenantProviderApp(Message):
    """A product a tenant's own provider unlocks (``acme`` unlocks ``acme_mail``)."""

    id: ProviderIdentifier
    name: str = Field(max_length=200)
    category: ProviderIdentifier


class TenantProviderDefined(Event):
    """The vault stored (or replaced) a tenant's own provider definition: an OAuth server the tenant
    added with ``POST /v1/providers``, or an MCP server it discovered. Only what requirements need
    travels (ids, names, categories), never an endpoint or a client id."""

    SUBJECT: ClassVar[str] = "connections.provider_defined"
    type: Literal["connections.provider_defined"] = "connections.provider_defined"
    provider: ProviderIdentifier
    name: str = Field(max_length=200)
    category: ProviderIdentifier
    auth: str = Field(max_length=32)
    apps: list[TenantProviderApp] = Field(default_factory=list, max_length=100)


class ProviderEnablementChanged(Event):
    """A tenant switched a provider (a catalogue one or its own) on or off: a switched-off provider
    satisfies none of the tenant's requirements, and requirements naming it say so."""

    SUBJECT: ClassVar[str] = "connections.provider_enabled"
    type: Literal["connections.provider_enabled"] = "connections.provider_enabled"
    provider: ProviderIdentifier
    enabled: bool


class TenantProviderRemoved(Event):
    """The vault forgot a tenant's own provider definition: requirements naming it are unknown again."""

    SUBJECT: ClassVar[str] = "connections.provider_removed"
    type: Literal["connections.provider_removed"] = "connections.provider_removed"
    provider: ProviderIdentifier
