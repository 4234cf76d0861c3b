"""A background task that forgets expired flows, connect sessions, old webhook deliveries and old
rate-limit counters, and hands the tenant providers the gateway kept before over to the vault."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from grantline.auth_gateway.adapters import flow_store, rate_limit_store, webhook_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.tenant_provider_handover import hand_over_tenant_providers
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)

# Expired states are kept a day so a late callback is told "expired", not "unknown".
PENDING_GRACE = timedelta(days=1)
# Longer than every provider's replay window (Slack 5 minutes, RISC tokens a few days).
DELIVERY_RETENTION = timedelta(days=7)
# Longer than the longest rate-limit window a setting allows.
RATE_LIMIT_RETENTION = timedelta(hours=1)


def housekeeping(runtime: ServiceRuntime, bus: Bus, *, every_seconds: float = 300.0):  # type: ignore[no-untyped-def]
    """The task: one sweep every `every_seconds` (replicas may sweep concurrently; deletes are idempotent)."""

    async def sweep_forever() -> None:
        while True:
            now = datetime.now(UTC)
            try:
                async with runtime.driver_transaction(wake_relay=False) as conn:
                    await flow_store.delete_expired_pending(conn, before=now - PENDING_GRACE)
                    await flow_store.delete_expired_connect_sessions(conn, before=now)
                    await webhook_store.delete_old_deliveries(conn, before=now - DELIVERY_RETENTION)
                    await rate_limit_store.delete_expired(conn, before=now - RATE_LIMIT_RETENTION)
                await hand_over_tenant_providers(runtime, bus)
            except Exception as error:  # Postgres restarting: try again next round
                log.warning("housekeeping failed", extra={"error": type(error).__name__})
            await asyncio.sleep(every_seconds)

    return sweep_forever
