"""Resolve audit records, buffered in memory and written to the outbox in one statement per flush.

A resolve must not pay for a transaction of its own. Records wait here at most one flush interval
(or until a batch fills) and are then written together, with the connections' `last_used_at`, by one
statement on the buffer's own psycopg connection (a data-modifying CTE: atomic, one round trip); the
outbox relay publishes them. While Postgres is down the buffer keeps them (bounded; the oldest are
dropped past the bound, logged and counted). What is lost on a crash is at most one flush interval of
resolve records of that replica; shutdown flushes.

The event JSON is built here rather than through the pydantic model: at thousands of resolves per
second, model construction and serialisation were a tenth of the vault's CPU. `resolve_record_json`
produces what `encode_message(AuditRecord(...))` would (a test decodes and compares); callers keep
the model's limits (see `fits_audit_record`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client import Counter

from grantline.contract.audit import AuditAction, audit_record_json
from grantline.runtime.record_buffer import RecordBuffer
from grantline.runtime.telemetry.tracing import inject_context

log = logging.getLogger(__name__)

AUDIT_DROPPED = Counter(
    "grantline_vault_resolve_audit_dropped_total", "Resolve audit records dropped (buffer overflow)."
)

# tenant, connection_id, provider, user_id, app_id, run_id, tool, outcome, detail, occurred_at
PendingRecord = tuple[
    str, str | None, str, str, str | None, str | None, str | None, str, dict[str, Any], datetime
]

ACTION: str = AuditAction.TOKEN_RESOLVED
SUBJECT = f"audit.{ACTION}"
_MAX_TENANT = 128  # Event.tenant_id
_MAX_ACTOR = 200  # AuditRecord.actor, "user:<user_id>"


def fits_audit_record(tenant_id: str, user_id: str) -> bool:
    """Whether a resolve by this tenant and user can be recorded (the audit record's length limits)."""
    return 0 < len(tenant_id) <= _MAX_TENANT and 0 < len(user_id) <= _MAX_ACTOR - len("user:")


def resolve_record_json(event_id: uuid.UUID, item: PendingRecord) -> bytes:
    """The `audit.token.resolved` event of one buffered record, as it travels on the bus."""
    tenant, connection_id, provider, user_id, app_id, run_id, tool, outcome, detail, occurred_at = item
    return audit_record_json(
        event_id=event_id,
        occurred_at=occurred_at,
        tenant_id=tenant,
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


# One statement: data-modifying CTEs run to completion even when unreferenced, and a single
# statement is atomic under autocommit, so the records and last_used_at commit together.
_FLUSH = """
WITH written AS (
    INSERT INTO {outbox} (event_id, subject, payload, headers)
    SELECT r.event_id, %(subject)s, r.payload, %(headers)s::jsonb
      FROM unnest(%(ids)b::uuid[], %(payloads)b::bytea[]) WITH ORDINALITY AS r(event_id, payload, n)
     ORDER BY r.n
)
UPDATE {connections} SET last_used_at = now() WHERE id = ANY(%(used)s::text[])
"""


class AuditBuffer(RecordBuffer[PendingRecord]):
    """Collects resolve audit records and flushes them in batches."""

    def __init__(
        self,
        conninfo: str,
        *,
        outbox: str = "vault.outbox",
        connections: str = "vault.connections",
        interval_seconds: float,
        max_records: int,
        max_buffered: int = 200_000,
        on_flushed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            name="resolve audit",
            interval_seconds=interval_seconds,
            max_records=max_records,
            max_buffered=max_buffered,
            dropped=AUDIT_DROPPED,
        )
        self._conninfo = conninfo
        self._statement = _FLUSH.format(outbox=outbox, connections=connections)
        self._on_flushed = on_flushed
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def _hand_on(self, batch: list[PendingRecord]) -> list[PendingRecord]:
        await self._write(batch)
        return []

    def _flushed(self) -> None:
        if self._on_flushed is not None:
            self._on_flushed()

    async def close(self) -> None:
        """Close the buffer's connection (flush first)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def _write(self, batch: list[PendingRecord]) -> None:
        ids = [uuid.uuid4() for _ in batch]
        params = {
            "subject": SUBJECT,
            # The flush runs outside any request's span; one context for the batch is what there is.
            "headers": json.dumps(inject_context({})),
            "ids": ids,
            "payloads": [resolve_record_json(i, item) for i, item in zip(ids, batch, strict=True)],
            "used": sorted({item[1] for item in batch if item[1] is not None and item[7] == "success"}),
        }
        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="vault-audit", connect_timeout=5
                )
            await self._connection.execute(self._statement, params, prepare=True)
        except (psycopg.Error, OSError):
            await self.close()  # reconnect on the next attempt
            raise
