"""A tenant may have named provider apps beside a provider's default one; a connection names its app.

A second Shopify shop or self-hosted site often needs its own OAuth client: the tenant registers it
under a name, and a connection started with that name records it (`connections.provider_app`).
The default app keeps `name` NULL, so at most one default app per tenant and provider, as before.

Revision ID: vault_0012
Revises: vault_0011
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0012"
down_revision = "vault_0011"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column("provider_apps", sa.Column("name", sa.String(40), nullable=True), schema=SCHEMA)
    op.drop_constraint("provider_apps_tenant_provider", "provider_apps", schema=SCHEMA)
    # The default app's NULL name counts as one value: one default and one app per name.
    op.execute(
        "CREATE UNIQUE INDEX provider_apps_tenant_provider_name"
        " ON vault.provider_apps (tenant_id, provider, COALESCE(name, ''))"
    )
    op.add_column("connections", sa.Column("provider_app", sa.String(40), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("connections", "provider_app", schema=SCHEMA)
    op.execute("DELETE FROM vault.provider_apps WHERE name IS NOT NULL")
    op.drop_index("provider_apps_tenant_provider_name", table_name="provider_apps", schema=SCHEMA)
    op.create_unique_constraint(
        "provider_apps_tenant_provider", "provider_apps", ["tenant_id", "provider"], schema=SCHEMA
    )
    op.drop_column("provider_apps", "name", schema=SCHEMA)
