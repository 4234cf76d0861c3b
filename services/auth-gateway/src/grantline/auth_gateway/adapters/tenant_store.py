"""Tenants, their API keys and their own provider definitions (Postgres, schema `gateway`).

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
gateway never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only).
JSON columns take ``Jsonb`` parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from grantline.auth_gateway.adapters.rate_limit_store import (
    EXHAUSTED,
    Guard,
    guard_parameters,
    raise_if_exhausted,
)
from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    return_to_allow_list: list[str]


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    tenant_id: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None


def new_tenant_id() -> str:
    """A tenant id: a random UUID, so ids do not reveal how many tenants exist."""
    return str(uuid.uuid4())


_INSERT_TENANT = """
    INSERT INTO gateway.tenants (tenant_id, name, return_to_allow_list)
    VALUES (%(tenant_id)s, %(name)s, %(allow_list)s)
    """


async def insert_tenant(conn: DriverConnection, *, name: str, return_to_allow_list: list[str]) -> Tenant:
    """Create a tenant (the caller checks the name is free)."""
    tenant = Tenant(new_tenant_id(), name, list(return_to_allow_list))
    params = {"tenant_id": tenant.tenant_id, "name": name, "allow_list": Jsonb(tenant.return_to_allow_list)}
    await conn.execute(_INSERT_TENANT, params)
    return tenant


_TENANT_BY_NAME = "SELECT tenant_id, name, return_to_allow_list FROM gateway.tenants WHERE name = %(name)s"
_TENANT_BY_ID = (
    "SELECT tenant_id, name, return_to_allow_list FROM gateway.tenants WHERE tenant_id = %(tenant_id)s"
)


async def tenant_by_name(conn: DriverConnection, name: str) -> Tenant | None:
    """The tenant with this name, or None."""
    async with conn.cursor(row_factory=class_row(Tenant)) as cursor:
        await cursor.execute(_TENANT_BY_NAME, {"name": name})
        return await cursor.fetchone()


async def tenant_by_id(conn: DriverConnection, tenant_id: str) -> Tenant | None:
    """The tenant with this id, or None."""
    async with conn.cursor(row_factory=class_row(Tenant)) as cursor:
        await cursor.execute(_TENANT_BY_ID, {"tenant_id": tenant_id})
        return await cursor.fetchone()


_SET_ALLOW_LIST = (
    "UPDATE gateway.tenants SET return_to_allow_list = %(allow_list)s WHERE tenant_id = %(tenant_id)s"
)


async def set_allow_list(conn: DriverConnection, tenant_id: str, allow_list: list[str]) -> None:
    """Replace a tenant's `return_to` allow-list."""
    await conn.execute(_SET_ALLOW_LIST, {"tenant_id": tenant_id, "allow_list": Jsonb(allow_list)})


_INSERT_API_KEY = """
    INSERT INTO gateway.api_keys (key_id, tenant_id, key_hash, hint)
    VALUES (%(key_id)s, %(tenant_id)s, %(key_hash)s, %(hint)s)
    ON CONFLICT (key_hash) DO NOTHING
    RETURNING key_id
    """
# A statement of its own after the insert: under READ COMMITTED it sees a key that a concurrent
# transaction committed while the insert waited on it (a CTE would read the older snapshot).
_KEY_ID_BY_HASH = "SELECT key_id FROM gateway.api_keys WHERE key_hash = %(key_hash)s"


async def insert_api_key(conn: DriverConnection, *, tenant_id: str, key_hash: str, hint: str) -> str:
    """Store a key's hash; returns its id. A hash already stored (same key) is left alone."""
    key_id = f"key_{uuid.uuid4().hex[:16]}"
    params = {"key_id": key_id, "tenant_id": tenant_id, "key_hash": key_hash, "hint": hint}
    inserted = await (await conn.execute(_INSERT_API_KEY, params)).fetchone()
    if inserted is not None:
        return str(inserted[0])
    existing = await (await conn.execute(_KEY_ID_BY_HASH, {"key_hash": key_hash})).fetchone()
    if existing is None:
        raise LookupError("the conflicting API key is gone")  # deleted in between: nothing to return
    return str(existing[0])


