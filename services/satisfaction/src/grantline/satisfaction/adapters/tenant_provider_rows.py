"""The ``tenant_provider`` and ``tenant_provider_switch`` rows: each tenant's own providers and the
providers it switched off, as the vault announced them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.satisfaction.adapters.tables import tenant_provider, tenant_provider_switch
from grantline.satisfaction.domain.catalogue import TenantCatalogueState, TenantProvider

t = tenant_provider.c
w = tenant_provider_switch.c


async def _upsert(session: AsyncSession, table: Table, values: dict[str, Any], event_at: datetime) -> bool:
    statement = insert(table).values(**values, event_at=event_at)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.tenant_id, table.c.provider_id],
        set_={name: statement.excluded[name] for name in (*values, "event_at") if name != "tenant_id"},
        # Events of one tenant may be applied out of order by concurrent batches: the newest stands.
        where=table.c.event_at < statement.excluded.event_at,
    )
    return (await session.execute(statement.returning(table.c.provider_id))).first() is not None


async def save_defined(session: AsyncSession, event: TenantProviderDefined) -> bool:
    """Store (or replace) a tenant's provider unless a newer event already did; True when stored."""
    values = {
        "tenant_id": event.tenant_id,
        "provider_id": event.provider,
        "name": event.name,
        "category_id": event.category,
        "apps": [[app.id, app.category] for app in event.apps],
        "removed": False,
    }
    return await _upsert(session, tenant_provider, values, event.occurred_at)


async def save_switch(session: AsyncSession, event: ProviderEnablementChanged) -> bool:
    """Store a provider switched on or off unless a newer switch is stored; True when stored."""
    values = {"tenant_id": event.tenant_id, "provider_id": event.provider, "enabled": event.enabled}
    return await _upsert(session, tenant_provider_switch, values, event.occurred_at)


async def save_removed(session: AsyncSession, event: TenantProviderRemoved) -> bool:
    """Mark a tenant's provider removed unless a newer event already changed it; True when marked."""
    values = {
        "tenant_id": event.tenant_id,
        "provider_id": event.provider,
        "name": event.provider,
        "category_id": "",
        "apps": [],
        "removed": True,
    }
    return await _upsert(session, tenant_provider, values, event.occurred_at)


def _provider(row: Any) -> TenantProvider:
    return TenantProvider(
        id=row.provider_id, category_id=row.category_id, apps=tuple((app, cat) for app, cat in row.apps)
    )


async def state_of(session: AsyncSession, tenant_id: str) -> TenantCatalogueState:
    """One tenant's current own providers and switched-off providers."""
    own = (
        select(t.provider_id, t.category_id, t.apps)
        .where(t.tenant_id == tenant_id, t.removed.is_(False))
        .order_by(t.provider_id)
    )
    off = select(w.provider_id).where(w.tenant_id == tenant_id, w.enabled.is_(False))
    return TenantCatalogueState(
        own=tuple(_provider(row) for row in (await session.execute(own)).all()),
        disabled=frozenset((await session.execute(off)).scalars()),
    )


async def every_tenants_state(session: AsyncSession) -> dict[str, TenantCatalogueState]:
    """Every tenant's state that differs from the shared catalogue (the in-memory copy is built from it)."""
    own_rows = (
        select(t.tenant_id, t.provider_id, t.category_id, t.apps)
        .where(t.removed.is_(False))
        .order_by(t.tenant_id, t.provider_id)
    )
    own: dict[str, list[TenantProvider]] = {}
    for row in (await session.execute(own_rows)).all():
        own.setdefault(row.tenant_id, []).append(_provider(row))
    disabled: dict[str, set[str]] = {}
    switched_off = select(w.tenant_id, w.provider_id).where(w.enabled.is_(False))
    for tenant_id, provider_id in (await session.execute(switched_off)).all():
        disabled.setdefault(tenant_id, set()).add(provider_id)
    return {
        tenant: TenantCatalogueState(
            own=tuple(own.get(tenant, ())), disabled=frozenset(disabled.get(tenant, ()))
        )
        for tenant in own.keys() | disabled.keys()
    }
