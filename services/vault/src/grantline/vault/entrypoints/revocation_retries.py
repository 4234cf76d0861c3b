"""The loop that makes failed provider revocation calls again (vault.pending_revocations)."""

from __future__ import annotations

import asyncio
import logging

from grantline.vault.service.context import VaultContext
from grantline.vault.service.revocation import retry_due_revocations

log = logging.getLogger(__name__)


async def retry_revocations_forever(ctx: VaultContext) -> None:
    """Every `revoke_retry_interval_seconds`, take the due revocations (all replicas may run this)."""
    while True:
        await asyncio.sleep(ctx.settings.revoke_retry_interval_seconds)
        try:
            while await retry_due_revocations(ctx) > 0:
                pass
        except Exception as error:  # Postgres restarting: try again next round
            log.warning("provider revocations not retried", extra={"error": type(error).__name__})
