"""Connection rows: lookups and writes, on the caller's psycopg connection (the refresh's lease and
fenced writes are in refresh_rows.py).

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
vault never loads SQLAlchemy (adapters/tables.py declares the tables for the migrations only). JSON
columns take ``Jsonb`` parameters; sealed columns take and give ``bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from grantline.runtime.db.driver import DriverConnection, fetch_all, fetch_one, with_jsonb

SECRET_COLUMNS = ("access_token", "refresh_token", "id_token", "api_key")
NO_SECRETS: dict[str, Any] = dict.fromkeys(SECRET_COLUMNS)
# A value for one of these is wrapped in ``Jsonb``; None too, which stores JSON null as the vault
# always has (SQLAlchemy's JSONB type did the same), not SQL NULL.
_JSON_COLUMNS = frozenset({"settings", "provider_definition"})


@dataclass(frozen=True)
class StoredConnection:
    """A connection as the use cases read it: metadata, and the sealed tokens a revocation needs."""

    id: str
    tenant_id: str
    owner: str
    provider: str
    provider_app_id: str | None
    provider_app: str | None
    auth_kind: str
    status: str
    scopes: list[str]
    missing_scopes: list[str]
    account: str | None
    name: str | None
    is_default: bool
    settings: dict[str, Any]
    provider_definition: dict[str, Any] | None
    expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    last_refreshed_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    access_token: bytes | None = field(repr=False)
    refresh_token: bytes | None = field(repr=False)


_COLUMNS = (
    "id, tenant_id, owner, provider, provider_app_id, provider_app, auth_kind, status, scopes,"
    " missing_scopes, account, name, is_default, settings, provider_definition, expires_at,"
    " refresh_token_expires_at, last_refreshed_at, last_used_at, created_at, access_token, refresh_token"
)

_GET = f"SELECT {_COLUMNS} FROM vault.connections WHERE tenant_id = %(tenant_id)s AND id = %(id)s"  # noqa: S608
_GET_FOR_UPDATE = _GET + " FOR UPDATE"


async def get(
    conn: DriverConnection, tenant_id: str, connection_id: str, *, for_update: bool = False
) -> StoredConnection | None:
    """One connection of a tenant (optionally locked for the rest of the transaction)."""
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await fetch_one(conn, StoredConnection, statement, {"tenant_id": tenant_id, "id": connection_id})


_FIND_BY_ACCOUNT = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE tenant_id = %(tenant_id)s AND owner = %(owner)s AND provider = %(provider)s
       AND account = %(account)s AND settings = %(settings)s
       AND provider_app IS NOT DISTINCT FROM CAST(%(provider_app)s AS text)
     ORDER BY created_at
     LIMIT 1
       FOR UPDATE
    """  # noqa: S608 - composed of this module's constants only


async def find_by_account(
    conn: DriverConnection,
    tenant_id: str,
    owner: str,
    provider: str,
    account: str,
    settings: dict[str, str] | None = None,
    provider_app: str | None = None,
) -> StoredConnection | None:
    """The owner's connection to this provider's account with these settings, made with this named
    app (re-authorization keeps its id; the same account on another shop or site, or through
    another OAuth client, is another connection)."""
    params = {
        "tenant_id": tenant_id,
        "owner": owner,
        "provider": provider,
        "account": account,
        "settings": Jsonb(settings or {}),
        "provider_app": provider_app,
    }
    return await fetch_one(conn, StoredConnection, _FIND_BY_ACCOUNT, params)


_CURRENT_DEFAULT = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE tenant_id = %(tenant_id)s AND owner = %(owner)s AND provider = %(provider)s AND is_default
       FOR UPDATE
    """  # noqa: S608 - composed of this module's constants only


async def current_default(
    conn: DriverConnection, tenant_id: str, owner: str, provider: str
) -> StoredConnection | None:
    """The owner's default connection to the provider, if any (locked)."""
    params = {"tenant_id": tenant_id, "owner": owner, "provider": provider}
    return await fetch_one(conn, StoredConnection, _CURRENT_DEFAULT, params)


async def insert(conn: DriverConnection, values: Mapping[str, Any]) -> None:
    """Insert a connection row (``values`` by column; the names come from the vault's code)."""
    statement = sql.SQL("INSERT INTO vault.connections ({columns}) VALUES ({values})").format(
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in values),
        values=sql.SQL(", ").join(sql.Placeholder(column) for column in values),
    )
    await conn.execute(statement, with_jsonb(values, _JSON_COLUMNS))


async def update_row(conn: DriverConnection, connection_id: str, values: Mapping[str, Any]) -> None:
    """Update a connection, bumping its version (fencing token) and updated_at."""
    statement = sql.SQL(
        "UPDATE vault.connections SET {assignments}, version = version + 1, updated_at = now()"
        " WHERE id = {connection_id}"
    ).format(
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in values
        ),
        connection_id=sql.Placeholder("where_connection_id"),
    )
    params = with_jsonb(values, _JSON_COLUMNS)
    await conn.execute(statement, {**params, "where_connection_id": connection_id})


# RETURNING rather than the cursor's rowcount: in pipeline mode (runtime.driver_transaction) a
# result is only there once read, and reading the returned row is what waits for it.
_DELETE_REVOKED = """
    DELETE FROM vault.connections
     WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND status = 'revoked'
    RETURNING id
    """


async def delete_revoked(conn: DriverConnection, tenant_id: str, connection_id: str) -> bool:
    """Delete a revoked connection (its secrets are already gone); False when there is none."""
    cursor = await conn.execute(_DELETE_REVOKED, {"tenant_id": tenant_id, "id": connection_id})
    return await cursor.fetchone() is not None


