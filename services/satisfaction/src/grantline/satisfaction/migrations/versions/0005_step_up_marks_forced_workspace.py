"""The mirror keeps step-up marks and whether a workspace connection is forced on every user.

- ``missing_scopes`` (with the ordering key of the event it comes from): scopes a server said the
  connection lacks (``connections.scopes_missing``); reports subtract them from the grant's scopes.
- ``workspace_forced``: the tenant forced the shared connection for the provider; users' own
  connections do not count. With ``shared_fallback`` it follows the newest grant or
  ``connections.sharing_changed`` (``sharing_at``, ``sharing_event_id``).

Revision ID: satisfaction_0005
Revises: satisfaction_0004
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "satisfaction_0005"
down_revision = "satisfaction_0004"
branch_labels = None
depends_on = None

SCHEMA = "satisfaction"
TABLE = "connection_mirror"


def upgrade() -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("missing_scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("missing_marked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missing_event_id", sa.String(64), nullable=True),
        sa.Column("workspace_forced", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("sharing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sharing_event_id", sa.String(64), nullable=True),
    ]
    for column in columns:
        op.add_column(TABLE, column, schema=SCHEMA)


def downgrade() -> None:
    for column in (
        "sharing_event_id",
        "sharing_at",
        "workspace_forced",
        "missing_event_id",
        "missing_marked_at",
        "missing_scopes",
    ):
        op.drop_column(TABLE, column, schema=SCHEMA)
