"""Rows of `vault.pending_revocations`: provider revocation calls still to make."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class RevocationBinding:
    """The token to revoke, sealed exactly as it was in its connection, and what it is bound to."""

    tenant_id: str
    connection_id: str
    owner: str
    provider: str
    provider_app_id: str
    field: str
    sealed_token: bytes = dataclasses.field(repr=False)
    token_type_hint: str


@dataclass(frozen=True)
class PendingRevocation(RevocationBinding):
    """A revocation call taken for another attempt (its row, as the claim left it)."""

    id: str
    attempts: int

    @property
    def binding(self) -> RevocationBinding:
        """The token and what it is bound to."""
        return RevocationBinding(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(RevocationBinding)}
        )


_ADD = """
    INSERT INTO vault.pending_revocations
           (id, tenant_id, connection_id, owner, provider, provider_app_id, field, sealed_token,
            token_type_hint, attempts, next_attempt_at)
    VALUES (%(id)s, %(tenant_id)s, %(connection_id)s, %(owner)s, %(provider)s, %(provider_app_id)s,
            %(field)s, %(sealed_token)s, %(token_type_hint)s, 1, %(next_attempt_at)s)
    """


async def add(conn: DriverConnection, binding: RevocationBinding, *, next_attempt_at: datetime) -> str:
    """Keep a revocation to make."""
    revocation_id = f"rvk_{uuid.uuid4().hex}"
    params = {
        "id": revocation_id,
        "tenant_id": binding.tenant_id,
        "connection_id": binding.connection_id,
        "owner": binding.owner,
        "provider": binding.provider,
        "provider_app_id": binding.provider_app_id,
        "field": binding.field,
        "sealed_token": binding.sealed_token,
        "token_type_hint": binding.token_type_hint,
        "next_attempt_at": next_attempt_at,
    }
    await conn.execute(_ADD, params)
    return revocation_id


_REMOVE = "DELETE FROM vault.pending_revocations WHERE id = %(id)s"


async def remove(conn: DriverConnection, revocation_id: str) -> None:
    """Forget a revocation: the provider confirmed, refused for good, or the retries gave up."""
    await conn.execute(_REMOVE, {"id": revocation_id})


_CLAIM_DUE = """
    UPDATE vault.pending_revocations AS p
       SET attempts = p.attempts + 1,
           next_attempt_at = now() + make_interval(
               secs => least(%(max_seconds)s, %(base_seconds)s * power(2, p.attempts)))
     WHERE p.id IN (SELECT id FROM vault.pending_revocations
                     WHERE next_attempt_at <= now()
                     ORDER BY next_attempt_at
                     LIMIT %(limit)s
                     FOR UPDATE SKIP LOCKED)
    RETURNING p.id, p.attempts, p.tenant_id, p.connection_id, p.owner, p.provider, p.provider_app_id,
              p.field, p.sealed_token, p.token_type_hint
    """


async def claim_due(
    conn: DriverConnection, *, limit: int, base_seconds: float, max_seconds: float
) -> list[PendingRevocation]:
    """Take up to `limit` due rows and push each one's next attempt out (exponential backoff).

    Claiming and rescheduling are one statement, so another replica skips these rows, and a crash
    during the call only means the row comes due again later.
    """
    params = {"limit": limit, "base_seconds": base_seconds, "max_seconds": max_seconds}
    async with conn.cursor(row_factory=class_row(PendingRevocation)) as cursor:
        await cursor.execute(_CLAIM_DUE, params)
        return await cursor.fetchall()
