"""Advisory locks that serialize the decisions about one user (or a whole tenant) across replicas.

A run request reads the mirror and may hold the run; a grant writes the mirror and resumes held runs.
Without a lock, a grant committed between the request's read and its insert would leave the run held
forever. Both take the user's lock (and the tenant's lock shared); a workspace grant, which can satisfy
any user of the tenant, takes the tenant's lock exclusively. Locks are always taken tenant first, so
they cannot deadlock. They are transaction-scoped: commit or rollback releases them.
"""

from grantline.runtime.db.driver import DriverConnection

_USER_LOCK = (
    "SELECT pg_advisory_xact_lock_shared(hashtextextended(%(tenant_key)s, 0)),"
    " pg_advisory_xact_lock(hashtextextended(%(user_key)s, 0))"
)
_TENANT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(tenant_key)s, 0))"


def tenant_lock_key(tenant_id: str) -> str:
    """The advisory lock key of a tenant (hashed by Postgres)."""
    return f"satisfaction/tenant/{tenant_id}"


def user_lock_key(tenant_id: str, user_id: str) -> str:
    """The advisory lock key of one user of a tenant (hashed by Postgres)."""
    return f"satisfaction/user/{tenant_id}/{user_id}"


async def lock_user(conn: DriverConnection, tenant_id: str, user_id: str) -> None:
    """Serialize with every other decision about this user (and with workspace changes of the tenant)."""
    # Not read back: Postgres runs a pipeline's statements in order, so whatever follows runs under it.
    await conn.execute(
        _USER_LOCK,
        {"tenant_key": tenant_lock_key(tenant_id), "user_key": user_lock_key(tenant_id, user_id)},
    )


async def lock_tenant(conn: DriverConnection, tenant_id: str) -> None:
    """Serialize with every decision about any user of the tenant."""
    await conn.execute(_TENANT_LOCK, {"tenant_key": tenant_lock_key(tenant_id)})
