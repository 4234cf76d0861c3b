"""Use case: apply a ``connections.*`` event to the mirror, then resume held runs or tell in-flight runs.

- A change that leaves a connection connected may satisfy held runs: those of the owner, or of every user
  of the tenant for a workspace connection (shared fallback).
- A sharing change (``connections.sharing_changed``: the provider app's fallback or force changed) may
  satisfy held runs of every user of the tenant, connected workspace connection or not.
- A step-up mark (``connections.scopes_missing``) only narrows what a connection counts for: nothing to
  resume; the re-authorization that follows is a ``connections.granted``, which resumes as usual.
- ``connections.provider_defined`` / ``provider_removed`` / ``provider_enabled`` change the tenant's own
  providers or switches (``tenant_provider_updates``).
- ``connections.revoked`` reaches every in-flight run that resolved the connection, whether or not the
  mirror row changed (the revocation may be older than the row's state, yet runs must still hear of it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from grantline.contract.connections import ConnectionEvent as ContractConnectionEvent
from grantline.contract.connections import (
    ConnectionRevoked,
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
    WebhookReceived,
)
from grantline.contract.envelope import Event
from grantline.contract.runs import RunAdmitted, RunConnectionRevoked
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxLocation
from grantline.satisfaction.adapters.locks import lock_tenant, lock_user
from grantline.satisfaction.adapters.mirror_repository import get_record, records_for_webhook, save_record
from grantline.satisfaction.domain.mirror_records import (
    MirrorRecord,
    apply_to_record,
    event_extras,
    to_mirror_event,
    webhook_mirror_events,
)
from grantline.satisfaction.domain.mirror_rules import Ignore
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.revocations import tell_runs_of_revocation
from grantline.satisfaction.service.run_admission import resume_held_runs
from grantline.satisfaction.service.run_grants import RunGrantIssuer
from grantline.satisfaction.service.tenant_provider_updates import apply_tenant_provider_event

log = logging.getLogger(__name__)


@dataclass
class ConnectionOutcome:
    """What one event changed (for tests, metrics and logs)."""

    changed: list[MirrorRecord] = field(default_factory=list)
    admitted: list[RunAdmitted] = field(default_factory=list)
    revoked: list[RunConnectionRevoked] = field(default_factory=list)


async def apply_connection_event(
    conn: DriverConnection,
    outbox: OutboxLocation,
    catalogues: CatalogueCache,
    grants: RunGrantIssuer,
    event: Event,
    *,
    locked: bool = False,
) -> ConnectionOutcome:
    """Apply one event from the CONNECTIONS stream (``locked``: the caller holds its locks already)."""
    outcome = ConnectionOutcome()
    if isinstance(event, WebhookReceived):
        if not locked:
            await lock_tenant(conn, event.tenant_id)
        outcome.changed = await _apply_webhook(conn, event)
        return outcome
    if isinstance(event, TenantProviderDefined | TenantProviderRemoved | ProviderEnablementChanged):
        outcome.admitted = await apply_tenant_provider_event(
            conn, outbox, catalogues, grants, event, locked=locked
        )
        return outcome
    mirror_event = to_mirror_event(event)
    if mirror_event is None:
        return outcome  # connections.expiring says nothing about connectedness
    assert isinstance(event, ContractConnectionEvent)
    user_id = event.user_id()
    if locked:
        pass
    elif user_id is None:
        await lock_tenant(conn, event.tenant_id)
    else:
        await lock_user(conn, event.tenant_id, user_id)
    record = await get_record(conn, event.tenant_id, event.owner, event.provider, event.connection_id)
    updated = apply_to_record(record, event.tenant_id, mirror_event, event_extras(event))
    if not isinstance(updated, Ignore):
        await save_record(conn, updated)
        outcome.changed.append(updated)
        if _may_satisfy(mirror_event.kind, updated.row.connected):
            # Read afresh: this replica's copy of the tenant's own providers may be behind.
            catalogue = await catalogues.fresh_for_tenant(conn, event.tenant_id)
            outcome.admitted = await resume_held_runs(
                conn, outbox, catalogue, grants, event.tenant_id, user_id
            )
    if isinstance(event, ConnectionRevoked):
        outcome.revoked = await tell_runs_of_revocation(
            conn, outbox, event.tenant_id, event.connection_id, event.provider, event.reason
        )
    return outcome


def _may_satisfy(kind: str, connected: bool) -> bool:
    # A mark only narrows. A sharing change may widen what users' own connections count for even when
    # the workspace connection is not connected (lifting a force), so it always looks at held runs.
    if kind == "sharing_changed":
        return True
    return connected and kind != "scopes_missing"


async def _apply_webhook(conn: DriverConnection, event: WebhookReceived) -> list[MirrorRecord]:
    records = await records_for_webhook(
        conn, event.tenant_id, event.provider, event.connection_ids, event.account
    )
    changed = []
    by_key = {record.row.connection_id: record for record in records}
    for mirror_event in webhook_mirror_events(event, records):
        updated = apply_to_record(by_key[mirror_event.connection_id], event.tenant_id, mirror_event)
        if not isinstance(updated, Ignore):
            await save_record(conn, updated)
            changed.append(updated)
    return changed
