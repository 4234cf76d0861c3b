"""Each runner identity's durable consumer on RUNNER_OUTCOMES: declared when the runner connects, deleted
when it is revoked (docs/runners.md, "Durability").

runner-auth's NATS user may create and delete consumers on that stream only, by name
(deploy/nats/permissions.yaml); it never pulls from them. The runner may look its own up, pull and
acknowledge (``grantline.contract.runner_identities.runner_consumer_grants``).
"""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM, runner_outcome_subjects
from grantline.runner_auth.domain.runner import Runner

log = logging.getLogger(__name__)

# A consumer nobody has pulled from for this long is removed by the server (a runner gone for good);
# the next connection of the runner declares it again. Longer than the stream keeps messages.
INACTIVE_THRESHOLD_SECONDS = 2 * 24 * 3600.0
# An outcome not acknowledged within this is delivered again (the runner died holding it).
ACK_WAIT_SECONDS = 30.0


def consumer_config(runner: Runner) -> ConsumerConfig:
    """The consumer of ``runner``: its tenants' outcomes from the moment it is declared."""
    return ConsumerConfig(
        name=runner.runner_id,
        durable_name=runner.runner_id,
        description="outcomes for runner identity " + runner.runner_id,
        filter_subjects=list(runner_outcome_subjects(runner.tenants)),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.NEW,
        ack_wait=ACK_WAIT_SECONDS,
        max_deliver=-1,
        inactive_threshold=INACTIVE_THRESHOLD_SECONDS,
    )


class OutcomeConsumers:
    """Declares and deletes runners' consumers with runner-auth's own connection."""

    def __init__(self, nc: Client, *, timeout: float = 2.0) -> None:
        self._nc = nc
        self._timeout = timeout

    async def declare(self, runner: Runner) -> None:
        """Create the runner's consumer, or leave the existing one (and its position) as it is."""
        js = self._nc.jetstream(timeout=self._timeout)
        await js.add_consumer(RUNNER_OUTCOMES_STREAM, consumer_config(runner))

    async def delete(self, runner_id: str) -> None:
        """Delete the runner's consumer (done when it does not exist)."""
        js = self._nc.jetstream(timeout=self._timeout)
        try:
            await js.delete_consumer(RUNNER_OUTCOMES_STREAM, runner_id)
        except NotFoundError:
            return
