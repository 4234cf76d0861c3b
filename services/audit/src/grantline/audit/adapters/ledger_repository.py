"""Postgres access to the ledger: chain heads, appends, streaming reads, checkpoints, pages.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
audit service never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only).
Several tenants' values travel as one array parameter each: an expanded list of hundreds of parameters
costs more to build than to run.
"""

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from grantline.audit.domain.checkpoint import Checkpoint
from grantline.audit.domain.filters import AuditQuery
from grantline.audit.domain.hash_chain import GENESIS_HASH, ChainHead, StoredRecord
from grantline.runtime.db.driver import DriverConnection

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
_SELECT_RECORD = f"SELECT {', '.join(RECORD_COLUMNS)} FROM audit.ledger"  # noqa: S608 - this module's constants only


def stored_record(row: Mapping[str, Any]) -> StoredRecord:
    """A ledger row (a psycopg ``dict_row``) as the domain's record."""
    return StoredRecord.model_validate(row)


_CREATE_HEADS = """
    INSERT INTO audit.chain_heads (tenant_id, seq, hash, updated_at)
    SELECT t, 0, %(genesis)s, %(now)s FROM unnest(CAST(%(t)s AS text[])) AS t
    ON CONFLICT (tenant_id) DO NOTHING
    """

_LOCK_HEADS = """
    SELECT tenant_id, seq, hash FROM audit.chain_heads WHERE tenant_id = ANY(CAST(%(t)s AS text[]))
     ORDER BY tenant_id FOR UPDATE
    """


async def lock_chain_heads(
    conn: DriverConnection, tenant_ids: Sequence[str], now: datetime
) -> dict[str, ChainHead]:
    """Lock every head of `tenant_ids` in tenant order (no deadlocks), creating missing heads first."""
    ordered = sorted(set(tenant_ids))
    # One round trip in the usual case, where every tenant already has a chain.
    heads = await _lock_heads(conn, ordered)
    missing = [tenant for tenant in ordered if tenant not in heads]
    if missing:
        await conn.execute(_CREATE_HEADS, {"t": missing, "genesis": GENESIS_HASH, "now": now})
        heads.update(await _lock_heads(conn, missing))
    return heads


async def _lock_heads(conn: DriverConnection, ordered: list[str]) -> dict[str, ChainHead]:
    cursor = await conn.execute(_LOCK_HEADS, {"t": ordered})
    return {tenant_id: ChainHead(seq, hash) for tenant_id, seq, hash in await cursor.fetchall()}


async def stored_record_ids(conn: DriverConnection, record_ids: Iterable[str]) -> set[str]:
    """Which of `record_ids` (canonical UUID text) the ledger already holds (in any tenant)."""
    ids = list(record_ids)
    if not ids:
        return set()
    cursor = await conn.execute(
        "SELECT record_id FROM audit.ledger WHERE record_id = ANY(CAST(%(ids)s AS uuid[]))", {"ids": ids}
    )
    return {str(record_id) for (record_id,) in await cursor.fetchall()}


async def copy_records(conn: DriverConnection, rows: Sequence[Sequence[str | None]]) -> None:
    """Append rows (text values in RECORD_COLUMNS order, None for NULL) with COPY, in the transaction.

    COPY cannot run in psycopg's pipeline mode: `conn` must not be a ``runtime.driver_transaction``
    connection (the ingest opens its transaction itself, entrypoints/stream_consumer.py).
    """
    if not rows:
        return
    # COPY's text format written directly: per-value adaptation by psycopg costs more than the hashing.
    # Values rarely hold a character COPY must escape; one search over the batch finds out.
    plain = _COPY_SPECIAL.search("".join([value for row in rows for value in row if value])) is None
    escape = _copy_null if plain else _copy_text
    data = "".join(["\t".join([escape(value) for value in row]) + "\n" for row in rows])
    statement = f"COPY audit.ledger ({', '.join(RECORD_COLUMNS)}) FROM STDIN"
    async with conn.cursor() as cursor, cursor.copy(statement) as copy:
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


