"""Ordering rules for the ``app_user_connect`` mirror, kept from the ``connections.*`` events.

Row key: one row per **connection**, keyed ``(tenant_id, owner, provider, connection_id)``, not one per
``(user, provider)``. A user may hold two Google accounts; revoking the non-default one must leave the
user connected through the other, and an event about one connection must never be ordered against an
event about another. "Is this owner connected to provider X" is derived with ``provider_state``: connected
when *any* of the owner's rows for X is connected.

Each row remembers the ordering key ``(last_event_at, last_event_id)`` of the last event it applied. An
event is applied only when its own key ``(occurred_at, event_id)`` is strictly greater, which gives:

- idempotence: the same event twice is recognised by its id (or an equal key) and ignored;
- order: an event older than the last applied one never overwrites newer state (a late ``granted`` after
  a ``revoked`` does not resurrect the connection);
- determinism: two events with the same ``occurred_at`` are ordered by event id, so the live mirror and a
  mirror rebuilt from the stream (in any delivery order) end up equal.

Events are state assertions as of ``occurred_at``: ``granted`` and ``refreshed`` say "active",
``revoked`` and ``reauth_required`` say "not usable". A ``revoked`` for a connection never seen still
creates a (disconnected) row so that its older ``granted``, delivered late, cannot reconnect it.

What the last *grant* said (its scopes, and ``connected_at``: when the connection was last authorized) is
ordered separately by ``(connected_at, last_grant_event_id)``: a grant that is stale for the connected
state (a revoke came after it) still records its scopes if it is the newest grant. That makes every field
of the row a function of the *set* of events seen, not of their delivery order, so a mirror rebuilt from
the stream equals the live one even when live delivery reordered or repeated events. Times in the row are
event times, never the wall clock, for the same reason.

``connections.scopes_missing`` (step-up: a server said the connection lacks scopes) sets the row's
``missing_scopes``, which a report subtracts from its scopes. Those follow the newest of the grants and
the marks, by the same ordering key: a mark older than the newest grant is stale (the re-authorization
asked for the union), and each grant carries what it left missing. A mark for a connection never seen is
ignored: the vault publishes the grant first, and a mark cannot make a row connected anyway.

``connections.webhook`` events carry an account, not a connection id: the service maps the account to
its connections and passes one event per connection. Only a verified webhook that signals a revocation
changes a row; anything else is ignored (the vault's own ``connections.revoked`` follows anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from grantline.satisfaction.domain.report import HeldConnection

EventKind = Literal[
    "granted", "refreshed", "revoked", "reauth_required", "webhook", "scopes_missing", "sharing_changed"
]
IgnoreReason = Literal["duplicate", "stale", "not_applicable"]

_CONNECTING: frozenset[str] = frozenset({"granted", "refreshed"})


class ConnectionEvent(BaseModel):
    """The part of a ``connections.*`` event the mirror needs."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    kind: EventKind
    owner: str  # "user:<id>" or "workspace"
    provider: str
    connection_id: str
    occurred_at: AwareDatetime
    # Only ``granted`` carries scopes; other kinds leave the row's scopes as they are.
    scopes: frozenset[str] | None = None
    # ``granted`` and ``scopes_missing``: the scopes a server said the connection lacks.
    missing_scopes: frozenset[str] | None = None
    # Webhooks only: whether the provider's signature checked out and the event means "access revoked".
    verified: bool = True
    signals_revocation: bool = False

    @property
    def order_key(self) -> tuple[AwareDatetime, str]:
        """The key events are ordered by: time, then event id to break ties."""
        return (self.occurred_at, self.event_id)


class MirrorRow(BaseModel):
    """One connection's row in ``app_user_connect``."""

    model_config = ConfigDict(frozen=True)

    owner: str
    provider: str
    connection_id: str
    connected: bool
    scopes: frozenset[str] = frozenset()  # as of the newest grant
    connected_at: AwareDatetime | None = None  # when the newest grant happened; None if none was seen
    last_grant_event_id: str | None = None
    last_event_at: AwareDatetime  # the newest state event applied
    last_event_id: str
    # What a server said the connection lacks, as of the newest grant or mark (step-up).
    missing_scopes: frozenset[str] = frozenset()
    missing_marked_at: AwareDatetime | None = None
    missing_event_id: str | None = None

    @property
    def held_scopes(self) -> frozenset[str]:
        """The scopes the connection can be counted on for: its grant's, less those marked missing."""
        return self.scopes - self.missing_scopes

    @property
    def missing_key(self) -> tuple[AwareDatetime, str] | None:
        """The ordering key of the grant or mark ``missing_scopes`` comes from, if any."""
        if self.missing_marked_at is None or self.missing_event_id is None:
            return None
        return (self.missing_marked_at, self.missing_event_id)

    @property
    def updated_at(self) -> AwareDatetime:
        """The ``updated_at`` column: the time of the newest event the connected flag reflects."""
        return self.last_event_at

    @property
    def order_key(self) -> tuple[AwareDatetime, str]:
        """The ordering key of the last event applied to this row."""
        return (self.last_event_at, self.last_event_id)

    @property
    def grant_key(self) -> tuple[AwareDatetime, str] | None:
        """The ordering key of the newest grant applied to this row, if any."""
        if self.connected_at is None or self.last_grant_event_id is None:
            return None
        return (self.connected_at, self.last_grant_event_id)


