"""The service's mirror record (the domain's row plus what the service keeps beside it) and its rules.

Both the live consumer and ``grantline satisfaction rebuild`` go through ``apply_to_record``, so the
rebuilt mirror is computed by exactly the rules the live one is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from grantline.common.contract.connections import (
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
    WebhookReceived,
)
from grantline.common.contract.envelope import Event
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
}


@dataclass(frozen=True)
class MirrorRecord:
    """One connection in the mirror: the domain row, its tenant, and the service's extra columns."""

    tenant_id: str
    row: MirrorRow
    last_event_kind: str
    account: str | None = None  # as of the newest grant; webhooks name accounts, not connections
    shared_fallback: bool = False  # as of the newest grant
    last_reason: str | None = None  # the reason of the newest state event (revocations, reauth)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The primary key ``(tenant_id, owner, provider, connection_id)``."""
        return (self.tenant_id, self.row.owner, self.row.provider, self.row.connection_id)


def to_mirror_event(event: Event) -> ConnectionEvent | None:
    """The domain's view of a ``connections.*`` event that names a connection; None for other events."""
    kind = _KINDS.get(type(event))
    if kind is None:
        return None
    assert isinstance(event, ConnectionGranted | TokenRefreshed | ConnectionRevoked | ReauthRequired)
    return ConnectionEvent(
        event_id=str(event.id),
        kind=kind,
        owner=event.owner,
        provider=event.provider,
        connection_id=event.connection_id,
        occurred_at=event.occurred_at,
        scopes=frozenset(event.scopes) if isinstance(event, ConnectionGranted) else None,
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
    reason: str | None = None


def event_extras(event: Event) -> EventExtras:
    """The extras of a ``connections.*`` event."""
    if isinstance(event, ConnectionGranted):
        return EventExtras(account=event.account, shared_fallback=event.shared_fallback)
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
    decision = apply_event(record.row if record is not None else None, event)
    if isinstance(decision, Ignore):
        return decision
    extras = extras or EventExtras()
    base = record or MirrorRecord(tenant_id=tenant_id, row=decision, last_event_kind=event.kind)
    newer_state = decision.last_event_id == event.event_id
    newer_grant = event.kind == "granted" and decision.last_grant_event_id == event.event_id
    return replace(
        base,
        row=decision,
        last_event_kind=event.kind if newer_state else base.last_event_kind,
        last_reason=extras.reason if newer_state else base.last_reason,
        account=extras.account if newer_grant else base.account,
        shared_fallback=extras.shared_fallback if newer_grant else base.shared_fallback,
    )
