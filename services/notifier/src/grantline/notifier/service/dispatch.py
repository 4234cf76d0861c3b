"""Use case: attempt the deliveries that are due, and record each outcome (retry, success, failure).

Deliveries are leased in one short transaction, sent outside any transaction, and their outcomes
are recorded together in a second one. A process killed mid-send loses nothing: the lease runs out
and the delivery is attempted again, under the same ``webhook-id``, so the receiver can drop the
repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag

from grantline.notifier.adapters import repository
from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.adapters.webhook_sender import AttemptOutcome, WebhookSender, signed_headers
from grantline.notifier.domain.retries import next_attempt
from grantline.runtime.db.driver import DriverConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchPolicy:
    max_attempts: int
    retry_scale: float
    batch: int
    # Longer than one attempt can take, so a lease outlives the attempt it covers.
    lease: timedelta


async def dispatch_due(
    transaction: Callable[[], AbstractAsyncContextManager[DriverConnection]],
    sender: WebhookSender,
    sealer: SecretSealer,
    policy: DispatchPolicy,
) -> int:
    """Attempt every delivery due now (up to ``policy.batch``); returns how many were attempted."""
    now = datetime.now(UTC)
    async with transaction() as conn:
        due = await repository.claim_due(conn, now=now, lease=policy.lease, limit=policy.batch)
    outcomes = await asyncio.gather(*(_attempt(d, sender, sealer) for d in due))
    finished = datetime.now(UTC)
    async with transaction() as conn:
        for delivery, outcome in zip(due, outcomes, strict=True):
            retry_at = (
                None
                if outcome.succeeded
                else next_attempt(
                    delivery.attempts + 1,
                    finished,
                    max_attempts=policy.max_attempts,
                    base_seconds=policy.retry_scale,
                )
            )
            await repository.record_attempt(
                conn,
                delivery.delivery_id,
                succeeded=outcome.succeeded,
                status_code=outcome.status_code,
                error=outcome.error,
                now=finished,
                retry_at=retry_at,
            )
    return len(due)


async def _attempt(
    delivery: repository.DueDelivery, sender: WebhookSender, sealer: SecretSealer
) -> AttemptOutcome:
    try:
        secret = sealer.open(
            delivery.sealed_secret, endpoint_id=delivery.endpoint_id, tenant_id=delivery.tenant_id
        )
    except InvalidTag:
        # A row not sealed for this endpoint (moved, or a rotated key): never send it unsigned.
        log.error("endpoint secret does not open", extra={"endpoint_id": delivery.endpoint_id})
        return AttemptOutcome(False, None, "the endpoint's secret cannot be opened")
    headers = signed_headers(secret, delivery.delivery_id, datetime.now(UTC), delivery.body)
    return await sender.post(delivery.url, headers, delivery.body)
