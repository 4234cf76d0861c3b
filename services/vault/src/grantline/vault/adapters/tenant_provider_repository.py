"""Tenant-defined provider rows and tenants' provider switches, on the caller's psycopg connection."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from grantline.runtime.db.driver import DriverConnection

_DEFINITION = (
    "SELECT definition FROM vault.tenant_providers"
    " WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s"
)


async def definition(conn: DriverConnection, tenant_id: str, provider: str) -> dict[str, Any] | None:
    """The tenant's stored definition of `provider`, as JSON."""
    cursor = await conn.execute(_DEFINITION, {"tenant_id": tenant_id, "provider": provider})
    row = await cursor.fetchone()
    return None if row is None else row[0]


_DEFINITIONS = (
    "SELECT definition FROM vault.tenant_providers WHERE tenant_id = %(tenant_id)s ORDER BY provider"
)


async def definitions(conn: DriverConnection, tenant_id: str) -> list[dict[str, Any]]:
    """Every definition of a tenant, by provider id."""
    cursor = await conn.execute(_DEFINITIONS, {"tenant_id": tenant_id})
    return [stored for (stored,) in await cursor.fetchall()]


# A new row has both timestamps from the same now(); a replaced one gets a later updated_at.
_PUT_NEW = """
    INSERT INTO vault.tenant_providers (tenant_id, provider, definition)
    VALUES (%(tenant_id)s, %(provider)s, %(definition)s)
    ON CONFLICT (tenant_id, provider) DO NOTHING
    RETURNING created_at = updated_at
    """
_PUT_REPLACING = """
    INSERT INTO vault.tenant_providers (tenant_id, provider, definition)
    VALUES (%(tenant_id)s, %(provider)s, %(definition)s)
    ON CONFLICT (tenant_id, provider) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()
    RETURNING created_at = updated_at
    """


async def put(
    conn: DriverConnection, tenant_id: str, provider: str, definition: dict[str, Any], *, only_if_absent: bool
) -> bool:
    """Insert or replace (or with `only_if_absent`, keep a stored one); True when the row is new."""
    params = {"tenant_id": tenant_id, "provider": provider, "definition": Jsonb(definition)}
    cursor = await conn.execute(_PUT_NEW if only_if_absent else _PUT_REPLACING, params)
    returned = await cursor.fetchone()
    return bool(returned and returned[0])


_REMOVE = (
    "DELETE FROM vault.tenant_providers WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s"
    " RETURNING provider"
)


async def remove(conn: DriverConnection, tenant_id: str, provider: str) -> bool:
    """Delete a definition; True when there was one."""
    cursor = await conn.execute(_REMOVE, {"tenant_id": tenant_id, "provider": provider})
    return await cursor.fetchone() is not None


_DISABLED = (
    "SELECT provider FROM vault.tenant_provider_switches"
    " WHERE tenant_id = %(tenant_id)s AND enabled IS false ORDER BY provider"
)


async def disabled(conn: DriverConnection, tenant_id: str) -> list[str]:
    """The providers a tenant switched off, by id."""
    cursor = await conn.execute(_DISABLED, {"tenant_id": tenant_id})
    return [provider for (provider,) in await cursor.fetchall()]


_SWITCH = """
    INSERT INTO vault.tenant_provider_switches (tenant_id, provider, enabled)
    VALUES (%(tenant_id)s, %(provider)s, %(enabled)s)
    ON CONFLICT (tenant_id, provider) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()
    """


async def switch(conn: DriverConnection, tenant_id: str, provider: str, enabled: bool) -> None:
    """Switch a provider on or off for a tenant."""
    await conn.execute(_SWITCH, {"tenant_id": tenant_id, "provider": provider, "enabled": enabled})
