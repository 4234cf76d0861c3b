"""Tables of the vault, all in the ``vault`` schema."""

from sqlalchemy import MetaData

from grantline.common.outbox import outbox_table

SCHEMA = "vault"
metadata = MetaData(schema=SCHEMA)
outbox = outbox_table(metadata)
