"""The audit query use case: one page of a tenant's records, newest first, with a signed cursor."""

from pydantic import SecretBytes

from grantline.audit.adapters import ledger_repository as repo
from grantline.audit.domain.cursor import decode_cursor, encode_cursor
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.hash_chain import StoredRecord
from grantline.contract.audit import (
    AuditQueryReply,
    AuditQueryRequest,
    AuditRecord,
    StoredAuditRecord,
)
from grantline.runtime.db.driver import DriverConnection


def query_from_request(request: AuditQueryRequest) -> AuditQuery:
    """Validate a bus request as a query (raises pydantic.ValidationError when it is not one)."""
    return AuditQuery.model_validate(request.model_dump())


def as_contract(record: StoredRecord) -> StoredAuditRecord:
    """A stored record as the contract shows it: the event as published, plus its place in the chain."""
    event = AuditRecord(
        id=record.record_id,
        occurred_at=record.occurred_at,
        tenant_id=record.tenant_id,
        actor=record.actor,
        action=record.action,
        connection_id=record.connection_id,
        provider=record.provider,
        user_id=record.user_id,
        app_id=record.app_id,
        run_id=record.run_id,
        tool=record.tool,
        outcome=record.outcome,  # type: ignore[arg-type]  # stored from a validated AuditRecord
        detail=record.detail,
    )
    return StoredAuditRecord(seq=record.seq, record=event, received_at=record.received_at, hash=record.hash)


async def query_records(
    conn: DriverConnection, query: AuditQuery, *, cursor_key: SecretBytes
) -> AuditQueryReply:
    """One page of records matching `query`; raises CursorError for a cursor that is not the tenant's."""
    before_seq = None
    if query.cursor is not None:
        before_seq = decode_cursor(query.cursor, tenant_id=query.tenant_id, key=cursor_key).seq
    rows = await repo.query_page(conn, query, before_seq=before_seq)
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        next_cursor = encode_cursor(query.tenant_id, page[-1].seq, key=cursor_key)
    return AuditQueryReply(records=[as_contract(record) for record in page], next_cursor=next_cursor)
