"""Idempotent consumers: remember which events a consumer has applied, in the same transaction.

JetStream delivers at least once. A consumer calls ``first_delivery`` inside the transaction that
applies the event; a redelivered event finds its id already recorded and is skipped, so an event
seen twice changes nothing the second time.
"""

import uuid
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession


def processed_events_columns() -> list[Column[Any]]:
    """The columns of ``processed_events`` (fresh objects: for the table and the migrations)."""
    return [
        Column("consumer", String(100), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def processed_events_table(metadata: MetaData) -> Table:
    """Declare the ``processed_events`` table in ``metadata``'s schema."""
    return Table("processed_events", metadata, *processed_events_columns())


async def first_delivery(session: AsyncSession, table: Table, consumer: str, event_id: uuid.UUID) -> bool:
    """Record ``event_id`` for ``consumer``; False when it was already recorded (a redelivery)."""
    result = await session.execute(
        insert(table)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return result.first() is not None
