"""Versioned data keys: several per tenant (the newest seals), a count of encryptions per version,
and a per-tenant minimum decryption version.

The existing key of each tenant becomes its version 1. The primary key moves from the tenant to
(tenant, version); the key id stays unique per tenant, since sealed values name their key by id.

Revision ID: vault_0007
Revises: vault_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "vault_0007"
down_revision = "vault_0006"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column(
        "data_keys", sa.Column("version", sa.Integer, nullable=False, server_default="1"), schema=SCHEMA
    )
    op.add_column(
        "data_keys",
        sa.Column("encryptions", sa.BigInteger, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    # Below the tenant's minimum decryption version: kept on the row so resolve needs no extra join.
    op.add_column(
        "data_keys",
        sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.drop_constraint("data_keys_pkey", "data_keys", schema=SCHEMA, type_="primary")
    op.create_primary_key("data_keys_pkey", "data_keys", ["tenant_id", "version"], schema=SCHEMA)
    op.create_index(
        "data_keys_tenant_key_id", "data_keys", ["tenant_id", "data_key_id"], unique=True, schema=SCHEMA
    )
    op.create_table(
        "data_key_policies",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("min_decryption_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    # Only the newest version of each tenant survives a downgrade: values under older versions must
    # have been re-sealed first (`grantline keys reseal`), or they stop opening.
    op.drop_table("data_key_policies", schema=SCHEMA)
    op.execute(
        "DELETE FROM vault.data_keys d USING vault.data_keys newer "
        "WHERE newer.tenant_id = d.tenant_id AND newer.version > d.version"
    )
    op.drop_index("data_keys_tenant_key_id", "data_keys", schema=SCHEMA)
    op.drop_constraint("data_keys_pkey", "data_keys", schema=SCHEMA, type_="primary")
    op.create_primary_key("data_keys_pkey", "data_keys", ["tenant_id"], schema=SCHEMA)
    op.drop_column("data_keys", "retired", schema=SCHEMA)
    op.drop_column("data_keys", "encryptions", schema=SCHEMA)
    op.drop_column("data_keys", "version", schema=SCHEMA)
