"""``runs.requested.<tenant>`` on a batched pull consumer (the admission hot path): a transaction a batch."""

from __future__ import annotations

from pydantic import ValidationError

from grantline.contract.envelope import Event
from grantline.contract.registry import decode_event
from grantline.contract.runs import RunRequested
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.nats.batched_consumer import BatchedConsumer, Received
from grantline.runtime.nats.consumers import SATISFACTION_RUNS_REQUESTED
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.held_links import LinkMinter
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.run_batches import admit_or_hold_batch
from grantline.satisfaction.service.run_grants import RunGrantIssuer

# After the first message of a batch, how long to wait for more: short, so a lone run or event
# is not delayed (admission latency matters more here than batch size).
TOP_UP_SECONDS = 0.002

RUNS_REQUESTED_DURABLE = SATISFACTION_RUNS_REQUESTED.durable


def decode_run_request(data: bytes) -> Event:
    """Parse ``runs.requested`` directly (cheaper than the union); anything else through the union."""
    try:
        return RunRequested.model_validate_json(data)
    except ValidationError:
        return decode_event(data)  # another event is told apart from garbage, as elsewhere


def run_request_consumer(
    runtime: ServiceRuntime,
    catalogue: CatalogueCache,
    memo: ReportMemo,
    grants: RunGrantIssuer,
    *,
    loops: int,
    batch_size: int,
    links: LinkMinter | None = None,
) -> BatchedConsumer:
    """The consumer that admits or holds requested runs, a batch per transaction."""

    async def decide(conn: DriverConnection, batch: list[Received]) -> None:
        events = [received.event for received in batch if isinstance(received.event, RunRequested)]
        await admit_or_hold_batch(conn, catalogue, events, RUNS_REQUESTED_DURABLE, grants, memo, links)

    return BatchedConsumer(
        runtime,
        consumer=SATISFACTION_RUNS_REQUESTED,
        decode=decode_run_request,
        handle=decide,
        loops=loops,
        batch_size=batch_size,
        top_up_seconds=TOP_UP_SECONDS,
        # The admission hot path: on psycopg directly (see grantline.runtime.db.driver).
        unit_of_work=runtime.driver_transaction,
    )
