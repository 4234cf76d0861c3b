"""OpenTelemetry tracing: one provider per process, W3C trace context carried over HTTP and NATS.

Spans are exported through ``RedactingExporter`` so that an attribute or event that holds a secret by
mistake is masked before it leaves the process.
"""

import functools
from collections.abc import Mapping, MutableMapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.util.types import Attributes

from grantline.common.secrets import REDACTED, is_secret_key, redact

_provider: TracerProvider | None = None


def _redact_attributes(attributes: Attributes) -> dict[str, object]:
    clean: dict[str, object] = {}
    for key, value in (attributes or {}).items():
        if is_secret_key(key.rsplit(".", 1)[-1]) and not key.endswith(("_id", ".id", "_count")):
            clean[key] = REDACTED
        elif isinstance(value, str):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose attributes and event attributes are redacted."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redact_attributes(span.attributes),  # type: ignore[arg-type]
        events=[
            Event(e.name, _redact_attributes(e.attributes), e.timestamp)  # type: ignore[arg-type]
            for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Wraps an exporter and redacts every span before handing it on."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([redacted_span(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def configure_tracing(
    service: str,
    *,
    otlp_endpoint: str | None = None,
    console: bool = False,
    extra_exporters: Sequence[SpanExporter] = (),
) -> TracerProvider:
    """Install the process-wide tracer provider (once; later calls add exporters to it)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(_provider)
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            otlp = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
            _provider.add_span_processor(BatchSpanProcessor(RedactingExporter(otlp)))
        if console:
            _provider.add_span_processor(BatchSpanProcessor(RedactingExporter(ConsoleSpanExporter())))
    for exporter in extra_exporters:
        _provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(exporter)))
    return _provider


@functools.cache
def tracer(name: str = "grantline") -> trace.Tracer:
    """The tracer services create their spans with."""
    # Cached: the SDK builds a new Tracer per call (~15 us), and the outbox relay asks once per event.
    # Safe before configure_tracing too: the API hands out a proxy that follows the provider once set.
    return trace.get_tracer(name)


def inject_context(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (``traceparent``) into message or HTTP headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """Read a trace context from message or HTTP headers."""
    return propagate.extract(dict(headers or {}))
