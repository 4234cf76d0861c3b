"""Postgres access to the ledger: chain heads, appends, streaming reads, checkpoints, pages."""

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from grantline.audit.adapters.tables import chain_heads, checkpoints, ledger, tenant_retention
from grantline.audit.domain.checkpoint import Checkpoint
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.hash_chain import GENESIS_HASH, ChainHead, StoredRecord

RECORD_COLUMNS = (
    "tenant_id",
    "seq",
    "record_id",
    "occurred_at",
    "received_at",
    "action",
    "actor",
    "connection_id",
    "provider",
    "app_id",
    "run_id",
    "tool",
    "user_id",
    "outcome",
    "detail",
    "prev_hash",
    "hash",
)
_SELECT_RECORD = select(*(ledger.c[name] for name in RECORD_COLUMNS))


def stored_record(row: Any) -> StoredRecord:
    """A ledger row as the domain's record."""
    return StoredRecord.model_validate(dict(row._mapping))


async def lock_chain_heads(
    session: AsyncSession, tenant_ids: Sequence[str], now: datetime
) -> dict[str, ChainHead]:
    """Lock every head of `tenant_ids` in tenant order (no deadlocks), creating missing heads first."""
    ordered = sorted(set(tenant_ids))
    # One round trip in the usual case, where every tenant already has a chain.
    heads = await _lock_heads(session, ordered)
    missing = [tenant for tenant in ordered if tenant not in heads]
    if missing:
        await session.execute(
            text(
                "INSERT INTO audit.chain_heads (tenant_id, seq, hash, updated_at)"
                " SELECT t, 0, :genesis, :now FROM unnest(CAST(:t AS text[])) AS t"
                " ON CONFLICT (tenant_id) DO NOTHING"
            ),
            {"t": missing, "genesis": GENESIS_HASH, "now": now},
        )
        heads.update(await _lock_heads(session, missing))
    return heads


async def _lock_heads(session: AsyncSession, ordered: list[str]) -> dict[str, ChainHead]:
    rows = await session.execute(
        text(
            "SELECT tenant_id, seq, hash FROM audit.chain_heads WHERE tenant_id = ANY(CAST(:t AS text[]))"
            " ORDER BY tenant_id FOR UPDATE"
        ),
        {"t": ordered},
    )
    return {row.tenant_id: ChainHead(row.seq, row.hash) for row in rows}


async def stored_record_ids(session: AsyncSession, record_ids: Iterable[str]) -> set[str]:
    """Which of `record_ids` (canonical UUID text) the ledger already holds (in any tenant)."""
    ids = list(record_ids)
    if not ids:
        return set()
    # One array parameter: an expanded IN list of hundreds of parameters costs more to build than to run.
    rows = await session.execute(
        text("SELECT record_id FROM audit.ledger WHERE record_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
    )
    return {str(record_id) for record_id in rows.scalars()}


async def copy_records(session: AsyncSession, rows: Sequence[Sequence[str | None]]) -> None:
    """Append rows (text values in RECORD_COLUMNS order, None for NULL) with COPY, in the transaction."""
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    # COPY's text format written directly: per-value adaptation by psycopg costs more than the hashing.
    # Values rarely hold a character COPY must escape; one search over the batch finds out.
    plain = _COPY_SPECIAL.search("".join([value for row in rows for value in row if value])) is None
    escape = _copy_null if plain else _copy_text
    data = "".join(["\t".join([escape(value) for value in row]) + "\n" for row in rows])
    statement = f"COPY audit.ledger ({', '.join(RECORD_COLUMNS)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        await copy.write(data)


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_null(value: str | None) -> str:
    """`value` in COPY's text format, knowing it holds nothing to escape."""
    return "\\N" if value is None else value


def _copy_text(value: str | None) -> str:
    """`value` escaped for COPY's text format."""
    if value is None:
        return "\\N"
    if _COPY_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


async def move_chain_heads(session: AsyncSession, heads: dict[str, ChainHead], now: datetime) -> None:
    """Point each tenant's head at its new last record (one statement for every tenant)."""
    if heads:
        await session.execute(
            text(
                "UPDATE audit.chain_heads h SET seq = v.seq, hash = v.hash, updated_at = :now"
                " FROM unnest(CAST(:t AS text[]), CAST(:s AS bigint[]), CAST(:h AS text[]))"
                " AS v(tenant_id, seq, hash)"
                " WHERE h.tenant_id = v.tenant_id"
            ),
            {
                "now": now,
                "t": list(heads),
                "s": [head.seq for head in heads.values()],
                "h": [head.hash for head in heads.values()],
            },
        )


async def chain_head(session: AsyncSession | AsyncConnection, tenant_id: str) -> ChainHead | None:
    """The tenant's recorded chain head, or None if it has no chain."""
    row = (
        await session.execute(
            select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.tenant_id == tenant_id)
        )
    ).first()
    return ChainHead(row.seq, row.hash) if row is not None else None