_API_KEY_BY_HASH = """
    SELECT key_id, tenant_id, hint, created_at, revoked_at FROM gateway.api_keys WHERE key_hash = %(key_hash)s
    """
# The request's failure counters and the key, in one statement: the key is not read when a counter
# refuses the request. Always one row (the counters' columns, then the key's, NULL when absent).
_GUARDED_API_KEY = (
    EXHAUSTED  # noqa: S608 - composed of this package's constants only
    + """,
    credential AS MATERIALIZED (
        SELECT key_id, tenant_id, hint, created_at, revoked_at FROM gateway.api_keys
         WHERE key_hash = %(key_hash)s AND NOT EXISTS (SELECT FROM exhausted)
    )
    SELECT exhausted.position, exhausted.seconds_left, credential.*
      FROM (SELECT) AS request LEFT JOIN exhausted ON true LEFT JOIN credential ON true
    """
)


async def api_key_by_hash(
    conn: DriverConnection, key_hash: str, *, unless_exhausted: Sequence[Guard] = ()
) -> ApiKeyRecord | None:
    """The key stored under this hash (revoked or not), or None.

    With `unless_exhausted`, the guards' counters are read in the same statement and the key is not
    looked at when one of them is used up (`rate_limit_store.Exhausted`).
    """
    if not unless_exhausted:
        async with conn.cursor(row_factory=class_row(ApiKeyRecord)) as cursor:
            await cursor.execute(_API_KEY_BY_HASH, {"key_hash": key_hash})
            return await cursor.fetchone()
    params = {"key_hash": key_hash, **guard_parameters(unless_exhausted)}
    row = await (await conn.execute(_GUARDED_API_KEY, params)).fetchone()
    assert row is not None  # the statement always returns its one row
    position, seconds_left, *key = row
    raise_if_exhausted(position, seconds_left)
    return ApiKeyRecord(*key) if key[0] is not None else None


_REVOKE_API_KEY = """
    UPDATE gateway.api_keys SET revoked_at = now()
     WHERE key_id = %(key_id)s AND revoked_at IS NULL
    RETURNING tenant_id
    """


async def revoke_api_key(conn: DriverConnection, key_id: str) -> str | None:
    """Mark a key revoked; returns its tenant id, or None when there is no such active key."""
    row = await (await conn.execute(_REVOKE_API_KEY, {"key_id": key_id})).fetchone()
    return str(row[0]) if row is not None else None


_LIST_API_KEYS = """
    SELECT key_id, tenant_id, hint, created_at, revoked_at FROM gateway.api_keys
     WHERE tenant_id = %(tenant_id)s
     ORDER BY created_at
    """


async def list_api_keys(conn: DriverConnection, tenant_id: str) -> list[ApiKeyRecord]:
    """A tenant's keys, oldest first (hints only)."""
    async with conn.cursor(row_factory=class_row(ApiKeyRecord)) as cursor:
        await cursor.execute(_LIST_API_KEYS, {"tenant_id": tenant_id})
        return await cursor.fetchall()


_LEGACY_TENANT_PROVIDERS = """
    SELECT tenant_id, provider, definition FROM gateway.tenant_providers
     ORDER BY tenant_id, provider
     LIMIT %(limit)s
    """


async def legacy_tenant_providers(
    conn: DriverConnection, *, limit: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Definitions kept here before the vault owned them: `(tenant_id, provider, definition)`."""
    rows = await (await conn.execute(_LEGACY_TENANT_PROVIDERS, {"limit": limit})).fetchall()
    return [(tenant_id, provider, dict(definition)) for tenant_id, provider, definition in rows]


_FORGET_LEGACY_TENANT_PROVIDER = (
    "DELETE FROM gateway.tenant_providers WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s"
)


async def forget_legacy_tenant_provider(conn: DriverConnection, tenant_id: str, provider: str) -> None:
    """Drop a definition the vault now holds."""
    await conn.execute(_FORGET_LEGACY_TENANT_PROVIDER, {"tenant_id": tenant_id, "provider": provider})
