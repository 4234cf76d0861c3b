"""``grantline satisfaction rebuild``: recompute the mirror from the CONNECTIONS stream and swap it in.

1. Read the stream from its first message to its current last one, message by message through the
   stream's get API (satisfaction's NATS user may not create consumers, not even ephemeral ones:
   docs/nats-security.md), applying the live rules in memory, and write the result into a fresh table.
2. Lock the live table against writers (readers go on), read what was published meanwhile, bring the
   fresh table up to date, and replace the live rows with it in the same transaction.

Live consumers wait on the lock and then apply their events on top of the rebuilt rows by the usual
ordering rules, so nothing published during the rebuild is lost.

The statements run on a psycopg connection of its own, as the service's do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from grantline.contract.registry import decode_event
from grantline.runtime.db.driver import DriverConnection, connect
from grantline.runtime.nats.streams import CONNECTIONS
from grantline.satisfaction.adapters.mirror_repository import COLUMNS, upsert_statement, values_of
from grantline.satisfaction.domain.mirror_records import MirrorRecord
from grantline.satisfaction.service.mirror_builder import MirrorBuilder

if TYPE_CHECKING:  # the CLI hands over its engine; only its URL is used
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

STAGING = "connection_mirror_rebuild"
_DROP_STAGING = "DROP TABLE IF EXISTS satisfaction.connection_mirror_rebuild"
_CREATE_STAGING = (
    "CREATE TABLE satisfaction.connection_mirror_rebuild"
    " (LIKE satisfaction.connection_mirror INCLUDING DEFAULTS)"
)
_STAGING_KEY = (
    "ALTER TABLE satisfaction.connection_mirror_rebuild"
    " ADD PRIMARY KEY (tenant_id, owner, provider, connection_id)"
)
_LOCK_LIVE = "LOCK TABLE satisfaction.connection_mirror IN EXCLUSIVE MODE"
_WRITE_STAGING = upsert_statement(STAGING)
_CLEAR_LIVE = "DELETE FROM satisfaction.connection_mirror"
_COPY_STAGING = (
    f"INSERT INTO satisfaction.connection_mirror ({', '.join(COLUMNS)})"  # noqa: S608 - constants
    f" SELECT {', '.join(COLUMNS)} FROM satisfaction.{STAGING}"
)
_CHUNK = 5000


@dataclass(frozen=True)
class RebuildResult:
    """How many stream messages were read, how many could not be read, and how many rows the mirror has."""

    messages: int
    malformed: int
    rows: int


class _StreamReader:
    def __init__(self, js: JetStreamContext, builder: MirrorBuilder) -> None:
        self._js = js
        self._builder = builder
        self.position = 0
        self.messages = 0
        self.malformed = 0

    async def read_until_last(self) -> None:
        """Apply every message up to the stream's current last sequence."""
        info = await self._js.stream_info(CONNECTIONS.name)
        last = info.state.last_seq
        while self.position < last:
            try:
                # The next stored message at or after the sequence: gaps (expired or deleted) are skipped.
                msg = await self._js.get_msg(
                    CONNECTIONS.name, seq=self.position + 1, subject=CONNECTIONS.subjects[0], next=True
                )
            except NotFoundError:
                return  # nothing stored after our position (it expired while we read)
            self.position = msg.seq or last
            self.messages += 1
            try:
                event = decode_event(msg.data or b"")
            except ValidationError:
                self.malformed += 1
                continue
            self._builder.apply(event)


async def _write(conn: DriverConnection, records: list[MirrorRecord]) -> None:
    rows = values_of(records)
    async with conn.cursor() as cursor:
        for start in range(0, len(rows), _CHUNK):
            await cursor.executemany(_WRITE_STAGING, rows[start : start + _CHUNK])


def _url(database: str | AsyncEngine) -> str:
    return database if isinstance(database, str) else database.url.render_as_string(hide_password=False)


async def rebuild_mirror(database: str | AsyncEngine, nc: Client) -> RebuildResult:
    """Rebuild ``connection_mirror`` (and so ``app_user_connect``) from the CONNECTIONS stream.

    ``database``: the database URL (an engine stands for its URL).
    """
    builder = MirrorBuilder()
    reader = _StreamReader(nc.jetstream(), builder)
    await reader.read_until_last()
    conn = await connect(_url(database), application_name="satisfaction-rebuild")
    try:
        async with conn.transaction():
            await conn.execute(_DROP_STAGING)
            await conn.execute(_CREATE_STAGING)
            await conn.execute(_STAGING_KEY)
            await _write(conn, builder.take_changed())
        async with conn.transaction():
            # EXCLUSIVE blocks the live consumers' writes but not readers (checks and admissions go on).
            await conn.execute(_LOCK_LIVE)
            await reader.read_until_last()
            await _write(conn, builder.take_changed())
            await conn.execute(_CLEAR_LIVE)
            await conn.execute(_COPY_STAGING)
            await conn.execute(_DROP_STAGING)
    finally:
        await conn.close()
    log.info(
        "mirror rebuilt",
        extra={"messages": reader.messages, "malformed": reader.malformed, "rows": len(builder.records)},
    )
    return RebuildResult(messages=reader.messages, malformed=reader.malformed, rows=len(builder.records))
