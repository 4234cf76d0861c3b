"""Connection rows (SQLAlchemy Core): lookups and writes (the refresh's lease and fenced writes are in
refresh_rows.py, on psycopg)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import connections

c = connections.c
SECRET_COLUMNS = ("access_token", "refresh_token", "id_token", "api_key")
NO_SECRETS: dict[str, Any] = dict.fromkeys(SECRET_COLUMNS)


async def get(
    session: AsyncSession, tenant_id: str, connection_id: str, *, for_update: bool = False
) -> Row[Any] | None:
    """One connection of a tenant (optionally locked for the rest of the transaction)."""
    query = select(connections).where(c.tenant_id == tenant_id, c.id == connection_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def find_by_account(
    session: AsyncSession,
    tenant_id: str,
    owner: str,
    provider: str,
    account: str,
    settings: dict[str, str] | None = None,
    provider_app: str | None = None,
) -> Row[Any] | None:
    """The owner's connection to this provider's account with these settings, made with this named
    app (re-authorization keeps its id; the same account on another shop or site, or through
    another OAuth client, is another connection)."""
    query = (
        select(connections)
        .where(
            c.tenant_id == tenant_id,
            c.owner == owner,
            c.provider == provider,
            c.account == account,
            c.settings == (settings or {}),
            c.provider_app.is_not_distinct_from(provider_app),
        )
        .order_by(c.created_at)
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(query)).first()


async def current_default(
    session: AsyncSession, tenant_id: str, owner: str, provider: str
) -> Row[Any] | None:
    """The owner's default connection to the provider, if any."""
    query = select(connections).where(
        c.tenant_id == tenant_id, c.owner == owner, c.provider == provider, c.is_default
    )
    return (await session.execute(query.with_for_update())).first()


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a connection row."""
    await session.execute(connections.insert().values(**values))


async def update_row(session: AsyncSession, connection_id: str, values: dict[str, Any]) -> None:
    """Update a connection, bumping its version (fencing token) and updated_at."""
    await session.execute(
        update(connections)
        .where(c.id == connection_id)
        .values(**values, version=c.version + 1, updated_at=func.now())
    )


async def delete_revoked(session: AsyncSession, tenant_id: str, connection_id: str) -> bool:
    """Delete a revoked connection (its secrets are already gone); False when there is none."""
    result = await session.execute(
        connections.delete().where(c.tenant_id == tenant_id, c.id == connection_id, c.status == "revoked")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_default(session: AsyncSession, row: Row[Any]) -> None:
    """Make `row` its owner's default for the provider (clearing the previous default first)."""
    await session.execute(
        update(connections)
        .where(
            c.tenant_id == row.tenant_id,
            c.owner == row.owner,
            c.provider == row.provider,
            c.is_default,
            c.id != row.id,
        )
        .values(is_default=False, updated_at=func.now())
    )
    await session.execute(
        update(connections).where(c.id == row.id).values(is_default=True, updated_at=func.now())
    )


async def promote_next_default(session: AsyncSession, row: Row[Any]) -> None:
    """After `row` stops being usable, hand the default to the owner's newest active connection."""
    successor = (
        await session.execute(
            select(connections)
            .where(
                c.tenant_id == row.tenant_id,
                c.owner == row.owner,
                c.provider == row.provider,
                c.status == "active",
                c.id != row.id,
            )
            .order_by(c.created_at.desc())
            .limit(1)
        )
    ).first()
    if successor is not None:
        await set_default(session, successor)


async def list_page(
    session: AsyncSession,
    tenant_id: str,
    *,
    owner: str | None,
    provider: str | None,
    status: str | None,
    after_id: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """A page of a tenant's connections ordered by id."""
    conditions = [c.tenant_id == tenant_id]
    if owner is not None:
        conditions.append(c.owner == owner)
    if provider is not None:
        conditions.append(c.provider == provider)
    if status is not None:
        conditions.append(c.status == status)
    if after_id is not None:
        conditions.append(c.id > after_id)
    query = select(connections).where(and_(*conditions)).order_by(c.id).limit(limit)
    return (await session.execute(query)).all()


async def active_for_app(session: AsyncSession, provider_app_id: str) -> Sequence[Row[Any]]:
    """Every not-yet-revoked connection made with a provider app, locked."""
    query = (
        select(connections)
        .where(c.provider_app_id == provider_app_id, c.status != "revoked")
        .order_by(c.id)
        .with_for_update()
    )
    return (await session.execute(query)).all()


async def workspace_for_app(session: AsyncSession, provider_app_id: str) -> Sequence[Row[Any]]:
    """Every workspace connection made with a provider app, revoked ones included, locked."""
    query = (
        select(connections)
        .where(c.provider_app_id == provider_app_id, c.owner == "workspace")
        .order_by(c.id)
        .with_for_update()
    )
    return (await session.execute(query)).all()


async def tenants_using_app(session: AsyncSession, provider_app_id: str) -> list[str]:
    """The tenants with a live connection made with this app (a platform app serves many)."""
    query = (
        select(c.tenant_id)
        .where(c.provider_app_id == provider_app_id, c.status != "revoked")
        .distinct()
        .order_by(c.tenant_id)
    )
    return list((await session.execute(query)).scalars())


async def by_accounts(
    session: AsyncSession,
    tenant_id: str,
    provider: str,
    accounts: Sequence[str],
    digests: Sequence[bytes],
    *,
    provider_app_id: str,
) -> Sequence[Row[Any]]:
    """Connections of these provider accounts made with one app (webhooks name accounts, not
    connections), found by their account digests (an index); rows from before digests, by their
    account (a partial index)."""
    query = select(c.id).where(
        c.tenant_id == tenant_id,
        c.provider == provider,
        c.provider_app_id == provider_app_id,
        or_(
            c.account_digest.in_(list(digests)),
            and_(c.account_digest.is_(None), c.account.in_(list(accounts))),
        ),
        c.status != "revoked",
    )
    return (await session.execute(query)).all()
