"""Settings of the notifier (environment variables with the ``GRANTLINE_`` prefix)."""

from typing import Any

from pydantic import Field, SecretStr, model_validator

from grantline.runtime.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8086

    # Base64 of 32 random bytes: seals endpoints' signing secrets at rest. Required in production.
    notifier_sealing_key: SecretStr | None = None
    # Endpoints on private, loopback or link-local addresses, and plain http: development only
    # (unset: allowed in development, refused otherwise).
    allow_private_webhook_urls: bool = False
    max_endpoints_per_tenant: int = Field(default=20, ge=1, le=1000)
    # Delivery: per-attempt timeout, attempts before a delivery fails for good, the retry schedule's
    # scale (1: 5 s, 30 s, 2 min, 10 min, 30 min, then hourly) and how often due deliveries are looked for.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_batch: int = Field(default=50, ge=1, le=1000)
    event_batch_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _private_urls_in_development_only_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("allow_private_webhook_urls") is None:
            data = {**data, "allow_private_webhook_urls": data.get("environment") == "development"}
        return data
