"""A batch's inbox records and advisory locks in one round trip.

The batched consumers record every event of a batch in ``processed_events`` and take every lock the
batch's events will need, before doing anything else: one statement instead of two per event. The locks
are taken in one ordered scan, every tenant's before any user's and each tier in key order (the order
``lock_user`` and ``lock_tenant`` callers follow), so concurrent batches cannot deadlock; a lock asked
for again later in the transaction is already held and returns at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence

from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.adapters.locks import tenant_lock_key, user_lock_key

_INBOX_AND_LOCKS = (
    "WITH fresh AS ("
    " INSERT INTO satisfaction.processed_events (consumer, event_id)"
    " SELECT %(consumer)s, CAST(event_id AS uuid)"
    " FROM json_array_elements_text(CAST(%(event_ids)s AS json)) AS new(event_id)"
    " ON CONFLICT DO NOTHING"
    " RETURNING event_id)"
    " SELECT"
    " (SELECT count(CASE WHEN shared THEN pg_advisory_xact_lock_shared(hashtextextended(k, 0))"
    " ELSE pg_advisory_xact_lock(hashtextextended(k, 0)) END)"
    "  FROM (SELECT tier, shared, k FROM json_to_recordset(CAST(%(locks)s AS json))"
    '  AS l(tier integer, shared boolean, k text) ORDER BY tier, k COLLATE "C") AS ordered),'
    " (SELECT array_agg(event_id) FROM fresh)"
)


def ordered_locks(
    users: Iterable[tuple[str, str]], exclusive_tenants: Iterable[str] = ()
) -> list[dict[str, object]]:
    """The locks for ``users`` (their tenant's shared) and for ``exclusive_tenants`` (exclusive)."""
    users = set(users)
    exclusive = set(exclusive_tenants)
    tenants = {tenant_id for tenant_id, _ in users} | exclusive
    locks: list[dict[str, object]] = [
        {"tier": 0, "shared": tenant_id not in exclusive, "k": tenant_lock_key(tenant_id)}
        for tenant_id in tenants
    ]
    locks += [{"tier": 1, "shared": False, "k": user_lock_key(t, u)} for t, u in users]
    return locks


async def record_and_lock(
    conn: DriverConnection,
    consumer: str,
    event_ids: Sequence[uuid.UUID],
    *,
    users: Iterable[tuple[str, str]] = (),
    exclusive_tenants: Iterable[str] = (),
) -> set[uuid.UUID]:
    """Record the events for ``consumer`` and take the locks; returns the ids seen for the first time."""
    fresh = await send_record_and_lock(
        conn, consumer, event_ids, users=users, exclusive_tenants=exclusive_tenants
    )
    return await fresh()


async def send_record_and_lock(
    conn: DriverConnection,
    consumer: str,
    event_ids: Sequence[uuid.UUID],
    *,
    users: Iterable[tuple[str, str]] = (),
    exclusive_tenants: Iterable[str] = (),
) -> Callable[[], Awaitable[set[uuid.UUID]]]:
    """``record_and_lock`` in two steps: send the statement, then (the returned call) read its answer.

    On a pipelined connection sending does not wait, so a statement sent next travels with it.
    """
    if not event_ids:
        return _nothing_fresh
    cursor = await conn.execute(
        _INBOX_AND_LOCKS,
        {
            "consumer": consumer,
            "event_ids": json.dumps([str(event_id) for event_id in event_ids]),
            "locks": json.dumps(ordered_locks(users, exclusive_tenants)),
        },
        prepare=True,
    )

    async def fresh_ids() -> set[uuid.UUID]:
        row = await cursor.fetchone()
        assert row is not None
        return set(row[1] or ())

    return fresh_ids


async def _nothing_fresh() -> set[uuid.UUID]:
    return set()
