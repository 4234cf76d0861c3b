"""What a tenant is told about a connection event: the notification type and a body without secrets.

The body follows Standard Webhooks' shape (``type``, ``timestamp``, ``data``). ``data`` names the
connection, its provider and owner and, per type, the reason or expiry; it is built field by field
from the event, so nothing else an event may carry (scopes, account details) is ever sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import (
    ConnectionEvent,
    ConnectionExpiring,
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
)
from grantline.contract.envelope import Event


@dataclass(frozen=True)
class Notification:
    """One event to tell a tenant about: its id (de-duplicates fan-out), type and body."""

    event_id: str
    tenant_id: str
    type: str
    connection_id: str
    body: bytes


def notification_for(event: Event) -> Notification | None:
    """The notification an event gives, or None for events tenants are not told about."""
    data: dict[str, Any]
    if isinstance(event, ConnectionGranted):
        kind, data = "connection.granted", {"reauthorized": event.reauthorized}
    elif isinstance(event, ReauthRequired):
        kind, data = "connection.reauth_required", {"reason": event.reason}
    elif isinstance(event, ConnectionRevoked):
        kind, data = "connection.revoked", {"reason": event.reason}
    elif isinstance(event, ConnectionExpiring):
        kind, data = "connection.expiring", {"expires_at": event.expires_at.isoformat()}
    elif isinstance(event, AuditRecord) and event.action == AuditAction.TOKEN_REFRESH_FAILED:
        if not event.connection_id:
            return None
        return _build(
            event, "connection.refresh_failed", event.connection_id, event.provider, event.user_id, {}
        )
    else:
        return None
    assert isinstance(event, ConnectionEvent)
    return _build(event, kind, event.connection_id, event.provider, event.user_id(), data)


def _build(
    event: Event,
    kind: str,
    connection_id: str,
    provider: str | None,
    user_id: str | None,
    extra: dict[str, Any],
) -> Notification:
    data = {
        "tenant_id": event.tenant_id,
        "connection_id": connection_id,
        "provider": provider,
        "user_id": user_id,
        "workspace": user_id is None,
        **extra,
    }
    body = {"type": kind, "timestamp": event.occurred_at.isoformat(), "data": data}
    encoded = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return Notification(str(event.id), event.tenant_id, kind, connection_id, encoded)
