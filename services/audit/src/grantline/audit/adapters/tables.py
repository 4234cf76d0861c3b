"""Tables of the audit service, all in the ``audit`` schema."""

from sqlalchemy import MetaData

from grantline.common.inbox import processed_events_table
from grantline.common.outbox import outbox_table

SCHEMA = "audit"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
