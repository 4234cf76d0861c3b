"""`runs.connection_revoked.<tenant>` and `runs.finished.<tenant>`: refuse and close at once.

Every replica must hear every one of these (each holds its own open streams and cached tokens), so
they are plain NATS subscriptions fanned out to all replicas, not a durable consumer (which would
hand each message to one replica only). A message missed while disconnected is covered by the
vault, which refuses a finished run or a revoked connection at the next resolve: on reconnection
the proxy drops its cached tokens so that every next call asks it.
"""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from grantline.contract.envelope import tenant_of
from grantline.contract.runs import RunConnectionRevoked, RunFinished
from grantline.proxy.service.run_state import RunState

log = logging.getLogger(__name__)


class RunEvents:
    """Subscribes to the two subjects and applies their events to the run state."""

    def __init__(self, state: RunState) -> None:
        self._state = state
        self._subscriptions: list[Subscription] = []

    async def start(self, nc: Client) -> None:
        """Subscribe (every replica gets every event)."""
        self._subscriptions = [
            await nc.subscribe(f"{RunFinished.SUBJECT}.*", cb=self._finished),
            await nc.subscribe(f"{RunConnectionRevoked.SUBJECT}.*", cb=self._revoked),
        ]

    async def stop(self) -> None:
        """Unsubscribe."""
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions = []

    async def reconnected(self) -> None:
        """Events may have been missed: ask the vault again for every next call."""
        self._state.forget_all_tokens()

    async def _finished(self, msg: Msg) -> None:
        try:
            event = RunFinished.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed runs.finished", extra={"subject": msg.subject})
            return
        if event.tenant_id != tenant_of(msg.subject):
            return  # a tenant's event only counts on its own subject
        closed = self._state.run_finished((event.tenant_id, event.run_id))
        log.info("run finished; its calls are refused", extra={"run_id": event.run_id, "closed": closed})

    async def _revoked(self, msg: Msg) -> None:
        try:
            event = RunConnectionRevoked.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed runs.connection_revoked", extra={"subject": msg.subject})
            return
        if event.tenant_id != tenant_of(msg.subject):
            return
        closed = self._state.connection_revoked((event.tenant_id, event.run_id), event.connection_id)
        log.info(
            "connection revoked; its calls are refused",
            extra={"run_id": event.run_id, "connection_id": event.connection_id, "closed": closed},
        )
