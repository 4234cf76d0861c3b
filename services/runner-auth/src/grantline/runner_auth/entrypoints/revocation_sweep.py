"""The background task that closes revoked runners' connections (service/revocations.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from grantline.runner_auth.adapters.outcome_consumers import OutcomeConsumers
from grantline.runner_auth.service.revocations import Kicker, enforce_revocations
from grantline.runtime.service_runtime import ServiceRuntime


def revocation_sweep(
    runtime: ServiceRuntime, kicker: Callable[[], Kicker | None], *, interval_seconds: float
) -> Callable[[], Awaitable[None]]:
    """A loop that runs one sweep (one transaction) every ``interval_seconds``, until cancelled."""

    async def loop() -> None:
        while True:
            current = kicker()
            if current is not None:
                async with runtime.driver_transaction(wake_relay=False) as conn:
                    await enforce_revocations(conn, current, OutcomeConsumers(runtime.nats))
            await asyncio.sleep(interval_seconds)

    return loop
