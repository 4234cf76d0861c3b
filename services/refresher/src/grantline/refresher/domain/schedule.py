"""The refresh schedule's rules: when a connection is due, and how events change its entry.

Pure: no I/O, no clock reads. The adapters load an entry, apply an event here, and write it back.
"""

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from grantline.contract.connections import (
    ConnectionEvent,
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
)

State = Literal["scheduled", "unscheduled", "ended"]
SCHEDULED: State = "scheduled"
UNSCHEDULED: State = "unscheduled"
ENDED: State = "ended"


@dataclass(frozen=True)
class SchedulePolicy:
    """How far ahead of expiry to refresh, how to spread refreshes, when to warn of hard expiries."""

    margin: timedelta = timedelta(minutes=5)
    provider_margins: Mapping[str, timedelta] = field(default_factory=dict)
    jitter: timedelta = timedelta(minutes=2)
    warning_window: timedelta = timedelta(days=7)

    def margin_for(self, provider: str) -> timedelta:
        """The refresh margin of a provider (its override, else the default)."""
        return self.provider_margins.get(provider, self.margin)


@dataclass(frozen=True)
class ScheduleEntry:
    """What the refresher knows about one connection (the event-driven part of its row)."""

    connection_id: str
    tenant_id: str
    owner: str
    provider: str
    state: State
    last_event_at: datetime
    last_event_id: uuid.UUID
    end_reason: str | None = None
    expires_at: datetime | None = None
    due_at: datetime | None = None
    next_attempt_at: datetime | None = None
    attempts: int = 0
    refresh_token_expires_at: datetime | None = None
    hard_expires_at: datetime | None = None
    warn_at: datetime | None = None
    warned_expiry_at: datetime | None = None

    def stamp(self) -> tuple[datetime, uuid.UUID]:
        """The ordering stamp of the last event applied to this entry."""
        return (self.last_event_at, self.last_event_id)


def spread(connection_id: str, expires_at: datetime) -> float:
    """A stable fraction in [0, 1) per connection and expiry: one event always gives one due time."""
    digest = hashlib.sha256(f"{connection_id}|{expires_at.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def due_time(
    connection_id: str, provider: str, issued_at: datetime, expires_at: datetime, policy: SchedulePolicy
) -> datetime:
    """When a token issued at ``issued_at`` and expiring at ``expires_at`` should be refreshed.

    The margin is capped at half the token's lifetime and the jitter at a tenth of it, so a token
    that lives less than the margin is refreshed halfway through its life rather than in a loop.
    """
    lifetime = max(expires_at - issued_at, timedelta(0))
    margin = min(policy.margin_for(provider), lifetime / 2)
    jitter = min(policy.jitter, lifetime / 10) * spread(connection_id, expires_at)
    return expires_at - margin - jitter


def _is_newer(event: ConnectionEvent, current: ScheduleEntry | None) -> bool:
    return current is None or (event.occurred_at, event.id) > current.stamp()


def _warning(
    hard_expires_at: datetime | None, warned_expiry_at: datetime | None, policy: SchedulePolicy
) -> datetime | None:
    # Warn once per expiry: a new hard expiry (a rotated refresh token) arms a new warning.
    if hard_expires_at is None or hard_expires_at == warned_expiry_at:
        return None
    return hard_expires_at - policy.warning_window


def apply_event(
    current: ScheduleEntry | None, event: ConnectionEvent, policy: SchedulePolicy
) -> ScheduleEntry | None:
    """The entry after ``event``, or None when the event changes nothing (older, or not ours)."""
    if not _is_newer(event, current):
        return None
    base = ScheduleEntry(
        connection_id=event.connection_id,
        tenant_id=event.tenant_id,
        owner=event.owner,
        provider=event.provider,
        state=ENDED,
        last_event_at=event.occurred_at,
        last_event_id=event.id,
        warned_expiry_at=current.warned_expiry_at if current else None,
    )
    if isinstance(event, ConnectionRevoked | ReauthRequired):
        # A tombstone: kept so that a late, older grant cannot bring the connection back.
        reason = event.reason if isinstance(event, ReauthRequired) else f"revoked:{event.reason}"
        return replace(
            base,
            end_reason=event.type.removeprefix("connections.") + ":" + reason[:40],
            expires_at=current.expires_at if current else None,
            refresh_token_expires_at=current.refresh_token_expires_at if current else None,
        )
    if isinstance(event, ConnectionGranted):
        refreshable = event.refreshable
        refresh_expiry = event.refresh_token_expires_at
    elif isinstance(event, TokenRefreshed):
        refreshable = True
        keep = current is not None and not event.refresh_token_rotated
        refresh_expiry = event.refresh_token_expires_at
        if refresh_expiry is None and keep and current is not None:
            refresh_expiry = current.refresh_token_expires_at
    else:
        return None
    # A token that cannot be refreshed has a hard expiry of its own; a refresh token may have one.
    hard_expiry = refresh_expiry if refreshable else event.expires_at
    entry = replace(
        base,
        expires_at=event.expires_at,
        refresh_token_expires_at=refresh_expiry,
        hard_expires_at=hard_expiry,
        warn_at=_warning(hard_expiry, base.warned_expiry_at, policy),
    )
    if not refreshable or event.expires_at is None:
        return replace(entry, state=UNSCHEDULED)
    due = due_time(event.connection_id, event.provider, event.occurred_at, event.expires_at, policy)
    return replace(entry, state=SCHEDULED, due_at=due, next_attempt_at=due)
