"""Structured JSON logs with a redaction filter on every record."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from grantline.runtime.secrets import redact, redact_mapping

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged as a field.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and extra fields before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS:
                continue
            if isinstance(value, str):
                setattr(record, key, redact(value))
            elif isinstance(value, dict):
                setattr(record, key, redact_mapping(value))
        if record.exc_info and record.exc_info[1] is not None:
            # Exception text is rendered by the formatter; pre-render and redact it here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace and span id when a span is active."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str)


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger through one redacting handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-message access logs cost more than the work they describe on the hot paths.
    for noisy in ("uvicorn.access", "httpx", "httpcore", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
