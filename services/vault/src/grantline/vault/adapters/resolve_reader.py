"""The resolve hot path's database access: psycopg, a few connections, micro-batched lookups.

A lookup reads whether the grant's run has finished and the candidate connections in one statement.

Every lookup queued while the connections are busy joins the next batch, which is one
`unnest(...)` join: at load, one round trip serves dozens of resolves. Nothing is cached here
but unwrapped data keys (elsewhere): status, scopes, expiry and revocation are read fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

log = logging.getLogger(__name__)

# One row per key at least (with the run's finished flag), plus one per candidate connection.
_LOOKUP = """
SELECT r.idx, f.run_id IS NOT NULL,
       c.id, c.owner, c.status, c.scopes, c.expires_at, c.token_type, c.auth_kind,
       c.access_token, c.api_key, c.refresh_token IS NOT NULL,
       d.data_key_id, d.master_key_id, d.wrapped,
       COALESCE(pa.allow_workspace_fallback AND pa.enabled, false)
  FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS r(idx, tenant_id, owner, provider, run_id)
  LEFT JOIN vault.finished_runs f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id
  LEFT JOIN vault.connections c
    ON c.tenant_id = r.tenant_id AND c.provider = r.provider AND c.is_default
   AND (c.owner = r.owner OR c.owner = 'workspace')
  LEFT JOIN vault.data_keys d ON d.tenant_id = c.tenant_id
  LEFT JOIN vault.provider_apps pa ON pa.tenant_id = c.tenant_id AND pa.provider = c.provider
"""

# A batch of one (the sequential case) skips the array parameters: dumping them costs more client
# CPU than the query itself.
_LOOKUP_ONE = """
SELECT 0, f.run_id IS NOT NULL,
       c.id, c.owner, c.status, c.scopes, c.expires_at, c.token_type, c.auth_kind,
       c.access_token, c.api_key, c.refresh_token IS NOT NULL,
       d.data_key_id, d.master_key_id, d.wrapped,
       COALESCE(pa.allow_workspace_fallback AND pa.enabled, false)
  FROM (SELECT %s::text AS tenant_id, %s::text AS owner, %s::text AS provider, %s::text AS run_id) r
  LEFT JOIN vault.finished_runs f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id
  LEFT JOIN vault.connections c
    ON c.tenant_id = r.tenant_id AND c.provider = r.provider AND c.is_default
   AND (c.owner = r.owner OR c.owner = 'workspace')
  LEFT JOIN vault.data_keys d ON d.tenant_id = c.tenant_id
  LEFT JOIN vault.provider_apps pa ON pa.tenant_id = c.tenant_id AND pa.provider = c.provider
"""


@dataclass(frozen=True, slots=True)
class CandidateRow:
    """A default connection that may serve a resolve (the user's own or the workspace's)."""

    id: str
    owner: str
    status: str
    scopes: list[str]
    expires_at: datetime | None
    token_type: str
    auth_kind: str
    access_token: bytes | None
    api_key: bytes | None
    refreshable: bool
    data_key_id: str | None
    master_key_id: str | None
    wrapped: bytes | None
    fallback_allowed: bool


LookupKey = tuple[str, str, str, str]  # tenant, owner, provider, run


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a resolve needs from the database: whether its run has finished, and the candidates."""

    run_finished: bool
    candidates: list[CandidateRow]


class DatabaseUnavailable(Exception):
    """The lookup could not reach Postgres (it is restarting, or the pool is broken)."""


class ResolveReader:
    """Batches concurrent lookups into one query per free connection."""

    def __init__(self, conninfo: str, *, connections: int, max_batch: int) -> None:
        self._conninfo = conninfo
        self._size = connections
        self._max_batch = max_batch
        self._free: list[psycopg.AsyncConnection[Any] | None] = [None] * connections
        self._pending: list[tuple[LookupKey, asyncio.Future[Lookup]]] = []
        self._scheduled = False
        self._closed = False
        self._running: set[asyncio.Task[None]] = set()

    async def lookup(self, tenant_id: str, owner: str, provider: str, run_id: str) -> Lookup:
        """Whether the run has finished, and the default connections of `owner` and of the workspace
        for the provider."""
        future: asyncio.Future[Lookup] = asyncio.get_running_loop().create_future()
        self._pending.append(((tenant_id, owner, provider, run_id), future))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)
        return await future

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._pending and self._free:
            connection = self._free.pop()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            task = asyncio.ensure_future(self._run(connection, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(
        self,
        connection: psycopg.AsyncConnection[Any] | None,
        batch: Sequence[tuple[LookupKey, asyncio.Future[Lookup]]],
    ) -> None:
        try:
            if connection is None or connection.closed:
                connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="vault-resolve", connect_timeout=5
                )
            rows = await self._query(connection, [key for key, _ in batch])
        except (psycopg.Error, OSError) as error:
            log.warning("resolve lookup failed", extra={"error": type(error).__name__})
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            connection = None
            for _, future in batch:
                if not future.done():
                    future.set_exception(DatabaseUnavailable("the vault database is unavailable; retry"))
        else:
            by_index: list[list[CandidateRow]] = [[] for _ in batch]
            finished = [False] * len(batch)
            for row in rows:
                finished[row[0]] = row[1]
                if row[2] is not None:
                    by_index[row[0]].append(CandidateRow(*row[2:]))
            for (_, future), found, done in zip(batch, by_index, finished, strict=True):
                if not future.done():
                    future.set_result(Lookup(done, found))
        finally:
            if self._closed and connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            else:
                self._free.append(connection)
                if self._pending:
                    self._dispatch()

    @staticmethod
    async def _query(
        connection: psycopg.AsyncConnection[Any], keys: Sequence[LookupKey]
    ) -> list[tuple[Any, ...]]:
        async with connection.cursor() as cursor:
            if len(keys) == 1:
                await cursor.execute(_LOOKUP_ONE, keys[0], prepare=True)
                return await cursor.fetchall()
            await cursor.execute(
                _LOOKUP,
                (
                    list(range(len(keys))),
                    [key[0] for key in keys],
                    [key[1] for key in keys],
                    [key[2] for key in keys],
                    [key[3] for key in keys],
                ),
                prepare=True,
            )
            return await cursor.fetchall()

    async def close(self) -> None:
        """Close idle connections; busy ones close when their batch ends."""
        self._closed = True
        for connection in self._free:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
        self._free.clear()
