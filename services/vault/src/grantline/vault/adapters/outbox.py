"""Where the vault's events wait for the relay: ``vault.outbox``.

Named without SQLAlchemy (adapters/tables.py declares the table, for the migrations only): the vault
runs on psycopg alone and must not load SQLAlchemy to name it.
"""

from grantline.runtime.outbox_relay import OutboxTable

OUTBOX = OutboxTable("vault")
