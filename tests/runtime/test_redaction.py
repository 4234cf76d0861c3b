"""Secrets never leave a process in a log line or a span attribute."""

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from grantline.runtime.secrets import REDACTED, redact, redact_mapping
from grantline.runtime.telemetry.logging import JsonFormatter, RedactingFilter
from grantline.runtime.telemetry.span_export import RedactingExporter

CANARY = "sbx_at_CANARYcanary0123456789abcdef"


def test_redact_masks_common_token_shapes() -> None:
    samples = [
        f"access_token={CANARY}&x=1",
        f'{{"refresh_token": "{CANARY}"}}',
        f"Authorization: Bearer {CANARY}",
        "xoxp-1234567890-abcdefghij",
        "ghp_abcdefghijklmnopqrstuvwxyz012345",
        "ya29.a0AfH6SMBxxxxxxxxxxxx",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl",
        f"plain {CANARY} in text",
    ]
    for sample in samples:
        cleaned = redact(sample)
        assert REDACTED in cleaned, sample
        assert CANARY not in cleaned


def test_redact_mapping_masks_secret_named_fields() -> None:
    cleaned = redact_mapping({"client_secret": "abc", "nested": {"api_key": "k"}, "connection_id": "c1"})
    assert cleaned == {"client_secret": REDACTED, "nested": {"api_key": REDACTED}, "connection_id": "c1"}


def test_log_records_are_redacted_in_message_args_extra_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s leaked", CANARY, extra={"detail": f"refresh_token={CANARY}"})
        try:
            raise ValueError(f"provider said access_token={CANARY}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert CANARY not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[0]["level"] == "warning" and REDACTED in lines[0]["msg"]
    assert "exc" in lines[1]


def test_span_attributes_are_redacted_on_export() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(memory)))
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("http.request.header.authorization", f"Bearer {CANARY}")
        span.set_attribute("grantline.access_token", CANARY)
        span.set_attribute("grantline.connection_id", "conn-1")
        span.add_event("note", {"detail": f"code={CANARY}"})
    (exported,) = memory.get_finished_spans()
    text = json.dumps(dict(exported.attributes or {})) + json.dumps(
        [dict(e.attributes or {}) for e in exported.events]
    )
    assert CANARY not in text
    assert exported.attributes["grantline.connection_id"] == "conn-1"
