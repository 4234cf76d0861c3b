"""Endpoints and deliveries in Postgres; every function works on the caller's connection.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
notifier never loads SQLAlchemy, about 20 MB at rest (adapters/tables.py declares the tables for the
migrations only). JSON columns take ``Jsonb`` parameters; bytea ones take and give ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from grantline.contract.notifier import DeliveryInfo
from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class StoredEndpoint:
    endpoint_id: str
    tenant_id: str
    url: str
    description: str
    event_types: list[str]
    created_at: datetime


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to attempt now, with what sending it needs."""

    delivery_id: str
    tenant_id: str
    endpoint_id: str
    url: str
    sealed_secret: bytes
    body: bytes
    attempts: int


# A StoredEndpoint never holds the sealed secret: it leaves Postgres only to sign a delivery.
_INSERT_ENDPOINT = """
    INSERT INTO notifier.endpoints (endpoint_id, tenant_id, url, description, event_types, sealed_secret)
    VALUES (%(endpoint_id)s, %(tenant_id)s, %(url)s, %(description)s, %(event_types)s, %(sealed_secret)s)
    RETURNING endpoint_id, tenant_id, url, description, event_types, created_at
    """


async def insert_endpoint(
    conn: DriverConnection,
    *,
    endpoint_id: str,
    tenant_id: str,
    url: str,
    description: str,
    event_types: list[str],
    sealed_secret: bytes,
) -> StoredEndpoint:
    """Store a new endpoint."""
    params = {
        "endpoint_id": endpoint_id,
        "tenant_id": tenant_id,
        "url": url,
        "description": description,
        "event_types": Jsonb(event_types),
        "sealed_secret": sealed_secret,
    }
    async with conn.cursor(row_factory=class_row(StoredEndpoint)) as cursor:
        await cursor.execute(_INSERT_ENDPOINT, params)
        row = await cursor.fetchone()
    assert row is not None  # an INSERT ... RETURNING without ON CONFLICT returns its row or raises
    return row


_COUNT_ENDPOINTS = "SELECT count(*) FROM notifier.endpoints WHERE tenant_id = %(tenant_id)s"


async def count_endpoints(conn: DriverConnection, tenant_id: str) -> int:
    """How many endpoints the tenant has."""
    cursor = await conn.execute(_COUNT_ENDPOINTS, {"tenant_id": tenant_id})
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


_LIST_ENDPOINTS = """
    SELECT endpoint_id, tenant_id, url, description, event_types, created_at FROM notifier.endpoints
     WHERE tenant_id = %(tenant_id)s
     ORDER BY created_at
    """


async def list_endpoints(conn: DriverConnection, tenant_id: str) -> list[StoredEndpoint]:
    """The tenant's endpoints, oldest first."""
    async with conn.cursor(row_factory=class_row(StoredEndpoint)) as cursor:
        await cursor.execute(_LIST_ENDPOINTS, {"tenant_id": tenant_id})
        return await cursor.fetchall()


# RETURNING rather than the cursor's rowcount: in pipeline mode (runtime.driver_transaction) a
# result is only there once read, and reading the returned row is what waits for it.
_DELETE_ENDPOINT = """
    DELETE FROM notifier.endpoints
     WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s
    RETURNING endpoint_id
    """


async def delete_endpoint(conn: DriverConnection, tenant_id: str, endpoint_id: str) -> bool:
    """Remove an endpoint of the tenant (and its deliveries); False when it has none by that id."""
    cursor = await conn.execute(_DELETE_ENDPOINT, {"tenant_id": tenant_id, "endpoint_id": endpoint_id})
    return await cursor.fetchone() is not None


_ENDPOINTS_WANTING = """
    SELECT endpoint_id FROM notifier.endpoints
     WHERE tenant_id = %(tenant_id)s
       AND (jsonb_array_length(event_types) = 0 OR event_types @> %(wanted)s)
    """


async def endpoints_wanting(conn: DriverConnection, tenant_id: str, event_type: str) -> list[str]:
    """Ids of the tenant's endpoints subscribed to ``event_type`` (an empty list means every type)."""
    cursor = await conn.execute(_ENDPOINTS_WANTING, {"tenant_id": tenant_id, "wanted": Jsonb([event_type])})
    return [endpoint_id for (endpoint_id,) in await cursor.fetchall()]


_DELIVERY_COLUMNS = (
    "delivery_id",
    "tenant_id",
    "endpoint_id",
    "event_id",
    "event_type",
    "connection_id",
    "body",
)

