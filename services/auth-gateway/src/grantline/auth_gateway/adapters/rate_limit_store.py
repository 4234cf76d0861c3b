"""Fixed-window counters in Postgres: one row per bucket, counted and read in one statement each.

Why by hand: the well-kept Python limiters (`limits`, `slowapi`) keep their counters in Redis,
Memcached or MongoDB, none in Postgres, and the gateway's only shared state is Postgres. A fixed
window is one upsert: the row is reset when its window has passed, else incremented, atomically
under the row lock, so concurrent replicas never lose a hit. The window is computed from the
database clock (`now()`), so replicas agree on it whatever their own clocks say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters.tables import rate_limits

# `clock`: the window a bucket is in now (`now()` rounded down to a multiple of the window length)
# and when it ends.
_HIT = text(
    """
    WITH clock AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / CAST(:window AS integer))
                            * CAST(:window AS integer)) AS window_start
    )
    INSERT INTO gateway.rate_limits AS counter (bucket, window_start, hits)
    SELECT :bucket, clock.window_start, 1 FROM clock
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN counter.window_start = excluded.window_start THEN counter.hits + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING hits, greatest(1, ceil(extract(epoch FROM
        window_start + make_interval(secs => CAST(:window AS integer)) - now()))) AS seconds_left
    """
)
_READ = text(
    """
    WITH clock AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / CAST(:window AS integer))
                            * CAST(:window AS integer)) AS window_start
    )
    SELECT coalesce(max(counter.hits), 0) AS hits,
           greatest(1, ceil(extract(epoch FROM
               min(clock.window_start) + make_interval(secs => CAST(:window AS integer)) - now())))
               AS seconds_left
    FROM clock LEFT JOIN gateway.rate_limits AS counter
        ON counter.bucket = :bucket AND counter.window_start = clock.window_start
    """
)


@dataclass(frozen=True)
class Count:
    hits: int  # in the current window, this one included when counted
    seconds_left: int  # until the window ends (what `Retry-After` says)


async def count(session: AsyncSession, bucket: str, window_seconds: int) -> Count:
    """Add one hit to `bucket` in the current window; returns the window's hits so far."""
    row = (await session.execute(_HIT, {"bucket": bucket, "window": window_seconds})).one()
    return Count(int(row.hits), int(row.seconds_left))


async def current(session: AsyncSession, bucket: str, window_seconds: int) -> Count:
    """The hits of `bucket` in the current window, without adding one."""
    row = (await session.execute(_READ, {"bucket": bucket, "window": window_seconds})).one()
    return Count(int(row.hits), int(row.seconds_left))


async def delete_expired(session: AsyncSession, *, before: datetime) -> int:
    """Forget counters whose window started before `before` (they count from 1 again anyway)."""
    result = await session.execute(delete(rate_limits).where(rate_limits.c.window_start < before))
    return int(getattr(result, "rowcount", 0) or 0)
