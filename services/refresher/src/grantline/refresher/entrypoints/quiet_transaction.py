"""A unit of work for transactions that write no event, so they need not wake the outbox relay."""

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.runtime import ServiceRuntime


@contextlib.asynccontextmanager
async def quiet_transaction(runtime: ServiceRuntime) -> AsyncIterator[AsyncSession]:
    """Like ``runtime.transaction()`` (commit at the end, roll back on error) without the relay wake.

    Claims, outcome writes and schedule updates commit hundreds of times a second and never write
    the outbox; waking the relay after each made it query an empty outbox just as often.
    """
    async with runtime.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
