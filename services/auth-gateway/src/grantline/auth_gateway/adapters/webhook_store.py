"""Webhook deliveries already handled, keyed by (provider, app, delivery id) and by (provider, app,
body hash).

The body hash catches a replay whose delivery id was changed where the provider does not sign it
(GitHub's `X-GitHub-Delivery`). Both keys are per provider app (the one whose secret verified it): two
apps, of one tenant or of two, can be sent byte-identical bodies, and one's delivery is no replay of
the other's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters.tables import webhook_deliveries


async def delivery_seen(
    session: AsyncSession, provider: str, provider_app_id: str, delivery_id: str, body_sha256: str
) -> bool:
    """True when this delivery to this app (its id, or its signed body) was handled before."""
    d = webhook_deliveries.c
    query = select(d.delivery_id).where(
        d.provider == provider,
        d.provider_app_id == provider_app_id,
        or_(d.delivery_id == delivery_id, d.body_sha256 == body_sha256),
    )
    return (await session.execute(query)).first() is not None


async def record_delivery(
    session: AsyncSession,
    *,
    provider: str,
    provider_app_id: str,
    delivery_id: str,
    body_sha256: str,
    tenant_id: str | None,
    kind: str | None,
) -> bool:
    """Remember a delivery; False when another request recorded it (or its body) first."""
    result = await session.execute(
        pg_insert(webhook_deliveries)
        .values(
            provider=provider,
            provider_app_id=provider_app_id,
            delivery_id=delivery_id,
            tenant_id=tenant_id,
            kind=kind,
        )
        .values(body_sha256=body_sha256)
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
