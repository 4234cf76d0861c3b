"""Mirror reads for ``satisfaction.check``, gathered: concurrent checks share one query.

A check's own work is microseconds once the report is memoized; a query per check would cost more than
everything else. Checks that arrive while a read is in flight wait for the next one, which then reads
every waiting user's grants at once; with at most ``max_in_flight`` reads running, a lone check still
gets its own read at once. Each read is one statement on an autocommit psycopg connection
(``runtime.single_statement``): no transaction to begin or end around it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.adapters.mirror_repository import connected_query, grants_by_user
from grantline.satisfaction.domain.report import ConnectedGrant

User = tuple[str, str]
# Lends a connection for one statement: ``partial(runtime.single_statement, wake_relay=False)``.
SingleStatements = Callable[[], AbstractAsyncContextManager[DriverConnection]]


class GatheredGrantReads:
    """``grants_for(tenant, user)``, answered from shared queries on the driver pool."""

    def __init__(
        self, connections: SingleStatements, *, max_in_flight: int = 2, max_batch: int = 500
    ) -> None:
        self._connections = connections
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._waiting: list[tuple[User, asyncio.Future[list[ConnectedGrant]]]] = []
        self._in_flight = 0
        self._readers: set[asyncio.Task[None]] = set()

    async def grants_for(self, tenant_id: str, user_id: str) -> list[ConnectedGrant]:
        """The connected grants the user may use (own ones, then the workspace's)."""
        future: asyncio.Future[list[ConnectedGrant]] = asyncio.get_running_loop().create_future()
        self._waiting.append(((tenant_id, user_id), future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            reader = asyncio.ensure_future(self._read_while_waiting())
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
        return await future

    async def close(self) -> None:
        """Wait for the reads in flight."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._readers, return_exceptions=True)

    async def _read_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                users = {user for user, _ in batch}
                try:
                    statement, parameters = connected_query(users)
                    async with self._connections() as conn:
                        cursor = await conn.execute(statement, parameters, prepare=True)
                        rows = await cursor.fetchall()
                    by_user = grants_by_user(users, rows)
                except Exception as error:  # Postgres away: every waiting check fails fast
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for user, future in batch:
                    if not future.done():
                        future.set_result(by_user[user])
        finally:
            self._in_flight -= 1
