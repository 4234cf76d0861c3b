"""Tables of runner-auth, all in the ``runner_auth`` schema (migration runner_auth_0001)."""

from sqlalchemy import Boolean, Column, DateTime, LargeBinary, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import ARRAY

SCHEMA = "runner_auth"
metadata = MetaData(schema=SCHEMA)

runners = Table(
    "runners",
    metadata,
    Column("runner_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    # NULL when platform-wide (then platform_wide is true); otherwise at least one tenant id.
    Column("tenants", ARRAY(String(128))),
    Column("platform_wide", Boolean, nullable=False),
    # SHA-256 of the secret (see domain.runner.hash_secret); the secret itself is never stored.
    Column("secret_hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(200)),
    # When the kick sweep last closed this (revoked) runner's connections.
    Column("kick_checked_at", DateTime(timezone=True)),
)
