"""Settings of the auth gateway (environment variables with the ``GRANTLINE_`` prefix)."""

from pydantic import Field

from grantline.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "auth-gateway"
    http_port: int = 8080

    # The public base URL of the API; the OAuth redirect URI is `{public_url}/v1/oauth/callback`.
    public_url: str = "http://127.0.0.1:8080"
    # How long a NATS request to the vault, satisfaction or audit may take before we answer 503.
    bus_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Connect sessions: default and longest lifetime.
    connect_session_ttl_seconds: int = Field(default=1800, ge=60)
    connect_session_max_ttl_seconds: int = Field(default=86400, ge=60)
    # Largest request bodies, checked on the stream before anything is parsed (413 above them).
    # API JSON (a tenant's provider definition is the largest, a few KB):
    api_max_body_bytes: int = Field(default=512_000, ge=1024)
    # Admin and connect page forms:
    ui_form_max_body_bytes: int = Field(default=64_000, ge=1024)
    # Webhooks (providers send small JSON or a JWT):
    webhook_max_body_bytes: int = Field(default=1_000_000, ge=1024)

    @property
    def redirect_uri(self) -> str:
        """The one redirect URI every provider app of this deployment registers."""
        return f"{self.public_url.rstrip('/')}/v1/oauth/callback"
