"""Tables of the satisfaction service, all in the ``satisfaction`` schema.

- ``connect_category`` / ``connect_definition``: the provider catalogue as requirements see it. Apps are
  definitions owned by their provider (``gmail`` -> ``google``); ``is_enabled`` hides a definition
  without deleting it.
- ``connection_mirror``: one row per connection (the domain's mirror row plus what the service needs:
  the account a webhook names, the shared-fallback flag of the newest grant, the kind of the newest
  state event). ``app_user_connect`` is a view over it with one row per (tenant, owner, provider).
- ``runs`` / ``run_connections``: runs announced by runners and the connections each one resolved.
- ``tenant_provider``: each tenant's own providers (``POST /v1/providers``, MCP servers), copied from the
  vault's ``connections.provider_defined`` / ``provider_removed`` events; a removal is kept as a
  tombstone so that an older event delivered late cannot bring the provider back.
- ``tenant_provider_switch``: providers a tenant switched on or off (``connections.provider_enabled``).
"""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from grantline.runtime.inbox import processed_events_table
from grantline.runtime.outbox import outbox_table

SCHEMA = "satisfaction"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

connect_category = Table(
    "connect_category",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("position", Integer, nullable=False),
)

connect_definition = Table(
    "connect_definition",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("provider_id", String(64), nullable=False),
    Column("category_id", String(64), ForeignKey(connect_category.c.id), nullable=False),
    Column("name", String(200), nullable=False),
    Column("is_enabled", Boolean, nullable=False, server_default=text("true")),
    Column("position", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

connection_mirror = Table(
    "connection_mirror",
    metadata,
    Column("tenant_id", String(128), nullable=False),
    Column("owner", String(210), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("connection_id", String(200), nullable=False),
    Column("connected", Boolean, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("connected_at", DateTime(timezone=True), nullable=True),
    Column("last_grant_event_id", String(64), nullable=True),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
    Column("last_event_id", String(64), nullable=False),
    Column("last_event_kind", String(32), nullable=False),
    Column("account", String(300), nullable=True),
    Column("shared_fallback", Boolean, nullable=False, server_default=text("false")),
    Column("last_reason", String(64), nullable=True),
    # Step-up marks: scopes a server said the connection lacks, and the event they come from.
    Column("missing_scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("missing_marked_at", DateTime(timezone=True), nullable=True),
    Column("missing_event_id", String(64), nullable=True),
    # The tenant forced this workspace connection: users' own connections to the provider do not count.
    Column("workspace_forced", Boolean, nullable=False, server_default=text("false")),
    # The grant or sharing change the sharing flags come from (ordering key).
    Column("sharing_at", DateTime(timezone=True), nullable=True),
    Column("sharing_event_id", String(64), nullable=True),
    PrimaryKeyConstraint("tenant_id", "owner", "provider", "connection_id", name="connection_mirror_pkey"),
    Index("connection_mirror_by_connection", "tenant_id", "connection_id"),
    Index(
        "connection_mirror_by_account",
        "tenant_id",
        "provider",
        "account",
        postgresql_where=text("account IS NOT NULL"),
    ),
)

runs = Table(
    "runs",
    metadata,
    Column("tenant_id", String(128), nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("user_id", String(200), nullable=True),
    Column("app_id", String(200), nullable=True),
    Column("trigger", String(16), nullable=False),
    Column("is_test", Boolean, nullable=False, server_default=text("false")),
    # held | admitted | finished | invalid (requirements that cannot be read; never admitted)
    Column("status", String(16), nullable=False),
    Column("requirements", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "run_id", name="runs_pkey"),
    Index("runs_held_by_user", "tenant_id", "user_id", postgresql_where=text("status = 'held'")),
)

run_connections = Table(
    "run_connections",
    metadata,
    Column("tenant_id", String(128), nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("connection_id", String(200), nullable=False),
    Column("provider", String(64), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    # Set once the run was told about the revocation: a run hears about a connection at most once.
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("tenant_id", "run_id", "connection_id", name="run_connections_pkey"),
    Index("run_connections_by_connection", "tenant_id", "connection_id"),
)

tenant_provider = Table(
    "tenant_provider",
    metadata,
    Column("tenant_id", String(128), nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category_id", String(64), nullable=False),
    # [[app id, category id], ...]: the definitions the provider unlocks.
    Column("apps", JSONB, nullable=False, server_default="[]"),
    Column("removed", Boolean, nullable=False, server_default=text("false")),
    # When the vault stored or removed it: an event older than this one changes nothing.
    Column("event_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "provider_id", name="tenant_provider_pkey"),
)

tenant_provider_switch = Table(
    "tenant_provider_switch",
    metadata,
    Column("tenant_id", String(128), nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("event_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "provider_id", name="tenant_provider_switch_pkey"),
)

# The DESIGN's ``app_user_connect`` is a view (created by migration 0003), declared here for reading.
views = MetaData(schema=SCHEMA)
app_user_connect = Table(
    "app_user_connect",
    views,
    Column("tenant_id", String(128)),
    Column("owner", String(210)),
    Column("user_id", String(200)),
    Column("provider", String(64)),
    Column("connected", Boolean),
    Column("connection_id", String(200)),
    Column("connected_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

APP_USER_CONNECT_VIEW = """
CREATE OR REPLACE VIEW satisfaction.app_user_connect AS
SELECT DISTINCT ON (tenant_id, owner, provider)
       tenant_id,
       owner,
       CASE WHEN owner LIKE 'user:%' THEN substr(owner, 6) END AS user_id,
       provider,
       connected,
       connection_id,
       connected_at,
       max(last_event_at) OVER (PARTITION BY tenant_id, owner, provider) AS updated_at
  FROM satisfaction.connection_mirror
 ORDER BY tenant_id, owner, provider, connected DESC,
          coalesce(connected_at, last_event_at) DESC, connection_id DESC
"""
