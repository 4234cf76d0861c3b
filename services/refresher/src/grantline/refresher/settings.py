"""Settings of the refresher (environment variables with the ``GRANTLINE_`` prefix)."""

from pydantic import Field

from grantline.runtime.settings import ServiceSettings


class RefresherSettings(ServiceSettings):
    service_name: str = "refresher"
    http_port: int = 8082

    # Refresh this long before expiry (per provider overrides: GRANTLINE_REFRESH_PROVIDER_MARGINS as
    # JSON, e.g. {"slack": 900}); capped at half a token's lifetime so short tokens do not loop.
    refresh_margin_seconds: float = Field(default=300.0, ge=0)
    refresh_provider_margins: dict[str, float] = {}
    # Up to this much earlier again, spread per connection, so tokens issued together spread out.
    refresh_jitter_seconds: float = Field(default=120.0, ge=0)

    # Claiming: rows per claim, refreshes in flight per process and per provider, lease length.
    refresh_batch_size: int = Field(default=100, ge=1, le=5000)
    refresh_max_in_flight: int = Field(default=200, ge=1)
    refresh_provider_concurrency: int = Field(default=50, ge=1)
    refresh_lease_seconds: float = Field(default=60.0, gt=0)
    refresh_poll_seconds: float = Field(default=0.5, gt=0)
    vault_timeout_seconds: float = Field(default=10.0, gt=0)

    # Transient failures: exponential backoff with jitter, from base up to max.
    refresh_retry_base_seconds: float = Field(default=2.0, gt=0)
    refresh_retry_max_seconds: float = Field(default=300.0, gt=0)
    # Circuit breaker per provider (per process): open after this many consecutive transient failures.
    refresh_breaker_failures: int = Field(default=10, ge=1)
    refresh_breaker_open_seconds: float = Field(default=15.0, gt=0)

    # Known hard expiries (refresh token lifetimes) produce connections.expiring inside this window.
    expiry_warning_days: float = Field(default=7.0, ge=0)
    expiry_scan_seconds: float = Field(default=30.0, gt=0)

    # Concurrent handlers of the CONNECTIONS consumer (ordering is kept by per-row event stamps).
    schedule_consumer_workers: int = Field(default=4, ge=1, le=64)
