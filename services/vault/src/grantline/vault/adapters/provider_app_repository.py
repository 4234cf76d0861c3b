"""Provider app rows (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import provider_apps

a = provider_apps.c


async def get(
    session: AsyncSession, tenant_id: str, provider: str, *, for_update: bool = False
) -> Row[Any] | None:
    """A tenant's app for a provider."""
    query = select(provider_apps).where(a.tenant_id == tenant_id, a.provider == provider)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def get_by_id(session: AsyncSession, app_id: str) -> Row[Any] | None:
    """An app by its id."""
    return (await session.execute(select(provider_apps).where(a.id == app_id))).first()


async def list_for_tenant(session: AsyncSession, tenant_id: str) -> Sequence[Row[Any]]:
    """A tenant's apps, by provider."""
    return (
        await session.execute(select(provider_apps).where(a.tenant_id == tenant_id).order_by(a.provider))
    ).all()


async def enabled_for_provider(session: AsyncSession, provider: str) -> Sequence[Row[Any]]:
    """Every tenant's enabled app for a provider (webhook verification tries each tenant's secret)."""
    query = select(provider_apps).where(a.provider == provider, a.enabled).order_by(a.tenant_id)
    return (await session.execute(query)).all()


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert an app row."""
    await session.execute(provider_apps.insert().values(**values))


async def update_row(session: AsyncSession, app_id: str, values: dict[str, Any]) -> None:
    """Update an app row."""
    await session.execute(update(provider_apps).where(a.id == app_id).values(**values, updated_at=func.now()))
