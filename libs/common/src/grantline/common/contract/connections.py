"""Events on the CONNECTIONS stream (``connections.>``)."""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from grantline.common.contract.envelope import Event

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
    auth_kind: str = "oauth2"


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
