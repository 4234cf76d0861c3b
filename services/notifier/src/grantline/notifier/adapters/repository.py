"""Endpoints and deliveries in Postgres (SQLAlchemy; every function works in the caller's session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.notifier.adapters.tables import deliveries, endpoints


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


def _endpoint(row: Any) -> StoredEndpoint:
    return StoredEndpoint(
        row.endpoint_id, row.tenant_id, row.url, row.description, list(row.event_types), row.created_at
    )


async def insert_endpoint(
    session: AsyncSession,
    *,
    endpoint_id: str,
    tenant_id: str,
    url: str,
    description: str,
    event_types: list[str],
    sealed_secret: bytes,
) -> StoredEndpoint:
    """Store a new endpoint."""
    row = (
        await session.execute(
            insert(endpoints)
            .values(
                endpoint_id=endpoint_id,
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=event_types,
                sealed_secret=sealed_secret,
            )
            .returning(*[c for c in endpoints.c if c.name != "sealed_secret"])
        )
    ).one()
    return _endpoint(row)


async def count_endpoints(session: AsyncSession, tenant_id: str) -> int:
    """How many endpoints the tenant has."""
    return int(
        await session.scalar(
            select(func.count()).select_from(endpoints).where(endpoints.c.tenant_id == tenant_id)
        )
        or 0
    )


async def list_endpoints(session: AsyncSession, tenant_id: str) -> list[StoredEndpoint]:
    """The tenant's endpoints, oldest first."""
    rows = await session.execute(
        select(endpoints).where(endpoints.c.tenant_id == tenant_id).order_by(endpoints.c.created_at)
    )
    return [_endpoint(row) for row in rows]


async def delete_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: str) -> bool:
    """Remove an endpoint of the tenant (and its deliveries); False when it has none by that id."""
    result = await session.execute(
        delete(endpoints).where(endpoints.c.tenant_id == tenant_id, endpoints.c.endpoint_id == endpoint_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def endpoints_wanting(session: AsyncSession, tenant_id: str, event_type: str) -> list[str]:
    """Ids of the tenant's endpoints subscribed to ``event_type`` (an empty list means every type)."""
    rows = await session.execute(
        select(endpoints.c.endpoint_id).where(
            endpoints.c.tenant_id == tenant_id,
            or_(
                func.jsonb_array_length(endpoints.c.event_types) == 0,
                endpoints.c.event_types.contains([event_type]),
            ),
        )
    )
    return [row.endpoint_id for row in rows]


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue deliveries; one already queued for the same endpoint and event is left alone."""
    if rows:
        await session.execute(
            insert(deliveries).values(rows).on_conflict_do_nothing(constraint="deliveries_once_per_event")
        )


async def claim_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int
) -> list[DueDelivery]:
    """Pending deliveries due now, leased for ``lease`` (another replica skips them meanwhile)."""
    due = (
        select(deliveries.c.delivery_id)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    leased = (
        update(deliveries)
        .where(deliveries.c.delivery_id.in_(due))
        .values(next_attempt_at=now + lease)
        .returning(
            deliveries.c.delivery_id,
            deliveries.c.tenant_id,
            deliveries.c.endpoint_id,
            deliveries.c.body,
            deliveries.c.attempts,
        )
        .cte("leased")
    )
    rows = await session.execute(
        select(leased, endpoints.c.url, endpoints.c.sealed_secret).join(
            endpoints, and_(endpoints.c.endpoint_id == leased.c.endpoint_id)
        )
    )
    return [
        DueDelivery(
            row.delivery_id,
            row.tenant_id,
            row.endpoint_id,
            row.url,
            row.sealed_secret,
            row.body,
            row.attempts,
        )
        for row in rows
    ]


async def record_attempt(
    session: AsyncSession,
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
    await session.execute(
        update(deliveries)
        .where(deliveries.c.delivery_id == delivery_id)
        .values(
            status=status,
            attempts=deliveries.c.attempts + 1,
            last_status_code=status_code,
            last_error=error[:300] if error else None,
            next_attempt_at=None if status != "pending" else retry_at,
            delivered_at=now if succeeded else None,
        )
    )


async def list_deliveries(
    session: AsyncSession, tenant_id: str, *, endpoint_id: str | None, status: str | None, limit: int
) -> list[Any]:
    """The tenant's most recent deliveries, newest first."""
    query = select(deliveries).where(deliveries.c.tenant_id == tenant_id)
    if endpoint_id is not None:
        query = query.where(deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    rows = await session.execute(query.order_by(deliveries.c.created_at.desc()).limit(limit))
    return list(rows)
