"""Provider app rows (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import provider_apps

a = provider_apps.c

# The owner of operators' platform apps (no tenant id can start with an underscore, see the contract).
PLATFORM = "_platform"


async def get(
    session: AsyncSession, tenant_id: str, provider: str, *, name: str | None = None, for_update: bool = False
) -> Row[Any] | None:
    """A tenant's app for a provider: its default one, or the one named ``name``."""
    named = a.name.is_(None) if name is None else a.name == name
    query = select(provider_apps).where(a.tenant_id == tenant_id, a.provider == provider, named)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def get_for_flow(session: AsyncSession, tenant_id: str, provider: str) -> Row[Any] | None:
    """The app a flow of the tenant uses without naming one: its own default app (enabled or not) when
    it has one, else the platform's."""
    query = (
        select(provider_apps)
        .where(a.tenant_id.in_([tenant_id, PLATFORM]), a.provider == provider, a.name.is_(None))
        # The tenant's own first: "_platform" sorts after no tenant id, so order on the match instead.
        .order_by((a.tenant_id == PLATFORM).asc())
        .limit(1)
    )
    return (await session.execute(query)).first()


async def get_by_id(session: AsyncSession, app_id: str) -> Row[Any] | None:
    """An app by its id."""
    return (await session.execute(select(provider_apps).where(a.id == app_id))).first()


async def list_for_tenant(session: AsyncSession, tenant_id: str) -> Sequence[Row[Any]]:
    """A tenant's apps, by provider, the default one first, then by name."""
    query = (
        select(provider_apps)
        .where(a.tenant_id == tenant_id)
        .order_by(a.provider, a.name.is_not(None), a.name)
    )
    return (await session.execute(query)).all()


async def enabled_for_provider(session: AsyncSession, provider: str) -> Sequence[Row[Any]]:
    """Every enabled app for a provider, the platform's too (webhook verification tries each secret)."""
    query = select(provider_apps).where(a.provider == provider, a.enabled).order_by(a.tenant_id)
    return (await session.execute(query)).all()


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert an app row."""
    await session.execute(provider_apps.insert().values(**values))


async def update_row(session: AsyncSession, app_id: str, values: dict[str, Any]) -> None:
    """Update an app row."""
    await session.execute(update(provider_apps).where(a.id == app_id).values(**values, updated_at=func.now()))
