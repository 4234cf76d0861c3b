"""OpenTelemetry tracing: one provider per process, W3C trace context carried over HTTP and NATS.

When spans are exported (an OTLP endpoint, the console, a test's exporter) the SDK records them
(``span_export``, imported only then). Otherwise a correlation-only tracer gives every span a trace and
span id without recording it, so log lines still carry ``trace_id`` and messages still carry
``traceparent`` from one service to the next, without loading the SDK.
"""

import functools
import random
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

_configured = False


class _CorrelationTracer(trace.NoOpTracer):
    """Records nothing, but starts a trace where none is current and gives each span its own id."""

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        # Sampled, as the SDK's default sampler marks a new trace: a downstream process that does
        # export spans records its part of the trace, as it would under a recording parent.
        trace_id = parent.trace_id if parent.is_valid else random.getrandbits(128) or 1
        flags = parent.trace_flags if parent.is_valid else trace.TraceFlags(trace.TraceFlags.SAMPLED)
        span = trace.SpanContext(trace_id, random.getrandbits(64) or 1, is_remote=False, trace_flags=flags)
        return trace.NonRecordingSpan(span)


class _CorrelationTracerProvider(trace.NoOpTracerProvider):
    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _CorrelationTracer()


def configure_tracing(
    service: str,
    *,
    otlp_endpoint: str | None = None,
    console: bool = False,
    extra_exporters: Sequence["SpanExporter"] = (),
) -> None:
    """Install the process-wide tracer provider: recording if spans go anywhere, correlation-only if not."""
    global _configured
    if otlp_endpoint or console or extra_exporters:
        from grantline.runtime.telemetry.span_export import install_exporters

        install_exporters(
            service, otlp_endpoint=otlp_endpoint, console=console, extra_exporters=extra_exporters
        )
    elif not _configured:
        trace.set_tracer_provider(_CorrelationTracerProvider())
    _configured = True


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
