"""With no span exporter configured, a service loads no OpenTelemetry SDK yet keeps trace correlation."""

import json
import subprocess
import sys
import textwrap

# Run in a fresh interpreter: the test session itself has the SDK loaded by other tests.
_PROBE = textwrap.dedent(
    """
    import json, logging, sys
    from grantline.runtime.telemetry.logging import JsonFormatter
    from grantline.runtime.telemetry.tracing import configure_tracing, extract_context, inject_context, tracer

    configure_tracing("probe")
    with tracer().start_as_current_span("outer") as outer:
        with tracer().start_as_current_span("inner") as inner:
            inner.set_attribute("access_token", "canary-token-value")  # a mistake a handler could make
            inner.add_event("refreshed", {"refresh_token": "canary-token-value"})
            headers = inject_context({})
            record = logging.LogRecord("probe", logging.INFO, "probe.py", 1, "hello", None, None)
            line = json.loads(JsonFormatter("probe").format(record))
    with tracer().start_as_current_span("next", context=extract_context(headers)) as downstream:
        pass
    print(json.dumps({
        "sdk_loaded": any(name.startswith("opentelemetry.sdk") for name in sys.modules),
        "outer": [outer.get_span_context().trace_id, outer.get_span_context().span_id],
        "inner": [inner.get_span_context().trace_id, inner.get_span_context().span_id],
        "downstream": [downstream.get_span_context().trace_id, downstream.get_span_context().span_id],
        "traceparent": headers.get("traceparent", ""),
        "log_trace_id": line.get("trace_id", ""),
        "recording": inner.is_recording(),
        "kept_anywhere": "canary-token-value" in repr(vars(inner)),
    }))
    """
)


def test_no_sdk_is_loaded_and_ids_still_flow_to_headers_and_logs() -> None:

    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(result.stdout)
    assert probe["sdk_loaded"] is False
    assert probe["recording"] is False
    assert probe["kept_anywhere"] is False  # nothing recorded, so no secret to export or leak
    outer_trace, outer_span = probe["outer"]
    inner_trace, inner_span = probe["inner"]
    assert outer_trace != 0 and inner_trace == outer_trace
    assert inner_span not in (0, outer_span)
    trace_hex = format(outer_trace, "032x")
    assert probe["traceparent"] == f"00-{trace_hex}-{format(inner_span, '016x')}-01"
    assert probe["log_trace_id"] == trace_hex
    downstream_trace, downstream_span = probe["downstream"]
    assert downstream_trace == outer_trace and downstream_span != inner_span
