"""Tenant-defined provider rows (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import tenant_provider_switches, tenant_providers

t = tenant_providers.c
s = tenant_provider_switches.c


async def definition(session: AsyncSession, tenant_id: str, provider: str) -> dict[str, Any] | None:
    """The tenant's stored definition of `provider`, as JSON."""
    query = select(t.definition).where(t.tenant_id == tenant_id, t.provider == provider)
    return (await session.execute(query)).scalar_one_or_none()


async def definitions(session: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    """Every definition of a tenant, by provider id."""
    query = select(t.definition).where(t.tenant_id == tenant_id).order_by(t.provider)
    return list((await session.execute(query)).scalars())


async def count(session: AsyncSession, tenant_id: str) -> int:
    """How many providers a tenant has defined."""
    query = select(func.count()).select_from(tenant_providers).where(t.tenant_id == tenant_id)
    return int((await session.execute(query)).scalar_one())


async def put(
    session: AsyncSession, tenant_id: str, provider: str, definition: dict[str, Any], *, only_if_absent: bool
) -> bool:
    """Insert or replace (or with `only_if_absent`, keep a stored one); True when the row is new."""
    statement = pg_insert(tenant_providers).values(
        tenant_id=tenant_id, provider=provider, definition=definition
    )
    if only_if_absent:
        statement = statement.on_conflict_do_nothing(index_elements=[t.tenant_id, t.provider])
    else:
        statement = statement.on_conflict_do_update(
            index_elements=[t.tenant_id, t.provider],
            set_={"definition": statement.excluded.definition, "updated_at": func.now()},
        )
    returned = (await session.execute(statement.returning(t.created_at == t.updated_at))).first()
    return bool(returned and returned[0])


async def remove(session: AsyncSession, tenant_id: str, provider: str) -> bool:
    """Delete a definition; True when there was one."""
    statement = delete(tenant_providers).where(t.tenant_id == tenant_id, t.provider == provider)
    return bool((await session.execute(statement.returning(t.provider))).first())


async def disabled(session: AsyncSession, tenant_id: str) -> list[str]:
    """The providers a tenant switched off, by id."""
    query = select(s.provider).where(s.tenant_id == tenant_id, s.enabled.is_(False)).order_by(s.provider)
    return list((await session.execute(query)).scalars())


async def switch(session: AsyncSession, tenant_id: str, provider: str, enabled: bool) -> None:
    """Switch a provider on or off for a tenant."""
    statement = pg_insert(tenant_provider_switches).values(
        tenant_id=tenant_id, provider=provider, enabled=enabled
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[s.tenant_id, s.provider], set_={"enabled": enabled, "updated_at": func.now()}
        )
    )
