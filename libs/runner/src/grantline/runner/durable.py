"""Pulling the runner's own durable consumer of outcomes, so that none is lost across a reconnect.

runner-auth declares one consumer per runner identity on the stream RUNNER_OUTCOMES (named after the
runner id, filtered to its tenants' ``runs.admitted|held|connection_revoked``) when the runner
connects. Messages wait there while the runner is away; this pulls them, hands each to the client
and acknowledges it. The client hears the same events live on core subscriptions too and drops
what it has seen (by event id), so several processes sharing one identity (which then share the
consumer) lose nothing compared with core subscriptions alone.

The pull requests are sent here rather than by nats-py's ``fetch``, which sends follow-up pulls by
itself: sent while the connection is down, they wait in nats-py's buffer, and closing a connection
whose server is gone then fails writing them. This sends a pull only while connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import Error as JetStreamError

from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM

log = logging.getLogger(__name__)

BATCH = 100
# How long one pull waits at the server for messages; a pull lost in a NATS restart is renewed then.
PULL_SECONDS = 5.0
MAX_PAUSE_SECONDS = 2.0
STATUS = "Status"


class OutcomeFollower:
    """A background task pulling ``runner_id``'s consumer and passing each message body to ``deliver``."""

    def __init__(self, nc: Client, runner_id: str, deliver: Callable[[bytes], None]) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{RUNNER_OUTCOMES_STREAM}.{runner_id}"
        self._runner_id = runner_id
        self._deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, timeout: float) -> bool:
        """Start following; False (and live delivery only) when the consumer cannot be found."""
        try:
            await self._nc.jetstream(timeout=timeout).consumer_info(RUNNER_OUTCOMES_STREAM, self._runner_id)
        except (TimeoutError, JetStreamError, NatsTimeoutError) as error:
            log.warning(
                "no durable consumer of outcomes for this runner: outcomes published while it is "
                "disconnected are not delivered (is runner-auth up to date, and `grantline migrate` run?)",
                extra={"runner_id": self._runner_id, "error": type(error).__name__},
            )
            return False
        inbox = self._nc.new_inbox()
        subscription = await self._nc.subscribe(inbox)
        self._task = asyncio.create_task(self._follow(inbox, subscription), name="grantline-runner-outcomes")
        return True

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        # nats-py swallows a cancellation that lands while it flushes a publish, so cancel until the
        # task is done; the flag ends the loop in any case.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    async def _follow(self, inbox: str, subscription: Subscription) -> None:
        pause = 0.05
        try:
            while not self._stopping and not self._nc.is_closed:
                if not self._nc.is_connected:
                    await asyncio.sleep(pause)  # reconnecting: a backoff, not a wait for work
                    pause = min(pause * 2, MAX_PAUSE_SECONDS)
                    continue
                try:
                    ended_well = await self._pull(inbox, subscription)
                except Exception as error:  # the connection went away mid-pull, ...
                    log.debug("pull failed", extra={"error": type(error).__name__})
                    ended_well = False
                if ended_well:
                    pause = 0.05
                else:
                    await asyncio.sleep(pause)  # the consumer missing for a moment, ...
                    pause = min(pause * 2, MAX_PAUSE_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _pull(self, inbox: str, subscription: Subscription) -> bool:
        """One pull request: deliver and acknowledge what comes until it ends. False when it failed."""
        request = {"batch": BATCH, "expires": int(PULL_SECONDS * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=inbox)
        # The server ends a pull with a status (408 when it expires); a pull lost with the connection
        # ends at this deadline instead.
        deadline = time.monotonic() + PULL_SECONDS + 1.0
        received = 0
        while received < BATCH:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                message = await subscription.next_msg(timeout=left)
            except NatsTimeoutError:
                return False
            status = (message.headers or {}).get(STATUS)
            if status is not None:
                # 408: expired with fewer than BATCH; 404: nothing; 409: consumer deleted or changed.
                return status in ("408", "404")
            received += 1
            self._deliver(message.data)
            # Not acknowledged (the connection lost meanwhile): delivered again, and dropped as seen.
            with contextlib.suppress(Exception):
                await message.ack()
        return True