# All rows in one statement, each column travelling as one array parameter.
_INSERT_DELIVERIES = """
    INSERT INTO notifier.deliveries
           (delivery_id, tenant_id, endpoint_id, event_id, event_type, connection_id, body)
    SELECT * FROM unnest(
           CAST(%(delivery_id)s AS text[]), CAST(%(tenant_id)s AS text[]),
           CAST(%(endpoint_id)s AS text[]), CAST(%(event_id)s AS text[]),
           CAST(%(event_type)s AS text[]), CAST(%(connection_id)s AS text[]),
           CAST(%(body)s AS bytea[]))
    ON CONFLICT ON CONSTRAINT deliveries_once_per_event DO NOTHING
    """


async def insert_deliveries(conn: DriverConnection, rows: list[dict[str, Any]]) -> None:
    """Queue deliveries; one already queued for the same endpoint and event is left alone."""
    if rows:
        params = {name: [row[name] for row in rows] for name in _DELIVERY_COLUMNS}
        await conn.execute(_INSERT_DELIVERIES, params)


# SKIP LOCKED lets replicas claim side by side; the leased rows' next_attempt_at becomes the lease's
# end, so a replica that dies mid-send leaves them due again exactly then.
_CLAIM_DUE = """
    WITH leased AS (
        UPDATE notifier.deliveries
           SET next_attempt_at = %(lease_until)s
         WHERE delivery_id IN (
               SELECT delivery_id FROM notifier.deliveries
                WHERE status = 'pending' AND next_attempt_at <= %(now)s
                ORDER BY next_attempt_at
                LIMIT %(limit)s
                  FOR UPDATE SKIP LOCKED)
        RETURNING delivery_id, tenant_id, endpoint_id, body, attempts
    )
    SELECT leased.delivery_id, leased.tenant_id, leased.endpoint_id, e.url, e.sealed_secret,
           leased.body, leased.attempts
      FROM leased JOIN notifier.endpoints AS e ON e.endpoint_id = leased.endpoint_id
    """


async def claim_due(
    conn: DriverConnection, *, now: datetime, lease: timedelta, limit: int
) -> list[DueDelivery]:
    """Pending deliveries due now, leased for ``lease`` (another replica skips them meanwhile)."""
    async with conn.cursor(row_factory=class_row(DueDelivery)) as cursor:
        await cursor.execute(_CLAIM_DUE, {"now": now, "lease_until": now + lease, "limit": limit})
        return await cursor.fetchall()


_RECORD_ATTEMPT = """
    UPDATE notifier.deliveries
       SET status = %(status)s, attempts = attempts + 1, last_status_code = %(status_code)s,
           last_error = %(error)s, next_attempt_at = %(next_attempt_at)s,
           delivered_at = %(delivered_at)s
     WHERE delivery_id = %(delivery_id)s
    """


async def record_attempt(
    conn: DriverConnection,
    delivery_id: str,
    *,
    succeeded: bool,
    status_code: int | None,
    error: str | None,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    """The outcome of one attempt: delivered, to be retried at ``retry_at``, or failed for good."""
    status = "succeeded" if succeeded else ("pending" if retry_at is not None else "failed")
    await conn.execute(
        _RECORD_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "status": status,
            "status_code": status_code,
            "error": error[:300] if error else None,
            "next_attempt_at": None if status != "pending" else retry_at,
            "delivered_at": now if succeeded else None,
        },
    )


# The optional filters are spliced in from these constants only (never from input), so each of the
# four statements gets a plan of its own rather than one generic plan for "maybe filtered".
_LIST_DELIVERIES = """
    SELECT delivery_id, endpoint_id, event_type, connection_id, status, attempts, last_status_code,
           last_error, created_at, next_attempt_at, delivered_at
      FROM notifier.deliveries
     WHERE tenant_id = %(tenant_id)s{filters}
     ORDER BY created_at DESC
     LIMIT %(limit)s
    """
_BY_ENDPOINT = " AND endpoint_id = %(endpoint_id)s"
_BY_STATUS = " AND status = %(status)s"


async def list_deliveries(
    conn: DriverConnection, tenant_id: str, *, endpoint_id: str | None, status: str | None, limit: int
) -> list[DeliveryInfo]:
    """The tenant's most recent deliveries, newest first."""
    filters = (_BY_ENDPOINT if endpoint_id is not None else "") + (_BY_STATUS if status is not None else "")
    params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "status": status, "limit": limit}
    async with conn.cursor(row_factory=class_row(DeliveryInfo)) as cursor:
        await cursor.execute(_LIST_DELIVERIES.format(filters=filters), params)
        return await cursor.fetchall()
