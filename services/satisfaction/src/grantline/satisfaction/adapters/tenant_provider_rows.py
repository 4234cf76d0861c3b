"""The ``tenant_provider`` and ``tenant_provider_switch`` rows: each tenant's own providers and the
providers it switched off, as the vault announced them.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
service never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.domain.catalogue import TenantCatalogueState, TenantProvider

# Events of one tenant may be applied out of order by concurrent batches: the newest stands.
_SAVE_PROVIDER = (
    "INSERT INTO satisfaction.tenant_provider"
    " (tenant_id, provider_id, name, category_id, apps, removed, event_at)"
    " VALUES (%(tenant_id)s, %(provider_id)s, %(name)s, %(category_id)s, %(apps)s, %(removed)s,"
    " %(event_at)s)"
    " ON CONFLICT (tenant_id, provider_id) DO UPDATE SET provider_id = EXCLUDED.provider_id,"
    " name = EXCLUDED.name, category_id = EXCLUDED.category_id, apps = EXCLUDED.apps,"
    " removed = EXCLUDED.removed, event_at = EXCLUDED.event_at"
    " WHERE tenant_provider.event_at < EXCLUDED.event_at"
    " RETURNING provider_id"
)
_SAVE_SWITCH = (
    "INSERT INTO satisfaction.tenant_provider_switch (tenant_id, provider_id, enabled, event_at)"
    " VALUES (%(tenant_id)s, %(provider_id)s, %(enabled)s, %(event_at)s)"
    " ON CONFLICT (tenant_id, provider_id) DO UPDATE SET provider_id = EXCLUDED.provider_id,"
    " enabled = EXCLUDED.enabled, event_at = EXCLUDED.event_at"
    " WHERE tenant_provider_switch.event_at < EXCLUDED.event_at"
    " RETURNING provider_id"
)


async def _upsert(conn: DriverConnection, statement: str, values: dict[str, Any], event_at: datetime) -> bool:
    cursor = await conn.execute(statement, {**values, "event_at": event_at})
    return await cursor.fetchone() is not None


async def save_defined(conn: DriverConnection, event: TenantProviderDefined) -> bool:
    """Store (or replace) a tenant's provider unless a newer event already did; True when stored."""
    values = {
        "tenant_id": event.tenant_id,
        "provider_id": event.provider,
        "name": event.name,
        "category_id": event.category,
        "apps": Jsonb([[app.id, app.category] for app in event.apps]),
        "removed": False,
    }
    return await _upsert(conn, _SAVE_PROVIDER, values, event.occurred_at)


async def save_switch(conn: DriverConnection, event: ProviderEnablementChanged) -> bool:
    """Store a provider switched on or off unless a newer switch is stored; True when stored."""
    values = {"tenant_id": event.tenant_id, "provider_id": event.provider, "enabled": event.enabled}
    return await _upsert(conn, _SAVE_SWITCH, values, event.occurred_at)


async def save_removed(conn: DriverConnection, event: TenantProviderRemoved) -> bool:
    """Mark a tenant's provider removed unless a newer event already changed it; True when marked."""
    values = {
        "tenant_id": event.tenant_id,
        "provider_id": event.provider,
        "name": event.provider,
        "category_id": "",
        "apps": Jsonb([]),
        "removed": True,
    }
    return await _upsert(conn, _SAVE_PROVIDER, values, event.occurred_at)


def _provider(provider_id: str, category_id: str, apps: list[list[str]]) -> TenantProvider:
    return TenantProvider(
        id=provider_id, category_id=category_id, apps=tuple((app, cat) for app, cat in apps)
    )


_OWN_OF_TENANT = (
    "SELECT provider_id, category_id, apps FROM satisfaction.tenant_provider"
    " WHERE tenant_id = %(tenant_id)s AND removed IS false ORDER BY provider_id"
)
_OFF_OF_TENANT = (
    "SELECT provider_id FROM satisfaction.tenant_provider_switch"
    " WHERE tenant_id = %(tenant_id)s AND enabled IS false"
)


async def state_of(conn: DriverConnection, tenant_id: str) -> TenantCatalogueState:
    """One tenant's current own providers and switched-off providers."""
    key = {"tenant_id": tenant_id}
    own = tuple(_provider(*row) for row in await (await conn.execute(_OWN_OF_TENANT, key)).fetchall())
    off = frozenset(
        provider_id for (provider_id,) in await (await conn.execute(_OFF_OF_TENANT, key)).fetchall()
    )
    return TenantCatalogueState(own=own, disabled=off)


_OWN = (
    "SELECT tenant_id, provider_id, category_id, apps FROM satisfaction.tenant_provider"
    " WHERE removed IS false ORDER BY tenant_id, provider_id"
)
_OFF = "SELECT tenant_id, provider_id FROM satisfaction.tenant_provider_switch WHERE enabled IS false"


async def every_tenants_state(conn: DriverConnection) -> dict[str, TenantCatalogueState]:
    """Every tenant's state that differs from the shared catalogue (the in-memory copy is built from it)."""
    own: dict[str, list[TenantProvider]] = {}
    disabled: dict[str, set[str]] = {}
    for tenant_id, *provider in await (await conn.execute(_OWN)).fetchall():
        own.setdefault(tenant_id, []).append(_provider(*provider))
    for tenant_id, provider_id in await (await conn.execute(_OFF)).fetchall():
        disabled.setdefault(tenant_id, set()).add(provider_id)
    return {
        tenant: TenantCatalogueState(
            own=tuple(own.get(tenant, ())), disabled=frozenset(disabled.get(tenant, ()))
        )
        for tenant in own.keys() | disabled.keys()
    }
