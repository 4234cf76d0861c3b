"""The catalogue tables (seeded), the connection mirror with its app_user_connect view, and runs.

Revision ID: satisfaction_0003
Revises: satisfaction_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from grantline.satisfaction.adapters.catalogue_tables import configured_catalogue, seed_catalogue_sync
from grantline.satisfaction.adapters.tables import APP_USER_CONNECT_VIEW
from grantline.satisfaction.settings import SatisfactionSettings

revision = "satisfaction_0003"
down_revision = "satisfaction_0002"
branch_labels = None
depends_on = None

SCHEMA = "satisfaction"


def _tz(name: str, nullable: bool = False, now: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None
    )


def upgrade() -> None:
    op.create_table(
        "connect_category",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("position", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "connect_definition",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column(
            "category_id", sa.String(64), sa.ForeignKey(f"{SCHEMA}.connect_category.id"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("position", sa.Integer, nullable=False),
        _tz("updated_at", now=True),
        schema=SCHEMA,
    )
    op.create_table(
        "connection_mirror",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(210), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.String(200), nullable=False),
        sa.Column("connected", sa.Boolean, nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        _tz("connected_at", nullable=True),
        sa.Column("last_grant_event_id", sa.String(64), nullable=True),
        _tz("last_event_at"),
        sa.Column("last_event_id", sa.String(64), nullable=False),
        sa.Column("last_event_kind", sa.String(32), nullable=False),
        sa.Column("account", sa.String(300), nullable=True),
        sa.Column("shared_fallback", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("last_reason", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "owner", "provider", "connection_id", name="connection_mirror_pkey"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "connection_mirror_by_connection", "connection_mirror", ["tenant_id", "connection_id"], schema=SCHEMA
    )
    op.create_index(
        "connection_mirror_by_account",
        "connection_mirror",
        ["tenant_id", "provider", "account"],
        schema=SCHEMA,
        postgresql_where=sa.text("account IS NOT NULL"),
    )
    op.execute(APP_USER_CONNECT_VIEW)
    op.create_table(
        "runs",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("app_id", sa.String(200), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("is_test", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requirements", postgresql.JSONB, nullable=False, server_default="[]"),
        _tz("created_at", now=True),
        _tz("updated_at", now=True),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", name="runs_pkey"),
        schema=SCHEMA,
    )
    op.create_index(
        "runs_held_by_user",
        "runs",
        ["tenant_id", "user_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'held'"),
    )
    op.create_table(
        "run_connections",
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("connection_id", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        _tz("resolved_at"),
        _tz("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", "connection_id", name="run_connections_pkey"),
        schema=SCHEMA,
    )
    op.create_index(
        "run_connections_by_connection", "run_connections", ["tenant_id", "connection_id"], schema=SCHEMA
    )
    settings = SatisfactionSettings()
    seed_catalogue_sync(op.get_bind(), configured_catalogue(settings.sandbox_url, settings.provider_dirs))


def downgrade() -> None:
    op.drop_table("run_connections", schema=SCHEMA)
    op.drop_table("runs", schema=SCHEMA)
    op.execute(f"DROP VIEW IF EXISTS {SCHEMA}.app_user_connect")
    op.drop_table("connection_mirror", schema=SCHEMA)
    op.drop_table("connect_definition", schema=SCHEMA)
    op.drop_table("connect_category", schema=SCHEMA)
