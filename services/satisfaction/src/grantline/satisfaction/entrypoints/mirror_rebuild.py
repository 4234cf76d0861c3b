"""``grantline satisfaction rebuild``: recompute the mirror from the CONNECTIONS stream and swap it in.

1. Read the stream from its first message to its current last one, message by message through the
   stream's get API (satisfaction's NATS user may not create consumers, not even ephemeral ones:
   docs/nats-security.md), applying the live rules in memory, and write the result into a fresh table.
2. Lock the live table against writers (readers go on), read what was published meanwhile, bring the
   fresh table up to date, and replace the live rows with it in the same transaction.

Live consumers wait on the lock and then apply their events on top of the rebuilt rows by the usual
ordering rules, so nothing published during the rebuild is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy import MetaData, Table, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from grantline.contract.registry import decode_event
from grantline.runtime.nats.streams import CONNECTIONS
from grantline.satisfaction.adapters.mirror_repository import values_of
from grantline.satisfaction.adapters.tables import SCHEMA, connection_mirror
from grantline.satisfaction.domain.mirror_records import MirrorRecord
from grantline.satisfaction.service.mirror_builder import MirrorBuilder

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


def _staging_table() -> Table:
    return connection_mirror.to_metadata(MetaData(schema=SCHEMA), name=STAGING)


async def _write(session: AsyncSession, staging: Table, records: list[MirrorRecord]) -> None:
    rows = values_of(records)
    key = ["tenant_id", "owner", "provider", "connection_id"]
    for start in range(0, len(rows), _CHUNK):
        stmt = insert(staging)
        update = {c.name: stmt.excluded[c.name] for c in staging.columns if c.name not in key}
        await session.execute(
            stmt.on_conflict_do_update(index_elements=key, set_=update), rows[start : start + _CHUNK]
        )


async def rebuild_mirror(engine: AsyncEngine, nc: Client) -> RebuildResult:
    """Rebuild ``connection_mirror`` (and so ``app_user_connect``) from the CONNECTIONS stream."""
    builder = MirrorBuilder()
    reader = _StreamReader(nc.jetstream(), builder)
    staging = _staging_table()
    await reader.read_until_last()
    async with AsyncSession(engine) as session:
        await session.execute(text(_DROP_STAGING))
        await session.execute(text(_CREATE_STAGING))
        await session.execute(text(_STAGING_KEY))
        await _write(session, staging, builder.take_changed())
        await session.commit()
    async with AsyncSession(engine) as session:
        # EXCLUSIVE blocks the live consumers' writes but not readers (checks and admissions go on).
        await session.execute(text(_LOCK_LIVE))
        await reader.read_until_last()
        await _write(session, staging, builder.take_changed())
        await session.execute(delete(connection_mirror))
        columns = [c.name for c in connection_mirror.columns]
        await session.execute(
            insert(connection_mirror).from_select(columns, select(*(staging.c[name] for name in columns)))
        )
        await session.execute(text(_DROP_STAGING))
        await session.commit()
    log.info(
        "mirror rebuilt",
        extra={"messages": reader.messages, "malformed": reader.malformed, "rows": len(builder.records)},
    )
    return RebuildResult(messages=reader.messages, malformed=reader.malformed, rows=len(builder.records))
