"""Provider app rows, on the caller's psycopg connection (JSON columns take ``Jsonb`` parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

from grantline.runtime.db.driver import DriverConnection, fetch_all, fetch_one, with_jsonb

# The owner of operators' platform apps (no tenant id can start with an underscore, see the contract).
PLATFORM = "_platform"
# As for connections: None stores JSON null, as SQLAlchemy's JSONB type did.
_JSON_COLUMNS = frozenset({"settings", "provider_definition"})


@dataclass(frozen=True)
class StoredProviderApp:
    """A provider app row; its secrets stay sealed here and are opened only for a provider call."""

    id: str
    tenant_id: str
    provider: str
    name: str | None
    client_id: str
    client_secret: bytes | None = field(repr=False)
    webhook_secret: bytes | None = field(repr=False)
    scopes: list[str]
    settings: dict[str, Any]
    allow_workspace_fallback: bool
    force_workspace_connection: bool
    enabled: bool
    provider_definition: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, tenant_id, provider, name, client_id, client_secret, webhook_secret, scopes, settings,"
    " allow_workspace_fallback, force_workspace_connection, enabled, provider_definition, created_at,"
    " updated_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM vault.provider_apps"  # noqa: S608 - this module's constants only
_OF_TENANT = " WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s"
_DEFAULT_APP = " AND name IS NULL"
_NAMED_APP = " AND name = %(name)s"
_FOR_UPDATE = " FOR UPDATE"


async def get(
    conn: DriverConnection,
    tenant_id: str,
    provider: str,
    *,
    name: str | None = None,
    for_update: bool = False,
) -> StoredProviderApp | None:
    """A tenant's app for a provider: its default one, or the one named ``name``."""
    statement = (
        _SELECT
        + _OF_TENANT
        + (_DEFAULT_APP if name is None else _NAMED_APP)
        + (_FOR_UPDATE if for_update else "")
    )
    return await fetch_one(
        conn, StoredProviderApp, statement, {"tenant_id": tenant_id, "provider": provider, "name": name}
    )


# The tenant's own first: "_platform" sorts after no tenant id, so order on the match instead.
_FOR_FLOW = (
    _SELECT + " WHERE tenant_id IN (%(tenant_id)s, %(platform)s) AND provider = %(provider)s"
    " AND name IS NULL ORDER BY tenant_id = %(platform)s LIMIT 1"
)


async def get_for_flow(conn: DriverConnection, tenant_id: str, provider: str) -> StoredProviderApp | None:
    """The app a flow of the tenant uses without naming one: its own default app (enabled or not) when
    it has one, else the platform's."""
    return await fetch_one(
        conn,
        StoredProviderApp,
        _FOR_FLOW,
        {"tenant_id": tenant_id, "provider": provider, "platform": PLATFORM},
    )


_BY_ID = _SELECT + " WHERE id = %(id)s"


async def get_by_id(conn: DriverConnection, app_id: str) -> StoredProviderApp | None:
    """An app by its id."""
    return await fetch_one(conn, StoredProviderApp, _BY_ID, {"id": app_id})


_OF_TENANT_ALL = _SELECT + " WHERE tenant_id = %(tenant_id)s ORDER BY provider, name IS NOT NULL, name"


async def list_for_tenant(conn: DriverConnection, tenant_id: str) -> list[StoredProviderApp]:
    """A tenant's apps, by provider, the default one first, then by name."""
    return await fetch_all(conn, StoredProviderApp, _OF_TENANT_ALL, {"tenant_id": tenant_id})


_ENABLED_FOR_PROVIDER = _SELECT + " WHERE provider = %(provider)s AND enabled ORDER BY tenant_id"


async def enabled_for_provider(conn: DriverConnection, provider: str) -> list[StoredProviderApp]:
    """Every enabled app for a provider, the platform's too (webhook verification tries each secret)."""
    return await fetch_all(conn, StoredProviderApp, _ENABLED_FOR_PROVIDER, {"provider": provider})


async def insert(conn: DriverConnection, values: Mapping[str, Any]) -> None:
    """Insert an app row (``values`` by column; the names come from the vault's code)."""
    statement = sql.SQL("INSERT INTO vault.provider_apps ({columns}) VALUES ({values})").format(
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in values),
        values=sql.SQL(", ").join(sql.Placeholder(column) for column in values),
    )
    await conn.execute(statement, with_jsonb(values, _JSON_COLUMNS))


async def update_row(conn: DriverConnection, app_id: str, values: Mapping[str, Any]) -> None:
    """Update an app row."""
    statement = sql.SQL(
        "UPDATE vault.provider_apps SET {assignments}, updated_at = now() WHERE id = {app_id}"
    ).format(
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in values
        ),
        app_id=sql.Placeholder("where_app_id"),
    )
    await conn.execute(statement, {**with_jsonb(values, _JSON_COLUMNS), "where_app_id": app_id})
