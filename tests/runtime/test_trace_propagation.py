"""A trace started by an HTTP request continues through the outbox, the NATS publish and the handler."""

import httpx
import pytest
from delivery_harness import applied_rows, create_schemas, make_consumer, make_producer, running
from fixtures.waiting import wait_for_async
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from grantline.runtime.telemetry.tracing import configure_tracing


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing("tests", extra_exporters=[exporter])
    return exporter


async def test_http_request_is_parent_of_publish_and_handler(
    spans: InMemorySpanExporter, nats_url: str, database_url: str
) -> None:
    create_schemas(database_url)
    producer = make_producer(nats_url, database_url)
    consumer = make_consumer(nats_url, database_url)
    async with running(producer, consumer):
        spans.clear()
        transport = httpx.ASGITransport(app=producer.http_application())
        async with httpx.AsyncClient(transport=transport, base_url="http://producer") as client:
            response = await client.post("/emit", json={"connection_id": "conn-traced"})
        assert response.status_code == 202
        await wait_for_async(lambda: applied_rows(consumer), timeout=10)
        await wait_for_async(
            lambda: any(s.name == "connections.granted process" for s in spans.get_finished_spans()),
            timeout=5,
        )

    finished = {s.name: s for s in spans.get_finished_spans()}
    request_span = finished["POST /emit"]
    publish_span = finished["connections.granted publish"]
    process_span = finished["connections.granted process"]
    trace_id = request_span.context.trace_id
    assert publish_span.context.trace_id == trace_id
    assert process_span.context.trace_id == trace_id
    assert publish_span.parent is not None and publish_span.parent.span_id == request_span.context.span_id
    assert process_span.parent is not None and process_span.parent.span_id == publish_span.context.span_id
