"""Bulk-load a properly chained ledger with COPY: one process per CPU, each owning whole tenants."""

from __future__ import annotations

import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from grantline.audit.domain.hash_chain import GENESIS_HASH, HASHED_FIELDS, canonical_bytes, chain_hash

COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
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


def synthetic_record(tenant_id: str, seq: int, total: int, start: datetime) -> dict[str, object]:
    """Record `seq` of a tenant: ~20 records per run, ~1000 users, ~3000 connections."""
    action = ACTIONS[seq % len(ACTIONS)]
    connection = seq % 3000
    at = start + SPAN * (seq / total)
    return {
        "tenant_id": tenant_id,
        "seq": seq,
        "record_id": uuid.uuid4(),
        "occurred_at": at,
        "received_at": at + timedelta(milliseconds=5),
        "action": action,
        "actor": "vault",
        "connection_id": f"conn-{connection}",
        "provider": PROVIDERS[connection % len(PROVIDERS)],
        "app_id": f"app-{seq % 50}",
        "run_id": f"run-{seq // 20}" if action == "token.resolved" else None,
        "tool": "send_email" if action == "token.resolved" else None,
        "user_id": f"user-{connection % 1000}",
        "outcome": "success",
        "detail": {"fingerprint": f"{seq:016x}"},
    }


def load_tenant(database_url: str, tenant_id: str, count: int) -> tuple[str, int, str]:
    """COPY `count` chained records of one tenant and its chain head; return (tenant, seq, hash)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    with psycopg.connect(database_url) as conn:
        conn.execute("SET synchronous_commit = off")
        with conn.cursor() as cur, cur.copy(f"COPY audit.ledger ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for seq in range(1, count + 1):
                fields = synthetic_record(tenant_id, seq, count, start)
                digest = chain_hash(prev, canonical_bytes(fields))
                fields["prev_hash"], fields["hash"] = prev, digest
                fields["detail"] = Jsonb(fields["detail"])
                copy.write_row([fields[c] for c in COLUMNS])
                prev = digest
        conn.execute(
            "INSERT INTO audit.chain_heads (tenant_id, seq, hash, updated_at) VALUES (%s, %s, %s, now())",
            (tenant_id, count, prev),
        )
        conn.commit()
    return tenant_id, count, prev


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
        list(pool.map(load_tenant, [database_url] * len(tenants), tenants.keys(), tenants.values()))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE audit.ledger")
