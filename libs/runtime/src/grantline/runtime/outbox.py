"""The transactional outbox: a state change and its event commit together, a relay publishes later.

Each service has an ``outbox`` table in its own schema. This module declares it (for the service's
tables and migrations) and writes events in a SQLAlchemy session's transaction (``add_event``); the
relay, and writing on a bare psycopg connection, are in ``grantline.runtime.outbox_relay``, which
does not load SQLAlchemy.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.contract.envelope import Event
from grantline.runtime.outbox_relay import outbox_row


def outbox_columns() -> list[Column[Any]]:
    """The outbox's columns (fresh objects each call: used by the table and by each service's migration)."""
    return [
        Column("position", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text, nullable=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """Declare the outbox table in ``metadata``'s schema (call once per service metadata)."""
    return Table("outbox", metadata, *outbox_columns())


async def add_event(session: AsyncSession, outbox: Table, event: Event) -> None:
    """Write ``event`` to the outbox in the session's transaction (it commits with the state change)."""
    await session.execute(insert(outbox).values(**outbox_row(event)))


async def add_events(session: AsyncSession, outbox: Table, events: Sequence[Event]) -> None:
    """Write several events in one statement, in order."""
    if events:
        await session.execute(insert(outbox), [outbox_row(e) for e in events])


__all__ = ["add_event", "add_events", "outbox_columns", "outbox_row", "outbox_table"]
