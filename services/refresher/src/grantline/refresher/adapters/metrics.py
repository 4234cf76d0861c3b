"""Prometheus metrics of the refresher, labelled per provider (served at /metrics with the rest)."""

from prometheus_client import Counter, Gauge, Histogram

REFRESH_DUE = Gauge(
    "grantline_refresh_due", "Scheduled refreshes that are due now and not yet claimed.", ["provider"]
)
REFRESH_CLAIMED = Counter(
    "grantline_refresh_claimed_total", "Due refreshes claimed by a worker.", ["provider"]
)
REFRESH_SUCCEEDED = Counter(
    "grantline_refresh_succeeded_total",
    "Refresh attempts the vault answered with a new expiry (outcome: refreshed, already_fresh).",
    ["provider", "outcome"],
)
REFRESH_FAILED = Counter(
    "grantline_refresh_failed_total",
    "Refresh attempts that failed, by reason (an error code, timeout, no_responders).",
    ["provider", "reason"],
)
REFRESH_DEFERRED = Counter(
    "grantline_refresh_deferred_total",
    "Claims given back without a call (circuit open, provider at its concurrency limit).",
    ["provider", "reason"],
)
REFRESH_LAG_SECONDS = Histogram(
    "grantline_refresh_lag_seconds",
    "Refresh time minus due time, for successful refreshes.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
EXPIRY_WARNINGS = Counter(
    "grantline_refresh_expiry_warnings_total", "connections.expiring events published.", ["provider"]
)
