"""Tables of the satisfaction service, all in the ``satisfaction`` schema."""

from sqlalchemy import MetaData

from grantline.common.inbox import processed_events_table
from grantline.common.outbox import outbox_table

SCHEMA = "satisfaction"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
