"""The AUDIT stream as the ledger reads it: a durable pull consumer, pulled ahead of use (raw nats-py).

One transaction per record would not keep up: the ledger needs a few hundred records per
transaction, so it pulls batches itself. It does not use nats-py's
`fetch`: that waits for each message with a task and a timeout of its own, which costs several times
what storing the record does. Instead one subscription receives every pull's messages into a buffer,
and a pull for the next batch is already open while the current one is being stored.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from grantline.runtime.nats.consumers import AUDIT_LEDGER
from grantline.runtime.nats.streams import AUDIT

log = logging.getLogger(__name__)

LEDGER_DURABLE = AUDIT_LEDGER.durable
LEDGER_SUBJECT = AUDIT_LEDGER.filter_subject
# A pull the server never answers (lost in a NATS restart) is given up this long after it expires.
_PULL_GRACE_SECONDS = 1.0
# Pulls ending without a message or status this many times in a row: the consumer may be gone.
_REBIND_AFTER_FAILURES = 3


@dataclass(frozen=True)
class ConsumerOptions:
    """How the ledger's durable consumer (declared as AUDIT_LEDGER, created by migrate) is pulled."""

    durable: str = LEDGER_DURABLE
    # How long an open pull waits for messages before the server ends it (and a new one is sent).
    pull_expires_seconds: float = 2.0
    # Pulls open at once: the next batch is on its way while the current one is stored.
    open_pulls: int = 2


class ConsumerMissing(RuntimeError):
    """The ledger's consumer does not exist: `grantline migrate` creates it, the service never does."""


@dataclass
class _Pull:
    reply: str
    remaining: int
    deadline: float
    delivered: int = field(default=0)


class LedgerPuller:
    """Keeps pulls open on the ledger's durable consumer and hands out what has arrived."""

    def __init__(self, nc: Client, options: ConsumerOptions, *, batch_size: int) -> None:
        self._nc = nc
        self._options = options
        self._batch_size = batch_size
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        # Open pulls, oldest first: the server fills them in that order.
        self._pulls: deque[_Pull] = deque()
        self._subscription: Subscription | None = None
        self._inbox = ""
        self._next_pull = 0
        self._failures = 0

    async def start(self) -> None:
        """Check the durable consumer exists (never create it) and subscribe to the pulls' inbox."""
        js = self._nc.jetstream()
        try:
            await js.consumer_info(AUDIT.name, self._options.durable)
        except NotFoundError:
            raise ConsumerMissing(AUDIT_LEDGER.missing_message()) from None
        self._inbox = self._nc.new_inbox()
        self._subscription = await self._nc.subscribe(f"{self._inbox}.*", cb=self._received)

    async def stop(self) -> None:
        """Unsubscribe; messages received and not handed out are redelivered after the ack wait."""
        subscription, self._subscription = self._subscription, None
        self._pulls.clear()
        self._buffer.clear()
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    @property
    def needs_rebind(self) -> bool:
        """Whether pulls keep going unanswered, so the consumer should be bound again from scratch."""
        return self._failures >= _REBIND_AFTER_FAILURES

    async def take(self, timeout: float) -> list[Msg]:
        """Up to one batch of the messages that have arrived; waits up to `timeout` for the first."""
        deadline = time.monotonic() + timeout
        while True:
            self._end_overdue_pulls()
            await self._open_pulls()
            if self._buffer:
                # Let the reader hand over what is already on the socket, for fuller batches.
                await asyncio.sleep(0)
                count = min(len(self._buffer), self._batch_size)
                return [self._buffer.popleft() for _ in range(count)]
            wait = min(deadline, *(pull.deadline for pull in self._pulls)) - time.monotonic()
            if wait <= 0 and time.monotonic() >= deadline:
                return []
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=max(wait, 0.001))

    async def _open_pulls(self) -> None:
        wanted = self._options.open_pulls * self._batch_size
        in_hand = len(self._buffer) + sum(pull.remaining for pull in self._pulls)
        while len(self._pulls) < self._options.open_pulls and in_hand < wanted:
            self._next_pull += 1
            reply = f"{self._inbox}.{self._next_pull}"
            expires = self._options.pull_expires_seconds
            request = {"batch": self._batch_size, "expires": int(expires * 1e9)}
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{AUDIT.name}.{self._options.durable}",
                json.dumps(request).encode(),
                reply=reply,
            )
            deadline = time.monotonic() + expires + _PULL_GRACE_SECONDS
            self._pulls.append(_Pull(reply, self._batch_size, deadline))
            in_hand += self._batch_size

    def _end_overdue_pulls(self) -> None:
        now = time.monotonic()
        while self._pulls and self._pulls[0].deadline <= now:
            pull = self._pulls.popleft()
            self._failures = self._failures + 1 if pull.delivered == 0 else 0

    async def _received(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._buffer.append(msg)
            self._failures = 0
            if self._pulls:
                pull = self._pulls[0]
                pull.delivered += 1
                pull.remaining -= 1
                if pull.remaining <= 0:
                    self._pulls.popleft()
        elif status != "100":
            # The pull this status answers is over: expired (408), refused (409) or unanswerable (503).
            for pull in list(self._pulls):
                if pull.reply == msg.subject:
                    self._pulls.remove(pull)
                    break
            if status in ("404", "408"):
                self._failures = 0  # the consumer answered: it is there, merely idle
            else:
                self._failures += 1
                log.warning("audit stream pull refused", extra={"status": status})
        self._arrived.set()


def num_delivered(msg: Msg) -> int:
    """How many times JetStream has delivered `msg` (1 on first delivery)."""
    reply = msg.reply or ""
    tokens = reply.split(".")
    # "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>", read
    # directly: nats-py's full metadata parse costs more than storing the record.
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[4])
    return int(msg.metadata.num_delivered)
