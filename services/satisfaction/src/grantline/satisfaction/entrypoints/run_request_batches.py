"""``runs.requested`` on a raw JetStream pull consumer, decided in batches (the admission hot path).

FastStream's per-message machinery costs more than the decision itself, and one transaction per run
costs more than one per batch: here each loop fetches what is waiting (up to ``batch_size``), decides it
in one transaction, then acknowledges. A failed batch is negatively acknowledged and redelivered; the
inbox makes the redelivery of an already committed run a no-op. Replicas share the durable consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from grantline.common.contract.envelope import Event
from grantline.common.contract.registry import decode_event
from grantline.common.contract.runs import RunRequested
from grantline.common.nats.consuming import retry_delay, validation_summary
from grantline.common.nats.streams import RUNS
from grantline.common.runtime import ServiceRuntime
from grantline.common.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.satisfaction.adapters.tables import outbox
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.run_batches import admit_or_hold_batch

log = logging.getLogger(__name__)

RUNS_REQUESTED_DURABLE = "satisfaction-runs-requested"
# After the first message of a batch, how long to wait for more: short, so a lone run is not delayed.
_TOP_UP_SECONDS = 0.002


def _decode(data: bytes) -> Event:
    # The subject carries runs.requested: parse that model directly (cheaper than the union), and only
    # fall back to the union for anything else, so other events are still told apart from garbage.
    try:
        return RunRequested.model_validate_json(data)
    except ValidationError:
        return decode_event(data)


class RunRequestBatches:
    """Background loops that fetch, decide and acknowledge batches of ``runs.requested``."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        catalogue: CatalogueCache,
        memo: ReportMemo,
        *,
        loops: int,
        batch_size: int,
    ) -> None:
        self._runtime = runtime
        self._catalogue = catalogue
        self._loops = loops
        self._batch_size = batch_size
        self._memo = memo
        self._handled = {
            outcome: MESSAGES_HANDLED.labels(runtime.name, RunRequested.SUBJECT, outcome)
            for outcome in ("ok", "rejected", "retried")
        }
        self._seconds = MESSAGE_SECONDS.labels(runtime.name, RunRequested.SUBJECT)

    async def run(self) -> None:
        """Run the fetch loops until cancelled."""
        js = self._runtime.nats.jetstream()
        subscription = await js.pull_subscribe(
            RunRequested.SUBJECT,
            durable=RUNS_REQUESTED_DURABLE,
            stream=RUNS.name,
            config=ConsumerConfig(
                durable_name=RUNS_REQUESTED_DURABLE,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30.0,
                max_deliver=-1,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=RunRequested.SUBJECT,
            ),
        )
        try:
            await asyncio.gather(*(self._loop(subscription) for _ in range(self._loops)))
        finally:
            await subscription.unsubscribe()

    async def _loop(self, subscription: object) -> None:
        fetch = subscription.fetch  # type: ignore[attr-defined]
        while True:
            try:
                messages: list[Msg] = await fetch(1, timeout=1.0)
            except TimeoutError:
                continue
            if self._batch_size > 1:
                with contextlib.suppress(TimeoutError):
                    messages += await fetch(self._batch_size - 1, timeout=_TOP_UP_SECONDS)
            await self._handle(messages)

    async def _handle(self, messages: list[Msg]) -> None:
        started = time.perf_counter()
        events: list[RunRequested] = []
        accepted: list[Msg] = []
        for msg in messages:
            try:
                event = _decode(msg.data)
            except ValidationError as error:
                log.warning(
                    "rejected malformed message",
                    extra={"subject": msg.subject, "reason": validation_summary(error)},
                )
                await msg.term()
                self._handled["rejected"].inc()
                continue
            if isinstance(event, RunRequested):
                events.append(event)
            accepted.append(msg)
        try:
            async with self._runtime.transaction() as session:
                await admit_or_hold_batch(
                    session, outbox, self._catalogue.view, events, RUNS_REQUESTED_DURABLE, self._memo
                )
        except Exception:
            log.exception("run batch failed; it will be redelivered", extra={"size": len(accepted)})
            for msg in accepted:
                await msg.nak(delay=retry_delay(msg.metadata.num_delivered))
            self._handled["retried"].inc(len(accepted))
            return
        for msg in accepted:
            await msg.ack()
        self._handled["ok"].inc(len(accepted))
        self._seconds.observe(time.perf_counter() - started)
