"""`vault.resolve` on a raw nats-py queue subscription: the hot path skips FastStream.

FastStream's per-message machinery costs several times the handler itself; resolve is the one
subject where that matters. Each message gets its own task so that lookups from many messages
meet in one database batch. Replicas share the subject through the queue group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.common.contract.vault import SUBJECT_RESOLVE
from grantline.common.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.vault.service.resolve import ResolveService

log = logging.getLogger(__name__)
QUEUE = f"vault.{SUBJECT_RESOLVE}"
_INTERNAL = encode_message(ErrorReply.of(ErrorCode.INTERNAL, "internal error; see the vault log"))


class ResolveSubscription:
    """Serves `vault.resolve` until stopped."""

    def __init__(self, service: ResolveService, *, service_name: str = "vault") -> None:
        self._service = service
        self._name = service_name
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handled = {
            outcome: MESSAGES_HANDLED.labels(service_name, SUBJECT_RESOLVE, outcome)
            for outcome in ("ok", "error_reply", "rejected", "failed")
        }
        self._seconds = MESSAGE_SECONDS.labels(service_name, SUBJECT_RESOLVE)

    async def start(self, nc: Client) -> None:
        """Subscribe in the queue group."""
        self._nc = nc
        self._subscription = await nc.subscribe(
            SUBJECT_RESOLVE, queue=QUEUE, cb=self._on_message, pending_msgs_limit=1_000_000
        )

    async def stop(self) -> None:
        """Stop taking requests and finish those in hand."""
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # the connection may already be closed
                log.debug("resolve unsubscribe failed", exc_info=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_message(self, msg: Msg) -> None:
        task = asyncio.ensure_future(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: Msg) -> None:
        started = time.perf_counter()
        try:
            reply, outcome = await self._service.handle(msg.data)
        except Exception:
            log.exception("resolve failed", extra={"subject": SUBJECT_RESOLVE})
            reply, outcome = _INTERNAL, "failed"
        if msg.reply:
            try:
                await self._nc.publish(msg.reply, reply)
            except Exception as error:
                log.warning("resolve reply not sent", extra={"error": type(error).__name__})
        self._handled[outcome].inc()
        self._seconds.observe(time.perf_counter() - started)
