"""The service's mirror record (the domain's row plus what the service keeps beside it) and its rules.

Both the live consumer and ``grantline satisfaction rebuild`` go through ``apply_to_record``, so the
rebuilt mirror is computed by exactly the rules the live one is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from grantline.contract.connections import (
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    ScopesMissing,
    SharingChanged,
    TokenRefreshed,
    WebhookReceived,
)
from grantline.contract.envelope import Event
from grantline.satisfaction.domain.mirror_rules import (
    ConnectionEvent,
    EventKind,
    Ignore,
    MirrorRow,
    apply_event,
)

# Webhook kinds (``grantline.providers.webhooks.WebhookKind`` values) that mean "this access is gone".
REVOKING_WEBHOOK_KINDS = frozenset(
    {"tokens_revoked", "token_revoked", "app_uninstalled", "authorization_revoked"}
)

_KINDS: dict[type[Event], EventKind] = {
    ConnectionGranted: "granted",
    TokenRefreshed: "refreshed",
    ConnectionRevoked: "revoked",
    ReauthRequired: "reauth_required",
    ScopesMissing: "scopes_missing",
    SharingChanged: "sharing_changed",
}


@dataclass(frozen=True)
class MirrorRecord:
    """One connection in the mirror: the domain row, its tenant, and the service's extra columns."""

    tenant_id: str
    row: MirrorRow
    last_event_kind: str
    account: str | None = None  # as of the newest grant; webhooks name accounts, not connections
    shared_fallback: bool = False  # as of the newest grant
    workspace_forced: bool = False  # only this workspace connection counts for its provider
    # Sharing (``shared_fallback``, ``workspace_forced``) follows the newest grant or sharing change.
    sharing_at: datetime | None = None
    sharing_event_id: str | None = None

    @property
    def sharing_key(self) -> tuple[datetime, str] | None:
        """The ordering key of the event the sharing flags come from, if any."""
        if self.sharing_at is None or self.sharing_event_id is None:
            return None
        return (self.sharing_at, self.sharing_event_id)

    last_reason: str | None = None  # the reason of the newest state event (revocations, reauth)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The primary key ``(tenant_id, owner, provider, connection_id)``."""
        return (self.tenant_id, self.row.owner, self.row.provider, self.row.connection_id)


_NAMING_A_CONNECTION = (
    ConnectionGranted,
    TokenRefreshed,
    ConnectionRevoked,
    ReauthRequired,
    ScopesMissing,
    SharingChanged,
)


def to_mirror_event(event: Event) -> ConnectionEvent | None:
    """The domain's view of a ``connections.*`` event that names a connection; None for other events."""
    kind = _KINDS.get(type(event))
    if kind is None:
        return None
    assert isinstance(
        event,
        ConnectionGranted
        | TokenRefreshed
        | ConnectionRevoked
        | ReauthRequired
        | ScopesMissing
        | SharingChanged,
    )
    return ConnectionEvent(
        event_id=str(event.id),
        kind=kind,
        owner=event.owner,
        provider=event.provider,
        connection_id=event.connection_id,
        occurred_at=event.occurred_at,
        scopes=frozenset(event.scopes) if isinstance(event, ConnectionGranted) else None,
        missing_scopes=(
            frozenset(event.missing_scopes) if isinstance(event, ConnectionGranted | ScopesMissing) else None
        ),
    )


def webhook_mirror_events(event: WebhookReceived, records: list[MirrorRecord]) -> list[ConnectionEvent]:
    """One domain event per connection the webhook affects (``records``: the matched mirror rows)."""
    return [
        ConnectionEvent(
            event_id=str(event.id),
            kind="webhook",
            owner=record.row.owner,
            provider=record.row.provider,
            connection_id=record.row.connection_id,
            occurred_at=event.occurred_at,
            verified=event.verified,
            signals_revocation=event.kind in REVOKING_WEBHOOK_KINDS,
        )
        for record in records
    ]


@dataclass(frozen=True)
class EventExtras:
    """What an event says beyond the domain's view: a grant's account and sharing, a revocation's reason."""

    account: str | None = None
    shared_fallback: bool = False
    workspace_forced: bool = False
    reason: str | None = None


def event_extras(event: Event) -> EventExtras:
    """The extras of a ``connections.*`` event."""
    if isinstance(event, ConnectionGranted | SharingChanged):
        return EventExtras(
            account=event.account if isinstance(event, ConnectionGranted) else None,
            shared_fallback=event.shared_fallback,
            workspace_forced=event.workspace_forced,
        )
    if isinstance(event, ConnectionRevoked | ReauthRequired):
        return EventExtras(reason=event.reason)
    return EventExtras()


def apply_to_record(
    record: MirrorRecord | None,
    tenant_id: str,
    event: ConnectionEvent,
    extras: EventExtras | None = None,
) -> MirrorRecord | Ignore:
    """The record after ``event``, or ``Ignore``; grant-only columns follow the newest grant."""
    extras = extras or EventExtras()
    if event.kind == "sharing_changed":
        return _change_sharing(record, event, extras)
    decision = apply_event(record.row if record is not None else None, event)
    if isinstance(decision, Ignore):
        return decision
    base = record or MirrorRecord(tenant_id=tenant_id, row=decision, last_event_kind=event.kind)
    newer_state = decision.last_event_id == event.event_id
    newer_grant = event.kind == "granted" and decision.last_grant_event_id == event.event_id
    updated = replace(
        base,
        row=decision,
        last_event_kind=event.kind if newer_state else base.last_event_kind,
        last_reason=extras.reason if newer_state else base.last_reason,
        account=extras.account if newer_grant else base.account,
    )
    if newer_grant and (base.sharing_key is None or event.order_key > base.sharing_key):
        updated = _with_sharing(updated, event, extras)
    return updated


def _change_sharing(
    record: MirrorRecord | None, event: ConnectionEvent, extras: EventExtras
) -> MirrorRecord | Ignore:
    """A provider app's sharing changed: it applies when newer than the grant or change the flags are from.

    A change for a connection never seen is ignored: its grant, published before it, carries the flags.
    """
    if record is None:
        return Ignore("not_applicable")
    if event.event_id == record.sharing_event_id:
        return Ignore("duplicate")
    if record.sharing_key is not None and event.order_key <= record.sharing_key:
        return Ignore("stale")
    return _with_sharing(record, event, extras)


def _with_sharing(record: MirrorRecord, event: ConnectionEvent, extras: EventExtras) -> MirrorRecord:
    return replace(
        record,
        shared_fallback=extras.shared_fallback,
        workspace_forced=extras.workspace_forced,
        sharing_at=event.occurred_at,
        sharing_event_id=event.event_id,
    )
