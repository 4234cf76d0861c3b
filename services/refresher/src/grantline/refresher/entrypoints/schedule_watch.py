"""Background loops: publish due expiry warnings, and keep the "due" gauge current."""

import asyncio
import logging
from datetime import UTC, datetime

from grantline.refresher.adapters.metrics import EXPIRY_WARNINGS, REFRESH_DUE
from grantline.refresher.adapters.schedule_repository import due_counts
from grantline.refresher.service.expiry_warnings import publish_due_warnings
from grantline.runtime.outbox_relay import OutboxLocation
from grantline.runtime.service_runtime import BackgroundTask, ServiceRuntime

log = logging.getLogger(__name__)
WARNING_BATCH = 500
DUE_GAUGE_SECONDS = 15.0


def expiry_warning_loop(
    runtime: ServiceRuntime, outbox: OutboxLocation, *, every_seconds: float
) -> BackgroundTask:
    """A background task that publishes ``connections.expiring`` for warnings that fell due."""

    async def run() -> None:
        while True:
            while True:  # drain a backlog in batches before sleeping
                async with runtime.driver_transaction() as conn:
                    published = await publish_due_warnings(
                        conn, outbox, now=datetime.now(UTC), limit=WARNING_BATCH
                    )
                for warning in published:
                    EXPIRY_WARNINGS.labels(warning.provider).inc()
                if len(published) < WARNING_BATCH:
                    break
            await asyncio.sleep(every_seconds)

    return run


def due_gauge_loop(runtime: ServiceRuntime) -> BackgroundTask:
    """A background task that refreshes the per-provider count of due, unclaimed refreshes."""

    async def run() -> None:
        seen: set[str] = set()
        while True:
            async with runtime.single_statement(wake_relay=False) as conn:
                counts = await due_counts(conn, now=datetime.now(UTC))
            for provider in seen - counts.keys():
                REFRESH_DUE.labels(provider).set(0)
            for provider, count in counts.items():
                REFRESH_DUE.labels(provider).set(count)
            seen = set(counts)
            await asyncio.sleep(DUE_GAUGE_SECONDS)

    return run
