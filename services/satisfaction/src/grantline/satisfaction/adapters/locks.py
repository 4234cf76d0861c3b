"""Advisory locks that serialize the decisions about one user (or a whole tenant) across replicas.

A run request reads the mirror and may hold the run; a grant writes the mirror and resumes held runs.
Without a lock, a grant committed between the request's read and its insert would leave the run held
forever. Both take the user's lock (and the tenant's lock shared); a workspace grant, which can satisfy
any user of the tenant, takes the tenant's lock exclusively. Locks are always taken tenant first, so
they cannot deadlock. They are transaction-scoped: commit or rollback releases them.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_USER_LOCK = text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended(:tenant_key, 0)),"
    " pg_advisory_xact_lock(hashtextextended(:user_key, 0))"
)
_TENANT_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:tenant_key, 0))")


def tenant_lock_key(tenant_id: str) -> str:
    """The advisory lock key of a tenant (hashed by Postgres)."""
    return f"satisfaction/tenant/{tenant_id}"


def user_lock_key(tenant_id: str, user_id: str) -> str:
    """The advisory lock key of one user of a tenant (hashed by Postgres)."""
    return f"satisfaction/user/{tenant_id}/{user_id}"


async def lock_user(session: AsyncSession, tenant_id: str, user_id: str) -> None:
    """Serialize with every other decision about this user (and with workspace changes of the tenant)."""
    await session.execute(
        _USER_LOCK,
        {"tenant_key": tenant_lock_key(tenant_id), "user_key": user_lock_key(tenant_id, user_id)},
    )


async def lock_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Serialize with every decision about any user of the tenant."""
    await session.execute(_TENANT_LOCK, {"tenant_key": tenant_lock_key(tenant_id)})


_MANY_TENANTS = text(
    "SELECT count(pg_advisory_xact_lock_shared(hashtextextended(k, 0)))"
    ' FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS u(k) ORDER BY k COLLATE "C") AS ordered'
)
_MANY_USERS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    ' FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS u(k) ORDER BY k COLLATE "C") AS ordered'
)


async def lock_users(session: AsyncSession, users: set[tuple[str, str]]) -> None:
    """``lock_user`` for many ``(tenant_id, user_id)``, in one fixed order (so batches cannot deadlock)."""
    if not users:
        return
    tenants = sorted({tenant_lock_key(tenant_id) for tenant_id, _ in users})
    keys = sorted(user_lock_key(tenant_id, user_id) for tenant_id, user_id in users)
    await session.execute(_MANY_TENANTS, {"keys": tenants})
    await session.execute(_MANY_USERS, {"keys": keys})
