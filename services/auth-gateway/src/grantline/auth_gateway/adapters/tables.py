"""Tables of the auth gateway, all in the ``gateway`` schema."""

from sqlalchemy import MetaData

from grantline.common.inbox import processed_events_table
from grantline.common.outbox import outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
