"""`runs.finished.<tenant>` into the vault's record of finished runs, so their grants stop resolving.

A batched durable consumer (replicas share it). Inserting a run twice changes nothing, so no inbox
is needed. A background task forgets runs that finished longer ago than any grant may live.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from grantline.contract.registry import decode_event
from grantline.contract.runs import RunFinished
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import VAULT_RUNS_FINISHED
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.vault.adapters.finished_run_store import add_finished, forget_finished_before

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 600.0


def finished_runs_consumer(runtime: ServiceRuntime, *, batch_size: int = 100) -> BatchedConsumer:
    """The consumer that records finished runs."""

    async def record(conn: DriverConnection, batch: list[Received]) -> None:
        runs = {
            (received.event.tenant_id, received.event.run_id)
            for received in batch
            if isinstance(received.event, RunFinished)
        }
        await add_finished(conn, sorted(runs))

    return BatchedConsumer(
        runtime,
        consumer=VAULT_RUNS_FINISHED,
        decode=decode_event,
        handle=record,
        unit_of_work=runtime.driver_transaction,
        loops=1,
        batch_size=batch_size,
    )


async def prune_finished_runs(runtime: ServiceRuntime, max_grant_lifetime_seconds: int) -> None:
    """Every few minutes, forget runs that finished before any grant still current was issued."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
        cutoff = datetime.now(UTC) - timedelta(seconds=max_grant_lifetime_seconds + 60)
        try:
            async with runtime.single_statement(wake_relay=False) as conn:
                forgotten = await forget_finished_before(conn, cutoff)
        except Exception as error:  # Postgres restarting: try again next round
            log.warning("finished runs not pruned", extra={"error": type(error).__name__})
        else:
            if forgotten:
                log.info("finished runs forgotten", extra={"count": forgotten})