_CLEAR_OTHER_DEFAULTS = """
    UPDATE vault.connections SET is_default = false, updated_at = now()
     WHERE tenant_id = %(tenant_id)s AND owner = %(owner)s AND provider = %(provider)s AND is_default
       AND id != %(id)s
    """
_MAKE_DEFAULT = "UPDATE vault.connections SET is_default = true, updated_at = now() WHERE id = %(id)s"


async def set_default(conn: DriverConnection, row: StoredConnection) -> None:
    """Make `row` its owner's default for the provider (clearing the previous default first)."""
    params = {"tenant_id": row.tenant_id, "owner": row.owner, "provider": row.provider, "id": row.id}
    await conn.execute(_CLEAR_OTHER_DEFAULTS, params)
    await conn.execute(_MAKE_DEFAULT, {"id": row.id})


_NEXT_DEFAULT = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE tenant_id = %(tenant_id)s AND owner = %(owner)s AND provider = %(provider)s
       AND status = 'active' AND id != %(id)s
     ORDER BY created_at DESC
     LIMIT 1
    """  # noqa: S608 - composed of this module's constants only


async def promote_next_default(conn: DriverConnection, row: StoredConnection) -> None:
    """After `row` stops being usable, hand the default to the owner's newest active connection."""
    params = {"tenant_id": row.tenant_id, "owner": row.owner, "provider": row.provider, "id": row.id}
    successor = await fetch_one(conn, StoredConnection, _NEXT_DEFAULT, params)
    if successor is not None:
        await set_default(conn, successor)


# The optional filters are spliced in from these constants only (never from input), so each
# combination gets a plan of its own rather than one generic plan for "maybe filtered".
_LIST_PAGE = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE tenant_id = %(tenant_id)s{{filters}}
     ORDER BY id
     LIMIT %(limit)s
    """  # noqa: S608 - composed of this module's constants only
_BY_OWNER = " AND owner = %(owner)s"
_BY_PROVIDER = " AND provider = %(provider)s"
_BY_STATUS = " AND status = %(status)s"
_AFTER_ID = " AND id > %(after_id)s"


async def list_page(
    conn: DriverConnection,
    tenant_id: str,
    *,
    owner: str | None,
    provider: str | None,
    status: str | None,
    after_id: str | None,
    limit: int,
) -> list[StoredConnection]:
    """A page of a tenant's connections ordered by id."""
    filters = "".join(
        clause
        for clause, value in (
            (_BY_OWNER, owner),
            (_BY_PROVIDER, provider),
            (_BY_STATUS, status),
            (_AFTER_ID, after_id),
        )
        if value is not None
    )
    params = {
        "tenant_id": tenant_id,
        "owner": owner,
        "provider": provider,
        "status": status,
        "after_id": after_id,
        "limit": limit,
    }
    return await fetch_all(conn, StoredConnection, _LIST_PAGE.format(filters=filters), params)


_ACTIVE_FOR_APP = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE provider_app_id = %(provider_app_id)s AND status != 'revoked'
     ORDER BY id
       FOR UPDATE
    """  # noqa: S608 - composed of this module's constants only


async def active_for_app(conn: DriverConnection, provider_app_id: str) -> list[StoredConnection]:
    """Every not-yet-revoked connection made with a provider app, locked."""
    return await fetch_all(conn, StoredConnection, _ACTIVE_FOR_APP, {"provider_app_id": provider_app_id})


_WORKSPACE_FOR_APP = f"""
    SELECT {_COLUMNS} FROM vault.connections
     WHERE provider_app_id = %(provider_app_id)s AND owner = 'workspace'
     ORDER BY id
       FOR UPDATE
    """  # noqa: S608 - composed of this module's constants only


async def workspace_for_app(conn: DriverConnection, provider_app_id: str) -> list[StoredConnection]:
    """Every workspace connection made with a provider app, revoked ones included, locked."""
    return await fetch_all(conn, StoredConnection, _WORKSPACE_FOR_APP, {"provider_app_id": provider_app_id})


_TENANTS_USING_APP = """
    SELECT DISTINCT tenant_id FROM vault.connections
     WHERE provider_app_id = %(provider_app_id)s AND status != 'revoked'
     ORDER BY tenant_id
    """


async def tenants_using_app(conn: DriverConnection, provider_app_id: str) -> list[str]:
    """The tenants with a live connection made with this app (a platform app serves many)."""
    cursor = await conn.execute(_TENANTS_USING_APP, {"provider_app_id": provider_app_id})
    return [tenant_id for (tenant_id,) in await cursor.fetchall()]


_BY_ACCOUNTS = """
    SELECT id FROM vault.connections
     WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s AND provider_app_id = %(provider_app_id)s
       AND (account_digest = ANY(CAST(%(digests)s AS bytea[]))
            OR (account_digest IS NULL AND account = ANY(CAST(%(accounts)s AS text[]))))
       AND status != 'revoked'
    """


async def by_accounts(
    conn: DriverConnection,
    tenant_id: str,
    provider: str,
    accounts: Sequence[str],
    digests: Sequence[bytes],
    *,
    provider_app_id: str,
) -> list[str]:
    """Ids of the connections of these provider accounts made with one app (webhooks name accounts,
    not connections), found by their account digests (an index); rows from before digests, by their
    account (a partial index)."""
    params = {
        "tenant_id": tenant_id,
        "provider": provider,
        "provider_app_id": provider_app_id,
        "digests": list(digests),
        "accounts": list(accounts),
    }
    cursor = await conn.execute(_BY_ACCOUNTS, params)
    return [connection_id for (connection_id,) in await cursor.fetchall()]
