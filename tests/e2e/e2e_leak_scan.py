"""Where a secret could end up outside the vault: log files, stream messages, database columns.

Each scanner returns the places (file and line, stream and sequence, table and column) where any of
the given secrets appears in plaintext, so a failing assertion says exactly where the leak is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nats
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import sql

STREAMS = ("CONNECTIONS", "RUNS", "AUDIT")
# Every column type a string could be stored in (bytea included: ciphertexts must not hold plaintext).
_SCANNED_TYPES = ("text", "character varying", "character", "bytea", "json", "jsonb", "ARRAY", "USER-DEFINED")


def _hits(blob: bytes, secrets: Sequence[str]) -> list[str]:
    return [secret for secret in secrets if secret.encode() in blob]


def _label(secret: str) -> str:
    # Name a secret in a failure message without printing all of it.
    return secret[:12] + "..."


def scan_log_files(paths: Iterable[Path], secrets: Sequence[str]) -> list[str]:
    """``file:line`` of every log line holding a secret."""
    leaks = []
    for path in paths:
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            for secret in _hits(line, secrets):
                leaks.append(f"{path.name}:{number} holds {_label(secret)}")
    return leaks


async def read_streams(
    nats_url: str,
    user: str,
    password: str,
    inbox_prefix: str,
    *,
    streams: Sequence[str] = STREAMS,
    **connect_options: Any,
) -> dict[str, list[tuple[int, str, bytes]]]:
    """Every message of each stream from the start, as (sequence, subject, headers + data).

    No service user may read the streams unrestricted, nor create a consumer; the scan connects as the
    operator (``grantline migrate``'s identity, which may declare consumers) and declares a push
    consumer per stream that delivers to its own reply inbox, unacknowledged, every message once.
    """
    nc = await nats.connect(
        nats_url,
        user=user,
        password=password,
        inbox_prefix=inbox_prefix,
        connect_timeout=5,
        **connect_options,
    )
    found: dict[str, list[tuple[int, str, bytes]]] = {}
    try:
        js = nc.jetstream()
        for stream in streams:
            info = await js.stream_info(stream)
            last = info.state.last_seq
            deliver = nc.new_inbox()
            subscription = await nc.subscribe(deliver, pending_msgs_limit=-1)
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=f"e2e-leak-scan-{stream.lower()}-{deliver.rsplit('.', 1)[-1].lower()}",
                    deliver_subject=deliver,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.NONE,
                ),
            )
            messages: list[tuple[int, str, bytes]] = []
            while not messages or messages[-1][0] < last:
                msg = await subscription.next_msg(timeout=5)
                headers = repr(msg.headers or {}).encode()
                messages.append((msg.metadata.sequence.stream, msg.subject, headers + b"\n" + msg.data))
            await subscription.unsubscribe()
            found[stream] = messages
    finally:
        await nc.close()
    return found


StreamMessages = dict[str, list[tuple[int, str, bytes]]]


def scan_stream_messages(messages: StreamMessages, secrets: Sequence[str]) -> list[str]:
    """``stream#seq subject`` of every message holding a secret (in its data or its headers)."""
    return [
        f"{stream}#{seq} {subject} holds {_label(secret)}"
        for stream, items in messages.items()
        for seq, subject, blob in items
        for secret in _hits(blob, secrets)
    ]


def scan_database(database_url: str, secrets: Sequence[str]) -> tuple[int, list[str]]:
    """(values scanned, ``schema.table.column`` holding a secret) over every user schema."""
    leaks: list[str] = []
    scanned = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "AND t.table_type = 'BASE TABLE' AND c.data_type = ANY(%s)",
            (list(_SCANNED_TYPES),),
        ).fetchall()
        for schema, table, column, data_type in columns:
            value = (
                sql.Identifier(column)
                if data_type == "bytea"
                else sql.SQL("{}::text").format(sql.Identifier(column))
            )
            query = sql.SQL("SELECT {} FROM {}.{} WHERE {} IS NOT NULL").format(
                value, sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
            )
            for (item,) in conn.execute(query):
                scanned += 1
                blob = bytes(item) if isinstance(item, bytes | memoryview) else str(item).encode()
                for secret in _hits(blob, secrets):
                    leaks.append(f"{schema}.{table}.{column} holds {_label(secret)}")
    return scanned, sorted(set(leaks))


async def read_all_streams(stack: Any) -> StreamMessages:
    """Every message of the streams of a `grantline dev` stack (an `e2e_dev_stack.DevStackProcess`)."""
    # No service user may read everything or create a consumer (the permission file forbids both);
    # the operator may declare consumers, so the scan reads with its credentials from nats-users.json.
    passwords = json.loads((stack.data_dir / "nats-users.json").read_text())
    return await read_streams(
        str(stack.info["nats_url"]),
        "operator",
        passwords["operator"],
        "_INBOX.operator",
        **stack.nats_connect_options(),
    )


def service_logs(stack: Any) -> list[Path]:
    """The log files of a `grantline dev` stack's services."""
    logs = sorted(stack.logs_dir.glob("*.log"))
    assert {p.stem for p in logs} >= {"auth-gateway", "vault", "refresher", "satisfaction", "audit"}
    # Not `grantline dev`'s own output: it prints the dev API key on purpose (DESIGN section 7).
    return logs
