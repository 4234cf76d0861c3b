"""Appending received records to their tenants' chains, exactly once and without forking a chain."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.hash_chain import AuditEntry, ChainHead
from grantline.audit.domain.prepared_entry import PreparedEntry, prepare
from grantline.contract.audit import AuditRecord
from grantline.runtime.db.driver import DriverConnection


def entry_from_record(record: AuditRecord, received_at: datetime) -> AuditEntry:
    """The ledger entry for an `AuditRecord` event: its event id becomes the record id."""
    # Not validated again: every field comes from a validated AuditRecord under the same constraints.
    return AuditEntry.model_construct(
        tenant_id=record.tenant_id,
        record_id=record.id,
        occurred_at=record.occurred_at,
        received_at=received_at,
        action=record.action,
        actor=record.actor,
        connection_id=record.connection_id,
        provider=record.provider,
        app_id=record.app_id,
        run_id=record.run_id,
        tool=record.tool,
        user_id=record.user_id,
        outcome=record.outcome,
        detail=record.detail,
    )


@dataclass(frozen=True)
class AppendResult:
    """What a batch did: records stored, and records dropped as already stored."""

    stored: int
    duplicates: int


async def append_entries(
    conn: DriverConnection, entries: Sequence[PreparedEntry | AuditEntry]
) -> AppendResult:
    """Chain `entries` (in the given order per tenant) after each tenant's locked head; never commits.

    `conn` is in a transaction the caller owns, and not in pipeline mode (the rows go in with COPY).

    The head rows stay locked until the caller commits, so a second replica appending to the same tenant
    waits and then continues from the new head: chains never fork. Entries whose record id is already
    stored, or repeated within the batch, are dropped.
    """
    if not entries:
        return AppendResult(0, 0)
    prepared = [entry if isinstance(entry, PreparedEntry) else prepare(entry) for entry in entries]
    now = datetime.now(UTC)
    heads = await repo.lock_chain_heads(conn, [entry.tenant_id for entry in prepared], now)
    # Checked under the head locks: a replica storing the same record has committed or waits for us.
    seen = await repo.stored_record_ids(conn, (entry.record_id for entry in prepared))
    rows: list[tuple[str | None, ...]] = []
    moved: dict[str, ChainHead] = {}
    duplicates = 0
    for entry in prepared:
        if entry.record_id in seen:
            duplicates += 1
            continue
        seen.add(entry.record_id)
        link = entry.link(heads[entry.tenant_id])
        rows.append((entry.tenant_id, str(link.seq), *entry.texts, link.prev_hash, link.hash))
        heads[entry.tenant_id] = moved[entry.tenant_id] = ChainHead(link.seq, link.hash)
    await repo.copy_records(conn, rows)
    await repo.move_chain_heads(conn, moved, now)
    return AppendResult(len(rows), duplicates)
