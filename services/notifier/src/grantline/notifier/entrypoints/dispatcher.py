"""The delivery loop: attempt what is due, then look again after a short pause when nothing was."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.adapters.webhook_sender import WebhookSender
from grantline.notifier.service.dispatch import DispatchPolicy, dispatch_due
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)


def dispatcher(
    runtime: ServiceRuntime,
    sender: WebhookSender,
    sealer: SecretSealer,
    policy: DispatchPolicy,
    poll_seconds: float,
) -> Callable[[], Awaitable[None]]:
    """The background task."""

    async def run() -> None:
        while True:
            try:
                attempted = await dispatch_due(runtime.driver_transaction, sender, sealer, policy)
            except Exception:  # Postgres restarting: nothing is lost, the leases run out
                log.exception("dispatch failed; retrying")
                attempted = 0
            if attempted < policy.batch:
                await asyncio.sleep(poll_seconds)

    return run
