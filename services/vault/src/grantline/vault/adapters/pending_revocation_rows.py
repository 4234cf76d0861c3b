"""Rows of `vault.pending_revocations`: provider revocation calls still to make."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.tables import pending_revocations


async def add(session: AsyncSession, values: dict[str, Any], *, next_attempt_at: datetime) -> str:
    """Keep a revocation to make; `values` holds the connection's binding and its sealed token."""
    revocation_id = f"rvk_{uuid.uuid4().hex}"
    await session.execute(
        insert(pending_revocations).values(
            id=revocation_id, attempts=1, next_attempt_at=next_attempt_at, **values
        )
    )
    return revocation_id


async def remove(session: AsyncSession, revocation_id: str) -> None:
    """Forget a revocation: the provider confirmed, refused for good, or the retries gave up."""
    await session.execute(delete(pending_revocations).where(pending_revocations.c.id == revocation_id))


async def claim_due(
    session: AsyncSession, *, limit: int, base_seconds: float, max_seconds: float
) -> list[Row[Any]]:
    """Take up to `limit` due rows and push each one's next attempt out (exponential backoff).

    Claiming and rescheduling are one statement, so another replica skips these rows, and a crash
    during the call only means the row comes due again later.
    """
    result = await session.execute(
        text(
            """
            UPDATE vault.pending_revocations AS p
               SET attempts = p.attempts + 1,
                   next_attempt_at = now() + make_interval(
                       secs => least(:max_seconds, :base_seconds * power(2, p.attempts)))
             WHERE p.id IN (SELECT id FROM vault.pending_revocations
                             WHERE next_attempt_at <= now()
                             ORDER BY next_attempt_at
                             LIMIT :limit
                             FOR UPDATE SKIP LOCKED)
            RETURNING p.*
            """
        ),
        {"limit": limit, "base_seconds": base_seconds, "max_seconds": max_seconds},
    )
    return list(result.fetchall())
