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

from grantline.vault.adapters.data_key_store import sealed_key_id_sql

log = logging.getLogger(__name__)

# The default connection, or the one the resolve names (by id, or by account: the default among
# that account's connections first, then the oldest; never a revoked one, which could not answer).
_CHOSEN = """
   AND CASE WHEN r.connection_id IS NOT NULL THEN c.id = r.connection_id
            WHEN r.account IS NOT NULL THEN c.account = r.account AND c.status <> 'revoked'
            ELSE c.is_default END"""
_ORDER = "\n ORDER BY 1, c.is_default DESC, c.created_at"

# The data key id a sealed value names in its header (version byte, id length byte, id): the join
# reads the one version that sealed the connection's secret, not every version of the tenant.
_SEALED_KEY_ID = sealed_key_id_sql("COALESCE(c.access_token, c.api_key)")

# One row per key at least (with the run's finished flag), plus one per candidate connection.
_LOOKUP = f"""
SELECT r.idx, f.run_id IS NOT NULL,
       c.id, c.owner, c.status, c.scopes, c.expires_at, c.token_type, c.auth_kind,
       c.access_token, c.api_key, c.refresh_token IS NOT NULL,
       d.data_key_id, d.master_key_id, d.wrapped, d.version, d.retired,
       COALESCE((pa.allow_workspace_fallback AND pa.enabled) OR c.shared_fallback, false),
       c.provider_definition->>'mcp_server_url', c.settings, c.missing_scopes,
       COALESCE(pa.force_workspace_connection AND pa.enabled, false)
  FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS r(idx, tenant_id, owner, provider, run_id, connection_id, account)
  LEFT JOIN vault.finished_runs f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id
  LEFT JOIN vault.connections c
    ON c.tenant_id = r.tenant_id AND c.provider = r.provider{_CHOSEN}
   AND (c.owner = r.owner OR c.owner = 'workspace')
  LEFT JOIN vault.data_keys d ON d.tenant_id = c.tenant_id AND d.data_key_id = {_SEALED_KEY_ID}
  LEFT JOIN vault.provider_apps pa
    ON pa.tenant_id = c.tenant_id AND pa.provider = c.provider AND pa.name IS NULL
"""  # noqa: S608 - composed of this module's constants only
_LOOKUP += _ORDER

# A batch of one (the sequential case) skips the array parameters: dumping them costs more client
# CPU than the query itself.
_LOOKUP_ONE = f"""
SELECT 0, f.run_id IS NOT NULL,
       c.id, c.owner, c.status, c.scopes, c.expires_at, c.token_type, c.auth_kind,
       c.access_token, c.api_key, c.refresh_token IS NOT NULL,
       d.data_key_id, d.master_key_id, d.wrapped, d.version, d.retired,
       COALESCE((pa.allow_workspace_fallback AND pa.enabled) OR c.shared_fallback, false),
       c.provider_definition->>'mcp_server_url', c.settings, c.missing_scopes,
       COALESCE(pa.force_workspace_connection AND pa.enabled, false)
  FROM (SELECT %s::text AS tenant_id, %s::text AS owner, %s::text AS provider, %s::text AS run_id,
               %s::text AS connection_id, %s::text AS account) r
  LEFT JOIN vault.finished_runs f ON f.tenant_id = r.tenant_id AND f.run_id = r.run_id
  LEFT JOIN vault.connections c
    ON c.tenant_id = r.tenant_id AND c.provider = r.provider{_CHOSEN}
   AND (c.owner = r.owner OR c.owner = 'workspace')
  LEFT JOIN vault.data_keys d ON d.tenant_id = c.tenant_id AND d.data_key_id = {_SEALED_KEY_ID}
  LEFT JOIN vault.provider_apps pa
    ON pa.tenant_id = c.tenant_id AND pa.provider = c.provider AND pa.name IS NULL
"""  # noqa: S608 - composed of this module's constants only
_LOOKUP_ONE += _ORDER


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
    # The version of the data key that sealed the secret, and whether it is retired (below the
    # tenant's minimum decryption version).
    data_key_version: int | None
    data_key_retired: bool | None
    fallback_allowed: bool
    # A tenant-added MCP server's URL, from the definition the connection was granted with.
    mcp_server_url: str | None
    # The connection's own settings (shop, cloud id): the resolve reply carries them, and the API base
    # URL is templated from them.
    settings: dict[str, str]
    # Scopes a server said the connection lacks (step-up): not held, whatever the grant recorded.
    missing_scopes: list[str] | None = None
    # The provider app makes every user act through the workspace connection.
    workspace_forced: bool = False

    @property
    def held_scopes(self) -> list[str]:
        """The recorded scopes less those a server said the connection lacks."""
        if not self.missing_scopes:
            return self.scopes
        return [scope for scope in self.scopes if scope not in self.missing_scopes]


LookupKey = tuple[
    str, str, str, str, str | None, str | None
]  # tenant, owner, provider, run, connection, account


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

    async def lookup(
        self,
        tenant_id: str,
        owner: str,
        provider: str,
        run_id: str,
        *,
        connection_id: str | None = None,
        account: str | None = None,
    ) -> Lookup:
        """Whether the run has finished, and the default connections of `owner` and of the workspace
        for the provider (or those named by `connection_id` or `account`, if they are theirs)."""
        future: asyncio.Future[Lookup] = asyncio.get_running_loop().create_future()
        self._pending.append(((tenant_id, owner, provider, run_id, connection_id, account), future))
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
                    [key[4] for key in keys],
                    [key[5] for key in keys],
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