async def tenants(session: AsyncSession | AsyncConnection) -> list[str]:
    """Every tenant with a chain."""
    rows = await session.execute(select(chain_heads.c.tenant_id).order_by(chain_heads.c.tenant_id))
    return list(rows.scalars())


async def stream_records(
    conn: AsyncConnection, tenant_id: str, *, after_seq: int = 0, chunk: int = 5000
) -> AsyncIterator[StoredRecord]:
    """The tenant's records from `after_seq`, in seq order, read in keyset chunks (constant memory)."""
    while True:
        rows = (
            await conn.execute(
                _SELECT_RECORD.where(ledger.c.tenant_id == tenant_id, ledger.c.seq > after_seq)
                .order_by(ledger.c.seq)
                .limit(chunk)
            )
        ).all()
        for row in rows:
            yield stored_record(row)
        if len(rows) < chunk:
            return
        after_seq = rows[-1].seq


async def first_records(
    session: AsyncSession, tenant_id: str, *, after_seq: int, limit: int
) -> list[StoredRecord]:
    """Up to `limit` of the tenant's oldest records after `after_seq`."""
    rows = await session.execute(
        _SELECT_RECORD.where(ledger.c.tenant_id == tenant_id, ledger.c.seq > after_seq)
        .order_by(ledger.c.seq)
        .limit(limit)
    )
    return [stored_record(row) for row in rows]


async def latest_checkpoint(session: AsyncSession | AsyncConnection, tenant_id: str) -> Checkpoint | None:
    """The tenant's newest checkpoint (where its remaining chain starts), or None."""
    row = (
        await session.execute(
            select(checkpoints)
            .where(checkpoints.c.tenant_id == tenant_id)
            .order_by(checkpoints.c.seq.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values.pop("id")
    return Checkpoint.model_validate(values)


async def add_checkpoint(session: AsyncSession, checkpoint: Checkpoint) -> None:
    """Store a signed checkpoint."""
    await session.execute(insert(checkpoints).values(**checkpoint.model_dump()))


async def delete_prefix(session: AsyncSession, tenant_id: str, *, through_seq: int) -> int:
    """Delete the tenant's records up to `through_seq` (refused unless a checkpoint covers them)."""
    result = await session.execute(
        delete(ledger).where(ledger.c.tenant_id == tenant_id, ledger.c.seq <= through_seq)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def retention_days(session: AsyncSession, tenant_id: str) -> int | None:
    """The tenant's own retention, or None to use the default."""
    row = await session.execute(
        select(tenant_retention.c.retention_days).where(tenant_retention.c.tenant_id == tenant_id)
    )
    return row.scalar_one_or_none()


async def set_retention_days(session: AsyncSession, tenant_id: str, days: int | None, now: datetime) -> None:
    """Set (or with None, clear) the tenant's own retention."""
    if days is None:
        await session.execute(delete(tenant_retention).where(tenant_retention.c.tenant_id == tenant_id))
        return
    statement = pg_insert(tenant_retention).values(tenant_id=tenant_id, retention_days=days, updated_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id"], set_={"retention_days": days, "updated_at": now}
        )
    )


def _filters(query: AuditQuery, before_seq: int | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [ledger.c.tenant_id == query.tenant_id]
    for name in ("user_id", "connection_id", "provider", "app_id", "run_id"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(ledger.c[name] == value)
    prefix = query.action_prefix
    if prefix is None and query.action is not None:
        conditions.append(ledger.c.action == query.action)
    elif prefix:
        # A byte range under the "C" collation: "connection." <= action < "connection/" ("/" follows ".").
        conditions.append(and_(ledger.c.action >= prefix, ledger.c.action < prefix[:-1] + "/"))
    if query.since is not None:
        conditions.append(ledger.c.occurred_at >= query.since)
    if query.until is not None:
        conditions.append(ledger.c.occurred_at < query.until)
    if before_seq is not None:
        conditions.append(ledger.c.seq < before_seq)
    return conditions


async def query_page(
    session: AsyncSession, query: AuditQuery, *, before_seq: int | None
) -> list[StoredRecord]:
    """Up to `query.limit` + 1 matching records, newest (highest seq) first, older than `before_seq`."""
    rows = await session.execute(
        _SELECT_RECORD.where(*_filters(query, before_seq))
        .order_by(ledger.c.seq.desc())
        .limit(query.limit + 1)
    )
    return [stored_record(row) for row in rows]


async def count_records(session: AsyncSession, tenant_id: str | None = None) -> int:
    """How many records the ledger holds (for one tenant, or all)."""
    statement = select(func.count()).select_from(ledger)
    if tenant_id is not None:
        statement = statement.where(ledger.c.tenant_id == tenant_id)
    return int((await session.execute(statement)).scalar_one())
