"""One service's Postgres: SQLAlchemy sessions for most work, a bare psycopg pool for the hot loops.

The runtime builds this only for a service that keeps state, and imports it only then: SQLAlchemy and
psycopg are a quarter of a service's memory at rest (benchmarks/memory), and the stateless proxy
needs neither.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from grantline.runtime.db.driver import DriverConnection, DriverPool
from grantline.runtime.db.engine import create_engine, session_factory, transaction
from grantline.runtime.settings import ServiceSettings


class Database:
    """The engine, its sessions and the driver pool of one service, opened lazily, closed together."""

    def __init__(self, settings: ServiceSettings) -> None:
        name = settings.service_name
        self.engine: AsyncEngine = create_engine(
            settings.database_url, pool_size=settings.database_pool_size, application_name=name
        )
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self._driver_pool = DriverPool(
            settings.database_url, max_size=settings.database_driver_pool_size, application_name=name
        )

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session whose work commits when the block ends and rolls back if it raises."""
        return transaction(self.sessions)

    def driver_transaction(self) -> AbstractAsyncContextManager[DriverConnection]:
        """A bare psycopg connection in a transaction (see ``grantline.runtime.db.driver``)."""
        return self._driver_pool.transaction()

    def single_statements(self) -> AbstractAsyncContextManager[DriverConnection]:
        """A bare psycopg connection in autocommit mode, for work that is one statement."""
        return self._driver_pool.single_statements()

    async def ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close_driver_pool(self) -> None:
        await self._driver_pool.close()

    async def dispose_engine(self) -> None:
        await self.engine.dispose()
