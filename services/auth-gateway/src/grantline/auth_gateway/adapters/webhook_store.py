"""Webhook deliveries already handled, keyed by (provider, delivery id), for de-duplication."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters.tables import webhook_deliveries


async def delivery_seen(session: AsyncSession, provider: str, delivery_id: str) -> bool:
    """True when this delivery was handled before."""
    query = select(webhook_deliveries.c.delivery_id).where(
        webhook_deliveries.c.provider == provider, webhook_deliveries.c.delivery_id == delivery_id
    )
    return (await session.execute(query)).first() is not None


async def record_delivery(
    session: AsyncSession, *, provider: str, delivery_id: str, tenant_id: str | None, kind: str | None
) -> bool:
    """Remember a delivery; False when another request recorded it first (a concurrent replay)."""
    result = await session.execute(
        pg_insert(webhook_deliveries)
        .values(provider=provider, delivery_id=delivery_id, tenant_id=tenant_id, kind=kind)
        .on_conflict_do_nothing()
        .returning(webhook_deliveries.c.delivery_id)
    )
    return result.first() is not None


async def delete_old_deliveries(session: AsyncSession, *, before: datetime) -> int:
    """Forget deliveries older than every provider's replay window."""
    result = await session.execute(
        delete(webhook_deliveries).where(webhook_deliveries.c.received_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
