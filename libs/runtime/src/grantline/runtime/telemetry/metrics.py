"""Prometheus metrics with the same names in every service (label ``service`` tells them apart)."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

MESSAGES_HANDLED = Counter(
    "grantline_messages_handled_total",
    "Messages handled by a service, by subject and outcome (ok, rejected, retried, duplicate).",
    ["service", "subject", "outcome"],
)
MESSAGE_SECONDS = Histogram(
    "grantline_message_handle_seconds",
    "Time spent handling one message.",
    ["service", "subject"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PENDING = Gauge("grantline_outbox_pending", "Events waiting in the outbox.", ["service"])
OUTBOX_PUBLISHED = Counter("grantline_outbox_published_total", "Events published by the relay.", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "grantline_outbox_publish_failures_total", "Relay publish attempts that failed.", ["service"]
)
HTTP_REQUESTS = Counter(
    "grantline_http_requests_total", "HTTP requests served.", ["service", "route", "status"]
)
HTTP_SECONDS = Histogram("grantline_http_request_seconds", "HTTP request latency.", ["service", "route"])
DEPENDENCY_UP = Gauge(
    "grantline_dependency_up", "1 when a dependency (nats, postgres) is reachable.", ["service", "dependency"]
)


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus exposition of this process's metrics and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
