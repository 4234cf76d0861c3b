"""One service's Postgres: a bare psycopg pool, and SQLAlchemy sessions for the code written on them.

The runtime builds this only for a service that keeps state, and imports it only then. SQLAlchemy is
loaded on the first use of ``engine``, ``sessions`` or ``transaction()``, not before: a service
whose code runs on psycopg alone never loads it, which is about
20 MB at rest (benchmarks/memory).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from grantline.runtime.db.driver import DriverConnection, DriverPool
from grantline.runtime.settings import ServiceSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


READY_TIMEOUT_SECONDS = 5.0


class Database:
    """The driver pool of one service and, once asked for, its SQLAlchemy engine; closed together."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._driver_pool = DriverPool(
            settings.database_url,
            max_size=settings.database_driver_pool_size,
            application_name=settings.service_name,
        )
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine, created (and SQLAlchemy imported) on first use."""
        if self._engine is None:
            from grantline.runtime.db.engine import create_engine

            settings = self._settings
            self._engine = create_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                application_name=settings.service_name,
            )
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on ``engine``."""
        if self._sessions is None:
            from grantline.runtime.db.engine import session_factory

            self._sessions = session_factory(self.engine)
        return self._sessions

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session whose work commits when the block ends and rolls back if it raises."""
        from grantline.runtime.db.engine import transaction

        return transaction(self.sessions)

    def driver_transaction(self) -> AbstractAsyncContextManager[DriverConnection]:
        """A bare psycopg connection in a transaction (see ``grantline.runtime.db.driver``)."""
        return self._driver_pool.transaction()

    def single_statements(self) -> AbstractAsyncContextManager[DriverConnection]:
        """A bare psycopg connection in autocommit mode, for work that is one statement."""
        return self._driver_pool.single_statements()

    async def ready(self) -> bool:
        """Postgres answers (on the driver pool, which every stateful service uses).

        Bounded: the pool would wait its own 30 s for a connection while Postgres is down, and the
        start-up retry loop and the readiness probe both want an answer sooner.
        """
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with self._driver_pool.single_statements() as conn:
                await conn.execute("SELECT 1")
        return True

    async def close_driver_pool(self) -> None:
        await self._driver_pool.close()

    async def dispose_engine(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
