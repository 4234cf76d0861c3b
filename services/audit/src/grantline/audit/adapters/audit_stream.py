"""The AUDIT stream as the ledger reads it: a durable pull consumer fetched in batches (raw nats-py).

FastStream's one-message-per-handler model would mean one transaction per record; the ledger needs a
few hundred records per transaction to keep up, so it fetches batches itself.
"""

from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from grantline.common.nats.streams import AUDIT

LEDGER_DURABLE = "audit-ledger"
LEDGER_SUBJECT = AUDIT.subjects[0]


@dataclass(frozen=True)
class ConsumerOptions:
    """How the ledger's durable consumer is configured."""

    durable: str = LEDGER_DURABLE
    ack_wait_seconds: float = 60.0
    # Enough for a few batches in flight; JetStream stops delivering beyond it until acks arrive.
    max_ack_pending: int = 20_000


async def ledger_subscription(nc: Client, options: ConsumerOptions) -> JetStreamContext.PullSubscription:
    """Bind to (or create) the ledger's durable pull consumer on the AUDIT stream."""
    js = nc.jetstream()
    config = ConsumerConfig(
        durable_name=options.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=options.ack_wait_seconds,
        max_deliver=-1,
        max_ack_pending=options.max_ack_pending,
        filter_subject=LEDGER_SUBJECT,
    )
    return await js.pull_subscribe(LEDGER_SUBJECT, durable=options.durable, stream=AUDIT.name, config=config)


def num_delivered(msg: Msg) -> int:
    """How many times JetStream has delivered `msg` (1 on first delivery)."""
    return int(msg.metadata.num_delivered)
