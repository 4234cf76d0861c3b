"""The OpenTelemetry SDK side of tracing: the recording provider and the redacting exporter.

Imported only when spans are exported somewhere (an OTLP endpoint, the console, a test's exporter):
the SDK and its exporters cost a service process about 4 MB that buys nothing when no span leaves it.
Spans are exported through ``RedactingExporter`` so that an attribute or event that holds a secret by
mistake is masked before it leaves the process.
"""

from collections.abc import Sequence

from opentelemetry import trace
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

from grantline.runtime.secrets import REDACTED, is_secret_key, redact

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


def recording_provider(service: str) -> TracerProvider:
    """The process-wide SDK tracer provider, installed on first call."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(_provider)
    return _provider


def install_exporters(
    service: str,
    *,
    otlp_endpoint: str | None,
    console: bool,
    extra_exporters: Sequence[SpanExporter],
) -> TracerProvider:
    """Export the process's spans, redacted, to each destination given."""
    provider = recording_provider(service)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(RedactingExporter(otlp)))
    if console:
        provider.add_span_processor(BatchSpanProcessor(RedactingExporter(ConsoleSpanExporter())))
    for exporter in extra_exporters:
        provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(exporter)))
    return provider
