"""Tenants, their API keys and their own provider definitions (Postgres, schema `gateway`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters.tables import api_keys, tenant_providers, tenants


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


async def insert_tenant(session: AsyncSession, *, name: str, return_to_allow_list: list[str]) -> Tenant:
    """Create a tenant (the caller checks the name is free)."""
    tenant = Tenant(new_tenant_id(), name, list(return_to_allow_list))
    await session.execute(
        insert(tenants).values(
            tenant_id=tenant.tenant_id, name=name, return_to_allow_list=tenant.return_to_allow_list
        )
    )
    return tenant


def _tenant(row: Any) -> Tenant:
    return Tenant(row.tenant_id, row.name, list(row.return_to_allow_list or []))


async def tenant_by_name(session: AsyncSession, name: str) -> Tenant | None:
    """The tenant with this name, or None."""
    row = (await session.execute(select(tenants).where(tenants.c.name == name))).first()
    return _tenant(row) if row else None


async def tenant_by_id(session: AsyncSession, tenant_id: str) -> Tenant | None:
    """The tenant with this id, or None."""
    row = (await session.execute(select(tenants).where(tenants.c.tenant_id == tenant_id))).first()
    return _tenant(row) if row else None


async def set_allow_list(session: AsyncSession, tenant_id: str, allow_list: list[str]) -> None:
    """Replace a tenant's `return_to` allow-list."""
    await session.execute(
        update(tenants).where(tenants.c.tenant_id == tenant_id).values(return_to_allow_list=allow_list)
    )


async def insert_api_key(session: AsyncSession, *, tenant_id: str, key_hash: str, hint: str) -> str:
    """Store a key's hash; returns its id. A hash already stored (same key) is left alone."""
    key_id = f"key_{uuid.uuid4().hex[:16]}"
    result = await session.execute(
        pg_insert(api_keys)
        .values(key_id=key_id, tenant_id=tenant_id, key_hash=key_hash, hint=hint)
        .on_conflict_do_nothing(index_elements=[api_keys.c.key_hash])
        .returning(api_keys.c.key_id)
    )
    inserted = result.scalar_one_or_none()
    if inserted is not None:
        return str(inserted)
    existing = await session.execute(select(api_keys.c.key_id).where(api_keys.c.key_hash == key_hash))
    return str(existing.scalar_one())


async def api_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKeyRecord | None:
    """The key stored under this hash (revoked or not), or None."""
    row = (await session.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    if row is None:
        return None
    return ApiKeyRecord(row.key_id, row.tenant_id, row.hint, row.created_at, row.revoked_at)


async def revoke_api_key(session: AsyncSession, key_id: str) -> str | None:
    """Mark a key revoked; returns its tenant id, or None when there is no such active key."""
    result = await session.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(api_keys.c.tenant_id)
    )
    tenant_id = result.scalar_one_or_none()
    return str(tenant_id) if tenant_id is not None else None


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKeyRecord]:
    """A tenant's keys, oldest first (hints only)."""
    rows = await session.execute(
        select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.created_at)
    )
    return [ApiKeyRecord(r.key_id, r.tenant_id, r.hint, r.created_at, r.revoked_at) for r in rows]


async def legacy_tenant_providers(
    session: AsyncSession, *, limit: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Definitions kept here before the vault owned them: `(tenant_id, provider, definition)`."""
    rows = await session.execute(
        select(tenant_providers.c.tenant_id, tenant_providers.c.provider, tenant_providers.c.definition)
        .order_by(tenant_providers.c.tenant_id, tenant_providers.c.provider)
        .limit(limit)
    )
    return [(row.tenant_id, row.provider, dict(row.definition)) for row in rows]


async def forget_legacy_tenant_provider(session: AsyncSession, tenant_id: str, provider: str) -> None:
    """Drop a definition the vault now holds."""
    await session.execute(
        delete(tenant_providers).where(
            tenant_providers.c.tenant_id == tenant_id, tenant_providers.c.provider == provider
        )
    )
