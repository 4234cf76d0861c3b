"""Tables of the auth gateway, all in the ``gateway`` schema."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from grantline.runtime.inbox import processed_events_table
from grantline.runtime.outbox import outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    # Origins (or origin + path prefixes) a browser may be sent back to after a flow.
    Column("return_to_allow_list", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey(tenants.c.tenant_id, ondelete="CASCADE"), nullable=False),
    # SHA-256 of the whole key: the key has 256 random bits, so a fast hash is enough.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),  # the first characters, to tell keys apart
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Tenant-defined providers as the gateway kept them before the vault owned them (vault.providers.*);
# housekeeping hands the rows left here over to the vault, then deletes them.
tenant_providers = Table(
    "tenant_providers",
    metadata,
    Column("tenant_id", String(64), ForeignKey(tenants.c.tenant_id, ondelete="CASCADE"), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

pending_authorizations = Table(
    "pending_authorizations",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("owner", String(300), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("connection_id", String(64), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("return_to", Text, nullable=False),
    # The PKCE verifier never leaves this table except towards the vault, with the code.
    Column("code_verifier", Text, nullable=True),
    Column("reauthorize", Boolean, nullable=False, server_default="false"),
    Column("name", String(200), nullable=True),
    # The provider app's settings at initiation (Shopify shop, ...): the token URL may need them.
    Column("settings", JSONB, nullable=False, server_default="{}"),
    # The account (login hint) or email domain the user was asked to grant as; checked by the vault.
    Column("expected_account", String(320), nullable=True),
    Column("expected_domain", String(253), nullable=True),
    # A narrowing re-authorization: the connection keeps only what the new grant has.
    Column("replace_scopes", Boolean, nullable=False, server_default="false"),
    # The tenant's named provider app the flow uses (NULL: the default app, else the platform's).
    Column("provider_app", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    # SHA-256 of the flow cookie of the browser that started it (pages only; NULL from the API).
    Column("browser_binding", String(64), nullable=True),
    Index("pending_authorizations_expires_at", "expires_at"),
)

connect_sessions = Table(
    "connect_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(64), nullable=False, unique=True),
    Column("tenant_id", String(64), ForeignKey(tenants.c.tenant_id, ondelete="CASCADE"), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # The connect link is exchanged for a browser session once only.
    Column("link_used_at", DateTime(timezone=True), nullable=True),
    # The providers the session may list and connect (a held run's link); NULL: every provider.
    Column("providers", JSONB, nullable=True),
    Column("run_id", String(200), nullable=True),
    # {provider: named app} for the session's new connections; NULL: every provider's default app.
    Column("provider_apps", JSONB, nullable=True),
    Index("connect_sessions_expires_at", "expires_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("provider", String(64), primary_key=True),
    # The app whose secret verified the delivery: two apps may be sent identical bodies.
    Column("provider_app_id", String(64), primary_key=True, server_default=""),
    Column("delivery_id", String(300), primary_key=True),
    Column("tenant_id", String(64), nullable=True),
    Column("kind", String(100), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # SHA-256 of the signed body: GitHub does not sign its delivery id, so a replay may carry a new one.
    Column("body_sha256", String(64), nullable=True),
    Index("webhook_deliveries_received_at", "received_at"),
    Index("webhook_deliveries_body", "provider", "provider_app_id", "body_sha256", unique=True),
)

# One fixed-window counter per limited thing (`failed_auth:address:203.0.113.7`, ...), shared by every
# gateway replica; the window comes from the database clock, so replicas' clocks need not agree.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String(300), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("hits", Integer, nullable=False),
    Index("rate_limits_window_start", "window_start"),
)
