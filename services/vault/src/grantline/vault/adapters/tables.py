"""Tables of the vault, all in the ``vault`` schema (see migrations/versions for the DDL)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from grantline.runtime.inbox import processed_events_table
from grantline.runtime.outbox import outbox_table

SCHEMA = "vault"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)


def _timestamps() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


# A tenant's data keys, one row per version (the newest seals), each wrapped by a master key of the
# keyring (never stored here). `encryptions` counts the values sealed under the version.
data_keys = Table(
    "data_keys",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, server_default="1"),
    Column("data_key_id", String(64), nullable=False),
    Column("master_key_id", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("encryptions", BigInteger, nullable=False, server_default="0"),
    # Below the tenant's minimum decryption version (set with it, read by resolve without a join).
    Column("retired", Boolean, nullable=False, server_default="false"),
    *_timestamps(),
)

# Versions below a tenant's minimum decryption version no longer open (no row: every version opens).
data_key_policies = Table(
    "data_key_policies",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("min_decryption_version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

provider_apps = Table(
    "provider_apps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("provider", String(64), nullable=False),
    # NULL for the provider's default app; else one more app of the tenant (unique per provider).
    Column("name", String(40), nullable=True),
    Column("client_id", String(512), nullable=False),
    Column("client_secret", LargeBinary, nullable=True),
    Column("webhook_secret", LargeBinary, nullable=True),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("settings", JSONB, nullable=False, server_default="{}"),
    Column("allow_workspace_fallback", Boolean, nullable=False, server_default="false"),
    # Every user of the tenant acts through the workspace connection, even one with their own.
    Column("force_workspace_connection", Boolean, nullable=False, server_default="false"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("provider_definition", JSONB, nullable=True),
    *_timestamps(),
)

connections = Table(
    "connections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("owner", String(300), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("provider_app_id", String(64), nullable=True),
    # The name of the tenant's named app the connection was made with (NULL: the default app).
    Column("provider_app", String(40), nullable=True),
    Column("auth_kind", String(16), nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_reason", String(100), nullable=True),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    # Scopes a server said the connection lacks (step-up, `insufficient_scope`); cleared on re-authorization.
    Column("missing_scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("account", String(300), nullable=True),
    # HMAC of provider and account under the tenant's digest key (domain/account_digest.py), indexed.
    Column("account_digest", LargeBinary, nullable=True),
    Column("name", String(200), nullable=True),
    Column("is_default", Boolean, nullable=False, server_default="false"),
    # A workspace API key that serves every user of the tenant without one of their own.
    Column("shared_fallback", Boolean, nullable=False, server_default="false"),
    Column("token_type", String(40), nullable=False, server_default="Bearer"),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("refresh_token_expires_at", DateTime(timezone=True), nullable=True),
    Column("last_refreshed_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    # Set when a refresh's provider call begins, cleared when its outcome is written: still set after
    # the lease, it says the refresh token may be spent (refresh.py decides per provider policy).
    Column("refresh_started_at", DateTime(timezone=True), nullable=True),
    Column("settings", JSONB, nullable=False, server_default="{}"),
    Column("provider_definition", JSONB, nullable=True),
    Column("access_token", LargeBinary, nullable=True),
    Column("refresh_token", LargeBinary, nullable=True),
    Column("id_token", LargeBinary, nullable=True),
    Column("api_key", LargeBinary, nullable=True),
)

# Runs whose `runs.finished` the vault has seen: their grants resolve nothing more. Kept as long as a
# grant may live (run_grant_max_lifetime_seconds), then pruned.
finished_runs = Table(
    "finished_runs",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("run_id", String(200), primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A tenant's own provider definitions (POST /v1/providers, through the gateway). The vault acts only
# on definitions from the shipped catalogue or this table; a catalogue id is never looked up here.
tenant_providers = Table(
    "tenant_providers",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("definition", JSONB, nullable=False),
    *_timestamps(),
)

# Providers a tenant switched off (catalogue ones or its own); no row means on.
tenant_provider_switches = Table(
    "tenant_provider_switches",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    *_timestamps(),
)


# Provider revocation calls (RFC 7009) still to make: the token stays sealed as it was in its
# connection (same associated data) until the provider confirms or the retries give up.
pending_revocations = Table(
    "pending_revocations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("connection_id", String(64), nullable=False),
    Column("owner", String(300), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("provider_app_id", String(64), nullable=False),
    Column("field", String(32), nullable=False),
    Column("sealed_token", LargeBinary, nullable=False),
    Column("token_type_hint", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