_MOVE_HEADS = """
    UPDATE audit.chain_heads h SET seq = v.seq, hash = v.hash, updated_at = %(now)s
      FROM unnest(CAST(%(t)s AS text[]), CAST(%(s)s AS bigint[]), CAST(%(h)s AS text[]))
           AS v(tenant_id, seq, hash)
     WHERE h.tenant_id = v.tenant_id
    """


async def move_chain_heads(conn: DriverConnection, heads: dict[str, ChainHead], now: datetime) -> None:
    """Point each tenant's head at its new last record (one statement for every tenant)."""
    if heads:
        await conn.execute(
            _MOVE_HEADS,
            {
                "now": now,
                "t": list(heads),
                "s": [head.seq for head in heads.values()],
                "h": [head.hash for head in heads.values()],
            },
        )


async def chain_head(conn: DriverConnection, tenant_id: str) -> ChainHead | None:
    """The tenant's recorded chain head, or None if it has no chain."""
    cursor = await conn.execute(
        "SELECT seq, hash FROM audit.chain_heads WHERE tenant_id = %(t)s", {"t": tenant_id}
    )
    row = await cursor.fetchone()
    return ChainHead(*row) if row is not None else None


async def tenants(conn: DriverConnection) -> list[str]:
    """Every tenant with a chain."""
    cursor = await conn.execute("SELECT tenant_id FROM audit.chain_heads ORDER BY tenant_id")
    return [tenant_id for (tenant_id,) in await cursor.fetchall()]


_RECORDS_AFTER = f"""
    {_SELECT_RECORD}
     WHERE tenant_id = %(t)s AND seq > %(after)s
     ORDER BY seq
     LIMIT %(limit)s
    """


async def stream_records(
    conn: DriverConnection, tenant_id: str, *, after_seq: int = 0, chunk: int = 5000
) -> AsyncIterator[StoredRecord]:
    """The tenant's records from `after_seq`, in seq order, read in keyset chunks (constant memory)."""
    while True:
        records = await first_records(conn, tenant_id, after_seq=after_seq, limit=chunk)
        for record in records:
            yield record
        if len(records) < chunk:
            return
        after_seq = records[-1].seq


async def first_records(
    conn: DriverConnection, tenant_id: str, *, after_seq: int, limit: int
) -> list[StoredRecord]:
    """Up to `limit` of the tenant's oldest records after `after_seq`."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_RECORDS_AFTER, {"t": tenant_id, "after": after_seq, "limit": limit})
        return [stored_record(row) for row in await cursor.fetchall()]


_LATEST_CHECKPOINT = """
    SELECT tenant_id, seq, hash, removed_count, created_at, key_id, signature
      FROM audit.checkpoints
     WHERE tenant_id = %(t)s
     ORDER BY seq DESC
     LIMIT 1
    """


async def latest_checkpoint(conn: DriverConnection, tenant_id: str) -> Checkpoint | None:
    """The tenant's newest checkpoint (where its remaining chain starts), or None."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LATEST_CHECKPOINT, {"t": tenant_id})
        row = await cursor.fetchone()
    return Checkpoint.model_validate(row) if row is not None else None


_ADD_CHECKPOINT = """
    INSERT INTO audit.checkpoints (tenant_id, seq, hash, removed_count, created_at, key_id, signature)
    VALUES (%(tenant_id)s, %(seq)s, %(hash)s, %(removed_count)s, %(created_at)s, %(key_id)s, %(signature)s)
    """


async def add_checkpoint(conn: DriverConnection, checkpoint: Checkpoint) -> None:
    """Store a signed checkpoint."""
    await conn.execute(_ADD_CHECKPOINT, checkpoint.model_dump())


# Counted in the statement, not with the cursor's rowcount: in pipeline mode (driver_transaction) that
# is known only once the result has been fetched, and a DELETE without RETURNING has nothing to fetch.
_DELETE_PREFIX = """
    WITH removed AS (
        DELETE FROM audit.ledger WHERE tenant_id = %(t)s AND seq <= %(through)s RETURNING 1
    )
    SELECT count(*) FROM removed
    """


