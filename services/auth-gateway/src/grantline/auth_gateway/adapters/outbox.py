"""Where the gateway's events wait for the relay: ``gateway.outbox``.

Named without SQLAlchemy (adapters/tables.py declares the table, for the migrations only): the gateway
runs on psycopg alone and must not load SQLAlchemy to name it.
"""

from grantline.runtime.outbox_relay import OutboxTable

OUTBOX = OutboxTable("gateway")
