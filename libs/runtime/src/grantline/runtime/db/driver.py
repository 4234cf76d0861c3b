"""Statements on psycopg directly, for the few loops that run hundreds of transactions a second.

SQLAlchemy's session and connection lifecycle costs a few hundred microseconds of Python per
transaction before any statement runs (measured: 3 statements and a commit took ~620 us of CPU through
an ``AsyncSession`` and ~220 us on a psycopg pool). Most code pays that gladly; the admission loop of
the satisfaction service, the refresher's claim and outcome writes and the outbox relay do not, so
they use a small psycopg pool (``DriverPool``) or, inside an existing session, the psycopg connection
under it (``driver_connection``). Statements use psycopg's ``%(name)s`` placeholders and are prepared
on the server after their first few uses.

Every unit of work here commits when its block ends and rolls back when it raises, like
``ServiceRuntime.transaction``; a connection that broke is dropped by the pool, not reused.

A unit of work that is one statement (data-modifying CTEs make several writes one atomic
statement) is cheaper still on ``DriverPool.single_statements``: autocommit, no pipeline, no BEGIN
or COMMIT. Measured on the client (uvloop, 16 concurrent): an update and a read in a pipelined
transaction ~300 us of CPU; the same as one statement in autocommit ~95 us. Pipeline mode saves
round trips, not CPU: its per-command bookkeeping costs more than it saves when the server is local.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from grantline.runtime.db.urls import libpq_url

if TYPE_CHECKING:  # a service on psycopg alone never loads SQLAlchemy (runtime/db/database.py)
    from sqlalchemy.ext.asyncio import AsyncSession

DriverConnection = psycopg.AsyncConnection[Any]
Row = TypeVar("Row")
# How long a unit of work waits for a connection before it fails with psycopg_pool.PoolTimeout (an
# OperationalError: the gateway answers 503). psycopg_pool's own default, 30 s, held API requests for
# half a minute while Postgres was down; a connection is otherwise free within milliseconds.
CHECKOUT_TIMEOUT_SECONDS = 5.0


async def fetch_one(
    conn: DriverConnection, row_type: type[Row], statement: str, params: Mapping[str, Any]
) -> Row | None:
    """The statement's first row as a ``row_type`` (a dataclass whose fields are the columns)."""
    async with conn.cursor(row_factory=class_row(row_type)) as cursor:
        await cursor.execute(statement, params)
        return await cursor.fetchone()


async def fetch_all(
    conn: DriverConnection, row_type: type[Row], statement: str, params: Mapping[str, Any]
) -> list[Row]:
    """Every row of the statement as a ``row_type``."""
    async with conn.cursor(row_factory=class_row(row_type)) as cursor:
        await cursor.execute(statement, params)
        return await cursor.fetchall()


def with_jsonb(values: Mapping[str, Any], json_columns: frozenset[str]) -> dict[str, Any]:
    """Column values as parameters, those of ``json_columns`` wrapped in ``Jsonb`` (None too: it
    stores JSON null, as SQLAlchemy's JSONB type did, not SQL NULL)."""
    return {column: Jsonb(value) if column in json_columns else value for column, value in values.items()}


async def driver_connection(session: AsyncSession) -> DriverConnection:
    """The psycopg connection under ``session``, in the session's transaction (committed with it)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def connect(database_url: str, *, application_name: str, autocommit: bool = False) -> DriverConnection:
    """A dedicated psycopg connection (for a long-lived loop such as the outbox relay)."""
    return await psycopg.AsyncConnection.connect(
        libpq_url(database_url),
        autocommit=autocommit,
        application_name=application_name,
        connect_timeout=5,
    )


class DriverPool:
    """A few psycopg connections for a service's hot loops, opened on first use."""

    def __init__(
        self,
        database_url: str,
        *,
        max_size: int,
        application_name: str,
        checkout_timeout: float = CHECKOUT_TIMEOUT_SECONDS,
    ) -> None:
        self._conninfo = libpq_url(database_url)
        self._max_size = max_size
        self._checkout_timeout = checkout_timeout
        self._application_name = application_name
        self._pool: AsyncConnectionPool[DriverConnection] | None = None
        self._autocommit_pool: AsyncConnectionPool[DriverConnection] | None = None
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DriverConnection]:
        """One unit of work: commits when the block ends, rolls back if it raises.

        The connection is in pipeline mode: statements are sent without waiting for one another
        until a result is read (reading one waits for everything sent before it), and the COMMIT
        travels with the statements after the last read. BEGIN, two statements and a read are one
        round trip instead of three.
        """
        pool = self._pool or await self._open(autocommit=False)
        async with pool.connection() as connection, connection.pipeline():
            yield connection
            await connection.commit()

    @asynccontextmanager
    async def single_statements(self) -> AsyncIterator[DriverConnection]:
        """A connection in autocommit mode: each statement is its own transaction.

        For units of work that are one statement. Its connections are a pool of their own (opened
        on first use), so no connection ever changes mode between borrowers.
        """
        pool = self._autocommit_pool or await self._open(autocommit=True)
        async with pool.connection() as connection:
            yield connection

    async def _open(self, *, autocommit: bool) -> AsyncConnectionPool[DriverConnection]:
        # Opened in the event loop that uses it (the pool's locks and tasks belong to that loop).
        async with self._opening:
            existing = self._autocommit_pool if autocommit else self._pool
            if existing is not None:
                return existing
            pool: AsyncConnectionPool[DriverConnection] = AsyncConnectionPool(
                self._conninfo,
                min_size=1,
                max_size=self._max_size,
                timeout=self._checkout_timeout,
                kwargs={
                    "application_name": self._application_name,
                    "connect_timeout": 5,
                    "autocommit": autocommit,
                },
                max_idle=300,  # a connection idle this long is closed
                check=_check_status,
                open=False,
                name=f"{self._application_name}-driver{'-autocommit' if autocommit else ''}",
            )
            await pool.open(wait=False)
            if autocommit:
                self._autocommit_pool = pool
            else:
                self._pool = pool
            return pool

    async def close(self) -> None:
        """Close every connection (at shutdown)."""
        for pool in (self._pool, self._autocommit_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._autocommit_pool = None


async def _check_status(connection: DriverConnection) -> None:
    # Called on every checkout. Not a ping: a round trip per transaction is what these loops avoid.
    # A connection that Postgres dropped meanwhile fails its first statement; the pool discards it
    # and the caller's retry (a redelivery, the next claim) gets a new one.
    if connection.pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("connection is not usable")


__all__ = [
    "DriverConnection",
    "DriverPool",
    "connect",
    "driver_connection",
    "fetch_all",
    "fetch_one",
    "with_jsonb",
]
