"""Fixed-window counters in Postgres: one row per bucket, counted and read in one statement each.

Why by hand: the well-kept Python limiters (`limits`, `slowapi`) keep their counters in Redis,
Memcached or MongoDB, none in Postgres, and the gateway's only shared state is Postgres. A fixed
window is one upsert: the row is reset when its window has passed, else incremented, atomically
under the row lock, so concurrent replicas never lose a hit. The window is computed from the
database clock (`now()`), so replicas agree on it whatever their own clocks say.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
gateway never loads SQLAlchemy (adapters/tables.py declares the table for the migrations only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from grantline.runtime.db.driver import DriverConnection

# `clock`: the window a bucket is in now (`now()` rounded down to a multiple of the window length)
# and when it ends. EXHAUSTED below computes it with the same expression: a read that rounded
# differently would miss the row a count wrote.
_HIT = """
    WITH clock AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / CAST(%(window)s AS integer))
                            * CAST(%(window)s AS integer)) AS window_start
    )
    INSERT INTO gateway.rate_limits AS counter (bucket, window_start, hits)
    SELECT %(bucket)s, clock.window_start, 1 FROM clock
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN counter.window_start = excluded.window_start THEN counter.hits + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING hits, CAST(greatest(1, ceil(extract(epoch FROM
        window_start + make_interval(secs => CAST(%(window)s AS integer)) - now()))) AS integer)
        AS seconds_left
    """
_READ = """
    WITH clock AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / CAST(%(window)s AS integer))
                            * CAST(%(window)s AS integer)) AS window_start
    )
    SELECT CAST(coalesce(max(counter.hits), 0) AS integer) AS hits,
           CAST(greatest(1, ceil(extract(epoch FROM
               min(clock.window_start) + make_interval(secs => CAST(%(window)s AS integer)) - now())))
               AS integer) AS seconds_left
    FROM clock LEFT JOIN gateway.rate_limits AS counter
        ON counter.bucket = %(bucket)s AND counter.window_start = clock.window_start
    """


@dataclass(frozen=True)
class Count:
    hits: int  # in the current window, this one included when counted
    seconds_left: int  # until the window ends (what `Retry-After` says)


async def count(conn: DriverConnection, bucket: str, window_seconds: int) -> Count:
    """Add one hit to `bucket` in the current window; returns the window's hits so far."""
    async with conn.cursor(row_factory=class_row(Count)) as cursor:
        await cursor.execute(_HIT, {"bucket": bucket, "window": window_seconds})
        row = await cursor.fetchone()
    assert row is not None  # an upsert without a WHERE returns its row
    return row


async def current(conn: DriverConnection, bucket: str, window_seconds: int) -> Count:
    """The hits of `bucket` in the current window, without adding one."""
    async with conn.cursor(row_factory=class_row(Count)) as cursor:
        await cursor.execute(_READ, {"bucket": bucket, "window": window_seconds})
        row = await cursor.fetchone()
    assert row is not None  # an aggregate returns one row
    return row


@dataclass(frozen=True)
class Guard:
    """A counter that refuses a request once its window holds `allowed` hits (counting nothing)."""

    bucket: str
    window_seconds: int
    allowed: int


class Exhausted(Exception):
    """A guard's window is used up; what it guarded was not looked at."""

    def __init__(self, guard: int, seconds_left: int) -> None:
        super().__init__(guard)
        self.guard = guard  # its index among the guards given
        self.seconds_left = seconds_left


# The first guard (in the order given) whose window holds `allowed` hits, if any: the start of a
# WITH clause. A statement that begins with it reads what the guards protect in a MATERIALIZED CTE
# filtered on `NOT EXISTS (SELECT FROM exhausted)`: Postgres checks that once, before the scan, so a
# refused request reads nothing else (an inlined subquery would be scanned all the same), and the
# check and the read are one round trip.
EXHAUSTED = """
    WITH asked AS (
        SELECT guard.bucket, guard.window_seconds, guard.allowed, guard.position,
               to_timestamp(floor(extract(epoch FROM now()) / guard.window_seconds)
                            * guard.window_seconds) AS window_start
          FROM unnest(CAST(%(guard_buckets)s AS text[]), CAST(%(guard_windows)s AS integer[]),
                      CAST(%(guard_allowed)s AS integer[]))
               WITH ORDINALITY AS guard(bucket, window_seconds, allowed, position)
    ),
    exhausted AS (
        SELECT CAST(asked.position AS integer) AS position,
               CAST(greatest(1, ceil(extract(epoch FROM
                   asked.window_start + make_interval(secs => asked.window_seconds) - now())))
                   AS integer) AS seconds_left
          FROM asked LEFT JOIN gateway.rate_limits AS counter
            ON counter.bucket = asked.bucket AND counter.window_start = asked.window_start
         WHERE coalesce(counter.hits, 0) >= asked.allowed
         ORDER BY asked.position
         LIMIT 1
    )
    """
_FIRST_EXHAUSTED = EXHAUSTED + " SELECT position, seconds_left FROM exhausted"  # noqa: S608 - constants only


def guard_parameters(guards: Sequence[Guard]) -> dict[str, list[str] | list[int]]:
    """The parameters EXHAUSTED takes (to merge into those of the statement it begins)."""
    return {
        "guard_buckets": [guard.bucket for guard in guards],
        "guard_windows": [guard.window_seconds for guard in guards],
        "guard_allowed": [guard.allowed for guard in guards],
    }


def raise_if_exhausted(position: int | None, seconds_left: int | None) -> None:
    """Raise `Exhausted` for the `position, seconds_left` columns a statement got from EXHAUSTED."""
    if position is not None:
        raise Exhausted(position - 1, seconds_left or 1)


async def refuse_if_exhausted(conn: DriverConnection, guards: Sequence[Guard]) -> None:
    """Raise `Exhausted` for the first of `guards` whose window is used up."""
    if not guards:
        return
    cursor = await conn.execute(_FIRST_EXHAUSTED, guard_parameters(guards))
    row = await cursor.fetchone()
    if row is not None:
        raise_if_exhausted(*row)


# RETURNING, counted: in pipeline mode (runtime.driver_transaction) a result is there only once read.
_DELETE_EXPIRED = """
    WITH forgotten AS (
        DELETE FROM gateway.rate_limits WHERE window_start < %(before)s RETURNING 1
    )
    SELECT count(*) FROM forgotten
    """


async def delete_expired(conn: DriverConnection, *, before: datetime) -> int:
    """Forget counters whose window started before `before` (they count from 1 again anyway)."""
    cursor = await conn.execute(_DELETE_EXPIRED, {"before": before})
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0
