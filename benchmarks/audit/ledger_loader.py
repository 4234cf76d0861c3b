"""Bulk-load a properly chained ledger with COPY: one process per CPU, each owning whole tenants."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg

from grantline.audit.domain.hash_chain import GENESIS, HASHED_FIELDS, ChainHead
from grantline.audit.domain.prepared_entry import prepare_fields

COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ACTIONS = (
    ["token.resolved"] * 14
    + ["token.refreshed"] * 3
    + ["connection.granted", "connection.revoked", "connection.initiated", "webhook.received"]
)
PROVIDERS = [
    "google",
    "github",
    "slack",
    "notion",
    "atlassian",
    "hubspot",
    "asana",
    "dropbox",
    "zoom",
    "linear",
]
SPAN = timedelta(days=300)


def synthetic_texts(tenant_index: int, seq: int, total: int, start: datetime) -> list[str | None]:
    """Record `seq` of a tenant as canonical texts (TEXT_FIELDS order).

    ~20 records per run, ~1000 users, ~3000 connections per tenant.
    """
    action = ACTIONS[seq % len(ACTIONS)]
    connection = seq % 3000
    at = start + SPAN * (seq / total)
    resolved = action == "token.resolved"
    return [
        # Unique per tenant and seq; written as the canonical (lower-case, hyphenated) UUID text.
        f"{tenant_index:08x}-0000-4000-8000-{seq:012x}",
        at.strftime(DATETIME_FORMAT),
        (at + timedelta(milliseconds=5)).strftime(DATETIME_FORMAT),
        action,
        "vault",
        f"conn-{connection}",
        PROVIDERS[connection % len(PROVIDERS)],
        f"app-{seq % 50}",
        f"run-{seq // 20}" if resolved else None,
        "send_email" if resolved else None,
        f"user-{connection % 1000}",
        "success",
        f'{{"fingerprint":"{seq:016x}"}}',
    ]


def load_tenant(database_url: str, tenant_id: str, count: int, tenant_index: int = 0) -> tuple[str, int, str]:
    """COPY `count` chained records of one tenant and its chain head; return (tenant, seq, hash).

    Rows are hashed with the ingest path's own prepared entries and written as COPY text in large
    chunks: ~10 us per record, so 10M records load in minutes.
    """
    start = datetime(2025, 1, 1, tzinfo=UTC)
    head = GENESIS
    with psycopg.connect(database_url) as conn:
        conn.execute("SET synchronous_commit = off")
        with conn.cursor() as cur, cur.copy(f"COPY audit.ledger ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            lines: list[str] = []
            for seq in range(1, count + 1):
                texts = synthetic_texts(tenant_index, seq, count, start)
                link = prepare_fields(tenant_id, texts).link(head)
                head = ChainHead(link.seq, link.hash)
                values = [
                    tenant_id,
                    str(seq),
                    *(r"\N" if t is None else t for t in texts),
                    link.prev_hash,
                    link.hash,
                ]
                lines.append("\t".join(values))
                if len(lines) == 20_000:
                    copy.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                copy.write("\n".join(lines) + "\n")
        conn.execute(
            "INSERT INTO audit.chain_heads (tenant_id, seq, hash, updated_at) VALUES (%s, %s, %s, now())",
            (tenant_id, count, head.hash),
        )
        conn.commit()
    return tenant_id, count, head.hash


def bulk_load(database_url: str, tenants: dict[str, int], workers: int = 2) -> None:
    """Load every tenant's chain, secondary indexes dropped during the load and rebuilt after."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'audit' AND tablename = 'ledger'"
            " AND indexname <> 'ledger_pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX audit.{name}")
    with ProcessPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(load_tenant, database_url, tenant, count, index)
            for index, (tenant, count) in enumerate(tenants.items())
        ]
        for job in jobs:
            job.result()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE audit.ledger")
