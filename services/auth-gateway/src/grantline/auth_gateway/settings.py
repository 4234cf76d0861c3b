"""Settings of the auth gateway (environment variables with the ``GRANTLINE_`` prefix)."""

from pydantic import Field

from grantline.runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "auth-gateway"
    http_port: int = 8080

    # The public base URL of the API; the OAuth redirect URI is `{public_url}/v1/oauth/callback`.
    public_url: str = "http://127.0.0.1:8080"
    # How long a NATS request to the vault, satisfaction or audit may take before we answer 503.
    bus_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Every statement runs on psycopg (grantline.runtime.db.driver): each of its two pools (pipelined
    # transactions; autocommit for one-statement work such as every request's key check) may open this
    # many, together what SQLAlchemy's pool did with its overflow: a flow's start keeps its connection
    # while it asks the vault. SQLAlchemy's pool (GRANTLINE_DATABASE_POOL_SIZE) is never opened.
    database_driver_pool_size: int = Field(default=10, ge=1, le=200)
    # Connect sessions: default and longest lifetime.
    connect_session_ttl_seconds: int = Field(default=1800, ge=60)
    connect_session_max_ttl_seconds: int = Field(default=86400, ge=60)
    # A remote MCP server's discovery older than this is redone before a user connects it (docs/mcp.md).
    mcp_rediscover_after_seconds: int = Field(default=86400, ge=60)
    # Largest request bodies, checked on the stream before anything is parsed (413 above them).
    # API JSON (a tenant's provider definition is the largest, a few KB):
    api_max_body_bytes: int = Field(default=512_000, ge=1024)
    # Admin and connect page forms:
    ui_form_max_body_bytes: int = Field(default=64_000, ge=1024)
    # Webhooks (providers send small JSON or a JWT):
    webhook_max_body_bytes: int = Field(default=1_000_000, ge=1024)

    # Rate limits, shared by every replica through Postgres: at most N per window (fixed windows of
    # `rate_limit_window_seconds`, so a burst across a window boundary may reach 2N). Over a limit the
    # gateway answers 429 with Retry-After. The client address is the TCP peer's (set FORWARDED_ALLOW_IPS
    # to the load balancer's addresses so it is the real client's).
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    # Failed authentications (unknown, expired or revoked API key or connect-session token) per client
    # address and per key prefix (the first 8 characters); over the limit even a right key is refused.
    rate_limit_failed_auth_per_address: int = Field(default=20, ge=1)
    rate_limit_failed_auth_per_key_prefix: int = Field(default=20, ge=1)
    # Refused OAuth `state` values (callback and POST /v1/oauth/token) per client address.
    rate_limit_failed_state_per_address: int = Field(default=20, ge=1)
    # Webhook deliveries per client address and provider (each costs a signature verification).
    rate_limit_webhooks_per_address: int = Field(default=600, ge=1)
    # POST /v1/connections/initiate (and the connect page's Connect) per tenant.
    rate_limit_initiate_per_tenant: int = Field(default=300, ge=1)

    @property
    def redirect_uri(self) -> str:
        """The one redirect URI every provider app of this deployment registers."""
        return f"{self.public_url.rstrip('/')}/v1/oauth/callback"