async def delete_prefix(conn: DriverConnection, tenant_id: str, *, through_seq: int) -> int:
    """Delete the tenant's records up to `through_seq` (refused unless a checkpoint covers them)."""
    cursor = await conn.execute(_DELETE_PREFIX, {"t": tenant_id, "through": through_seq})
    row = await cursor.fetchone()
    assert row is not None  # an aggregate always returns a row
    return int(row[0])


async def retention_days(conn: DriverConnection, tenant_id: str) -> int | None:
    """The tenant's own retention, or None to use the default."""
    cursor = await conn.execute(
        "SELECT retention_days FROM audit.tenant_retention WHERE tenant_id = %(t)s", {"t": tenant_id}
    )
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else None


_SET_RETENTION = """
    INSERT INTO audit.tenant_retention (tenant_id, retention_days, updated_at)
    VALUES (%(t)s, %(days)s, %(now)s)
    ON CONFLICT (tenant_id) DO UPDATE SET retention_days = EXCLUDED.retention_days,
                                          updated_at = EXCLUDED.updated_at
    """


async def set_retention_days(conn: DriverConnection, tenant_id: str, days: int | None, now: datetime) -> None:
    """Set (or with None, clear) the tenant's own retention."""
    if days is None:
        await conn.execute("DELETE FROM audit.tenant_retention WHERE tenant_id = %(t)s", {"t": tenant_id})
        return
    await conn.execute(_SET_RETENTION, {"t": tenant_id, "days": days, "now": now})


# Filters that compare a column with the query's value of the same name.
_EQUALITY_FILTERS = ("user_id", "connection_id", "provider", "app_id", "run_id")


def _filters(query: AuditQuery, before_seq: int | None) -> tuple[list[str], dict[str, Any]]:
    """The WHERE conditions of a page (column names from this module only, values as parameters)."""
    conditions = ["tenant_id = %(tenant_id)s"]
    params: dict[str, Any] = {"tenant_id": query.tenant_id}
    for name in _EQUALITY_FILTERS:
        value = getattr(query, name)
        if value is not None:
            conditions.append(f"{name} = %({name})s")
            params[name] = value
    prefix = query.action_prefix
    if prefix is None and query.action is not None:
        conditions.append("action = %(action)s")
        params["action"] = query.action
    elif prefix:
        # A byte range under the "C" collation: "connection." <= action < "connection/" ("/" follows ".").
        conditions.append("action >= %(action_from)s AND action < %(action_to)s")
        params["action_from"], params["action_to"] = prefix, prefix[:-1] + "/"
    if query.since is not None:
        conditions.append("occurred_at >= %(since)s")
        params["since"] = query.since
    if query.until is not None:
        conditions.append("occurred_at < %(until)s")
        params["until"] = query.until
    if before_seq is not None:
        conditions.append("seq < %(before_seq)s")
        params["before_seq"] = before_seq
    return conditions, params


async def query_page(
    conn: DriverConnection, query: AuditQuery, *, before_seq: int | None
) -> list[StoredRecord]:
    """Up to `query.limit` + 1 matching records, newest (highest seq) first, older than `before_seq`."""
    conditions, params = _filters(query, before_seq)
    params["limit"] = query.limit + 1
    statement = f"{_SELECT_RECORD} WHERE {' AND '.join(conditions)} ORDER BY seq DESC LIMIT %(limit)s"
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement, params)
        return [stored_record(row) for row in await cursor.fetchall()]


async def count_records(conn: DriverConnection, tenant_id: str | None = None) -> int:
    """How many records the ledger holds (for one tenant, or all)."""
    if tenant_id is None:
        cursor = await conn.execute("SELECT count(*) FROM audit.ledger")
    else:
        cursor = await conn.execute(
            "SELECT count(*) FROM audit.ledger WHERE tenant_id = %(t)s", {"t": tenant_id}
        )
    row = await cursor.fetchone()
    assert row is not None  # an aggregate always returns a row
    return int(row[0])