@dataclass(frozen=True)
class Ignore:
    """The event must not change the row; ``reason`` is for metrics and logs."""

    reason: IgnoreReason


@dataclass(frozen=True)
class ProviderState:
    """The derived per-(owner, provider) view: connected through any connection, and which one to use."""

    connected: bool
    connection_id: str | None
    connected_at: AwareDatetime | None


def apply_event(row: MirrorRow | None, event: ConnectionEvent) -> MirrorRow | Ignore:
    """Decide the connection's new row for an event, or ``Ignore`` when it must change nothing."""
    if row is not None and (row.connection_id, row.owner, row.provider) != (
        event.connection_id,
        event.owner,
        event.provider,
    ):
        # A caller bug, not a data condition: rows are keyed per connection.
        raise ValueError("event does not belong to this mirror row")
    if event.kind == "scopes_missing":
        return _mark_missing(row, event)
    connects = _connects(event)
    if connects is None:
        return Ignore("not_applicable")
    if row is None:
        return _next_row(None, event, connects, newer_state=True, newer_grant=event.kind == "granted")
    if event.event_id in (row.last_event_id, row.last_grant_event_id):
        return Ignore("duplicate")
    newer_state = event.order_key > row.order_key
    grant_key = row.grant_key
    newer_grant = event.kind == "granted" and (grant_key is None or event.order_key > grant_key)
    if not newer_state and not newer_grant:
        return Ignore("stale")
    return _next_row(row, event, connects, newer_state=newer_state, newer_grant=newer_grant)


def provider_state(rows: Iterable[MirrorRow]) -> ProviderState:
    """Derive "connected to this provider" from one owner's rows for it: any active connection counts."""
    active = [row for row in rows if row.connected]
    if not active:
        return ProviderState(connected=False, connection_id=None, connected_at=None)
    # The most recently connected account is the one handed out; connection id breaks ties stably.
    newest = max(active, key=lambda row: (row.connected_at or row.last_event_at, row.connection_id))
    return ProviderState(connected=True, connection_id=newest.connection_id, connected_at=newest.connected_at)


def held_connections(rows: Iterable[MirrorRow]) -> list[HeldConnection]:
    """The rows as the report's ``HeldConnection`` inputs (owner ``user:<id>`` becomes ``user``)."""
    return [
        HeldConnection(
            provider=row.provider,
            connection_id=row.connection_id,
            scopes=row.held_scopes,
            connected=row.connected,
            owner="workspace" if row.owner == "workspace" else "user",
        )
        for row in rows
    ]


def _mark_missing(row: MirrorRow | None, event: ConnectionEvent) -> MirrorRow | Ignore:
    """A step-up mark: it changes ``missing_scopes`` only when newer than the newest grant and mark."""
    if row is None:
        return Ignore("not_applicable")
    if event.event_id == row.missing_event_id:
        return Ignore("duplicate")
    keys = [key for key in (row.grant_key, row.missing_key) if key is not None]
    if keys and event.order_key <= max(keys):
        return Ignore("stale")
    return row.model_copy(
        update={
            "missing_scopes": event.missing_scopes or frozenset(),
            "missing_marked_at": event.occurred_at,
            "missing_event_id": event.event_id,
        }
    )


def _connects(event: ConnectionEvent) -> bool | None:
    """True/False for the connected state the event asserts; None when it asserts nothing."""
    if event.kind == "webhook":
        return False if event.verified and event.signals_revocation else None
    if event.kind == "sharing_changed":
        return None  # the service's record keeps sharing (mirror_records), not the row
    return event.kind in _CONNECTING


def _next_row(
    row: MirrorRow | None, event: ConnectionEvent, connects: bool, *, newer_state: bool, newer_grant: bool
) -> MirrorRow:
    """Merge the event in: state fields if it is the newest event, grant fields if it is the newest grant."""
    if row is None:
        row = MirrorRow(
            owner=event.owner,
            provider=event.provider,
            connection_id=event.connection_id,
            connected=connects,
            last_event_at=event.occurred_at,
            last_event_id=event.event_id,
        )
    updates: dict[str, object] = {}
    if newer_state:
        updates.update(connected=connects, last_event_at=event.occurred_at, last_event_id=event.event_id)
    if newer_grant:
        updates.update(
            scopes=event.scopes or frozenset(),
            connected_at=event.occurred_at,
            last_grant_event_id=event.event_id,
        )
        if row.missing_key is None or event.order_key > row.missing_key:
            updates.update(
                missing_scopes=event.missing_scopes or frozenset(),
                missing_marked_at=event.occurred_at,
                missing_event_id=event.event_id,
            )
    return row.model_copy(update=updates)
