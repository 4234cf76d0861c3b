"""Audit records of proxied calls, buffered in memory and published to the AUDIT stream in batches.

The proxy has no database, so there is no outbox: records wait here (at most one flush interval, or
until a batch fills) and are published with JetStream acknowledgements, the record's id as
`Nats-Msg-Id` so a publish repeated after a lost ack is stored once. A batch that is not
acknowledged stays buffered and is published again (bounded; past the bound the oldest are dropped,
logged and counted). Shutdown flushes. What a crash loses is at most one interval of this replica's
records, as with the vault's resolve records.

The JSON is built here rather than through the pydantic model (thousands of calls a second); a test
decodes it with ``AuditRecord`` and compares.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from prometheus_client import Counter

from grantline.contract.audit import AuditAction, audit_record_json
from grantline.runtime.record_buffer import RecordBuffer

log = logging.getLogger(__name__)

AUDIT_DROPPED = Counter(
    "grantline_proxy_audit_dropped_total", "Proxy audit records dropped (buffer overflow)."
)
ACTION: str = AuditAction.PROXY_CALL
SUBJECT = f"audit.{ACTION}"


def call_record_json(
    *,
    event_id: uuid.UUID,
    occurred_at: datetime,
    tenant_id: str,
    user_id: str,
    app_id: str,
    run_id: str,
    tool: str | None,
    provider: str,
    connection_id: str | None,
    outcome: str,
    detail: dict[str, Any],
) -> bytes:
    """The `audit.proxy.call` event of one call, as it travels on the bus."""
    return audit_record_json(
        event_id=event_id,
        occurred_at=occurred_at,
        tenant_id=tenant_id,
        action=ACTION,
        user_id=user_id,
        provider=provider,
        connection_id=connection_id,
        app_id=app_id,
        run_id=run_id,
        tool=tool,
        outcome=outcome,
        detail=detail,
    )


class AuditPublisher(RecordBuffer[tuple[str, bytes]]):
    """Collects call records and publishes them in acknowledged batches."""

    def __init__(
        self, nats: Callable[[], Client], *, interval_seconds: float, max_records: int, max_buffered: int
    ) -> None:
        super().__init__(
            name="proxy audit",
            interval_seconds=interval_seconds,
            max_records=max_records,
            max_buffered=max_buffered,
            dropped=AUDIT_DROPPED,
        )
        self._nats = nats
        self._js: JetStreamContext | None = None

    def add_call(self, event_id: uuid.UUID, payload: bytes) -> None:
        """Queue one call record (no I/O)."""
        self.add((str(event_id), payload))

    async def _hand_on(self, batch: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        if self._js is None:
            # One context for the connection's life: it subscribes once for every acknowledgement.
            self._js = self._nats().jetstream(timeout=5.0)
        js = self._js
        # Published without waiting for each acknowledgement, then all acknowledgements awaited.
        futures = [
            await js.publish_async(SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
            for msg_id, payload in batch
        ]
        done, _pending = await asyncio.wait(futures, timeout=5.0)
        failed = [
            item
            for item, future in zip(batch, futures, strict=True)
            if future not in done or future.cancelled() or future.exception() is not None
        ]
        for future in futures:
            if not future.done():
                future.cancel()
        return failed
