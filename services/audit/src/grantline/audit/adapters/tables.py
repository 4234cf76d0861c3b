"""Tables of the audit service, all in the ``audit`` schema."""

from sqlalchemy import MetaData

from grantline.common.outbox import outbox_table

SCHEMA = "audit"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
