"""The hash-chained ledger, chain heads, retention checkpoints, and the append-only guard.

Revision ID: audit_0003
Revises: audit_0002

Append-only is enforced by triggers, not by REVOKE: the service role runs its own migrations and
so owns the tables, and an owner's privileges cannot be usefully revoked from itself. The triggers:
- refuse every UPDATE of the ledger and of checkpoints, and every DELETE of checkpoints;
- refuse a DELETE of ledger rows unless a checkpoint of the same tenant covers each deleted seq, so
  the only deletion that succeeds is retention's (which writes the signed checkpoint first, in the
  same transaction). A superuser can still disable triggers: that is what the hash chain detects.
TRUNCATE is not blocked (test suites and disaster recovery use it); a truncated ledger no longer
reaches its chain head, and verification says so.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "audit_0003"
down_revision = "audit_0002"
branch_labels = None
depends_on = None

SCHEMA = "audit"

GUARD_FUNCTIONS = """
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION audit.refuse_uncheckpointed_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE orphan record;
BEGIN
  SELECT r.tenant_id, r.seq INTO orphan FROM removed r
   WHERE NOT EXISTS (
     SELECT 1 FROM audit.checkpoints c WHERE c.tenant_id = r.tenant_id AND c.seq >= r.seq)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'audit.ledger is append-only: seq % of tenant % is not covered by a checkpoint',
      orphan.seq, orphan.tenant_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON audit.ledger
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER ledger_delete_needs_checkpoint AFTER DELETE ON audit.ledger
  REFERENCING OLD TABLE AS removed
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_uncheckpointed_delete();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
"""


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("record_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(100, collation="C"), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("connection_id", sa.Text),
        sa.Column("provider", sa.Text),
        sa.Column("app_id", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("tool", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", postgresql.JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        schema=SCHEMA,
    )
    # The record id is the event id: a record redelivered (or republished under another Nats-Msg-Id)
    # is found here and not stored twice.
    op.create_index("ledger_record_id", "ledger", ["record_id"], unique=True, schema=SCHEMA)
    # Query indexes: every filter is "this tenant, this value, newest first", so each index ends in seq
    # and a page is a short backward range scan. Partial: most records lack one or another id.
    for column in ("run_id", "user_id", "connection_id", "app_id", "provider"):
        op.create_index(
            f"ledger_{column}",
            "ledger",
            ["tenant_id", column, "seq"],
            schema=SCHEMA,
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )
    op.create_index("ledger_action", "ledger", ["tenant_id", "action", "seq"], schema=SCHEMA)
    op.create_index("ledger_occurred_at", "ledger", ["tenant_id", "occurred_at"], schema=SCHEMA)

    op.create_table(
        "chain_heads",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("removed_count", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(100), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("checkpoints_tenant_seq", "checkpoints", ["tenant_id", "seq"], unique=True, schema=SCHEMA)
    op.create_table(
        "tenant_retention",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.execute(GUARD_FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP TABLE audit.tenant_retention, audit.checkpoints, audit.chain_heads, audit.ledger")
    op.execute("DROP FUNCTION audit.refuse_change(), audit.refuse_uncheckpointed_delete()")
