"""Tenants' provider switches, and every stored tenant provider announced once through the outbox.

`tenant_provider_switches` keeps the providers a tenant switched off (no row: on).
`connections.shared_fallback`: a workspace API key the tenant shares with every user without their own.

From now on the vault announces each definition it stores or forgets; satisfaction keeps a copy of
each tenant's own providers from those events. The definitions stored before that are announced
here, so satisfaction's copy starts complete. A definition that no longer validates is left out, as
the vault's reads leave it out.

Revision ID: vault_0010
Revises: vault_0009
"""

import sqlalchemy as sa
from alembic import op

from grantline.providers.catalogue import CatalogueError, parse_definition
from grantline.runtime.outbox import outbox_row
from grantline.vault.adapters.tables import outbox
from grantline.vault.service.tenant_providers import defined_event

revision = "vault_0010"
down_revision = "vault_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_provider_switches",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="vault",
    )
    op.add_column(
        "connections",
        sa.Column("shared_fallback", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="vault",
    )
    bind = op.get_bind()
    stored = bind.execute(
        sa.text("SELECT tenant_id, definition FROM vault.tenant_providers ORDER BY tenant_id, provider")
    ).all()
    rows = []
    for tenant_id, raw in stored:
        try:
            definition = parse_definition(raw, source="tenant provider")
        except CatalogueError:
            continue
        rows.append(outbox_row(defined_event(tenant_id, definition)))
    if rows:
        bind.execute(sa.insert(outbox), rows)


def downgrade() -> None:
    # Announcements already published cannot be taken back; they describe rows that still exist.
    op.drop_column("connections", "shared_fallback", schema="vault")
    op.drop_table("tenant_provider_switches", schema="vault")
