"""The cost of one claim batch as the schedule grows: 10k, 100k and 1M rows, loaded with COPY.

About 1.6% of rows are due (next attempts spread from one minute ago to one hour ahead), which is
what a schedule of one-hour tokens looks like. Each claim runs the service's own claim statement in
a transaction that is rolled back, so every sample sees the same table.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from grantline.refresher.adapters.schedule_repository import _CLAIM_DUE

CLAIM_SQL = _CLAIM_DUE
BATCH = 100
SAMPLES = 40
PROVIDERS = ["google", "microsoft", "slack", "github", "hubspot", "notion", "salesforce", "atlassian"]
COPY_COLUMNS = (
    "connection_id, tenant_id, owner, provider, state, expires_at, due_at, next_attempt_at, attempts, "
    "last_event_at, last_event_id"
)


@dataclass
class ClaimFigures:
    rows: int
    due_rows: int
    median_ms: float
    p95_ms: float
    plan_ms: float
    buffers: str
    plan: str


def load_rows(
    conn: psycopg.Connection, start: int, count: int, *, now: datetime, prefix: str = "bench"
) -> None:
    """COPY ``count`` scheduled rows numbered from ``start``."""
    rng = random.Random(start)
    stamp = now - timedelta(hours=1)
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY refresher.refresh_schedule ({COPY_COLUMNS}) FROM STDIN") as copy,
    ):
        for n in range(start, start + count):
            due = now + timedelta(seconds=rng.uniform(-60, 3600))
            copy.write_row(
                (
                    f"{prefix}-{n}",
                    f"tenant-{n % 500}",
                    f"user:u{n}",
                    PROVIDERS[n % len(PROVIDERS)],
                    "scheduled",
                    due + timedelta(minutes=5),
                    due,
                    due,
                    0,
                    stamp,
                    uuid.uuid4(),
                )
            )
    conn.commit()
    conn.execute("ANALYZE refresher.refresh_schedule")
    conn.commit()


def measure_claim(conn: psycopg.Connection, now: datetime) -> ClaimFigures:
    """Median/p95 of one claim of BATCH rows, and its EXPLAIN (ANALYZE, BUFFERS)."""
    params = {"now": now, "until": now + timedelta(seconds=60), "owner": "bench", "limit": BATCH, "busy": []}
    sql = CLAIM_SQL
    samples = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        claimed = conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
        conn.rollback()
        assert len(claimed) == BATCH
    plan_rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
    conn.rollback()
    plan = "\n".join(row[0] for row in plan_rows)
    plan_ms = float(next(line for line in plan.splitlines() if "Execution Time" in line).split()[-2])
    buffers = next((line.strip() for line in plan.splitlines() if "Buffers:" in line), "")
    total = conn.execute("SELECT count(*) FROM refresher.refresh_schedule").fetchone()[0]  # type: ignore[index]
    due = conn.execute(
        "SELECT count(*) FROM refresher.refresh_schedule WHERE state = 'scheduled' AND next_attempt_at <= %s",
        (now,),
    ).fetchone()[0]  # type: ignore[index]
    conn.rollback()
    samples.sort()
    return ClaimFigures(
        rows=total,
        due_rows=due,
        median_ms=statistics.median(samples),
        p95_ms=samples[int(len(samples) * 0.95) - 1],
        plan_ms=plan_ms,
        buffers=buffers,
        plan=plan,
    )


def run(database_url: str, sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[ClaimFigures]:
    """Grow the table through ``sizes`` and measure a claim at each size."""
    figures = []
    now = datetime.now(UTC)
    loaded = 0
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE refresher.refresh_schedule")
        conn.commit()
        for size in sizes:
            started = time.perf_counter()
            load_rows(conn, loaded, size - loaded, now=now)
            print(
                f"  loaded {size - loaded:,} rows with COPY in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            loaded = size
            result = measure_claim(conn, now)
            print(
                f"  {result.rows:>9,} rows ({result.due_rows:,} due):"
                f" claim of {BATCH} median {result.median_ms:.2f} ms,"
                f" p95 {result.p95_ms:.2f} ms; EXPLAIN {result.plan_ms:.2f} ms, {result.buffers}",
                flush=True,
            )
            figures.append(result)
        conn.execute("TRUNCATE refresher.refresh_schedule")
        conn.commit()
    return figures
