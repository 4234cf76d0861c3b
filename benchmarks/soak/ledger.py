"""The soak's closing checks (every ledger must balance) and its memory sampling.

Checks: ``grantline audit verify`` passes; no run was admitted twice (the RUNS stream is the record
of what was said); no run is left held while the user has the connection it waits for; no
connection's token expired while the refresher had it scheduled; every outbox is empty.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import nats
import psutil
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import sql

OUTBOX_SCHEMAS = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
# Held runs whose user holds a connected mirror row of every provider the run requires.
SATISFIED_BUT_HELD = """
SELECT count(*) FROM satisfaction.runs r
 WHERE r.status = 'held'
   AND EXISTS (SELECT 1 FROM satisfaction.connection_mirror m
                WHERE m.tenant_id = r.tenant_id AND m.owner = r.user_id AND m.connected)
"""
CONNECTED_MIRROR_ROWS = "SELECT count(*) FROM satisfaction.connection_mirror WHERE connected"
EXPIRED_WHILE_SCHEDULED = """
SELECT count(*) FROM refresher.refresh_schedule
 WHERE state = 'scheduled' AND expires_at < now()
"""


def outbox_rows(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        schemas = [row[0] for row in conn.execute(OUTBOX_SCHEMAS)]
        return sum(
            conn.execute(sql.SQL("SELECT count(*) FROM {}.outbox").format(sql.Identifier(s))).fetchone()[0]  # type: ignore[index]
            for s in schemas
        )


def count(database_url: str, query: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


async def run_events(nats_url: str) -> dict[str, Counter[str]]:
    """Per event type on the RUNS stream (``runs.requested``, ``runs.admitted``, ...): count per run."""
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        js = nc.jetstream(timeout=10)
        subscription = await js.pull_subscribe(
            "runs.>",
            durable=None,
            stream="RUNS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        said: dict[str, Counter[str]] = defaultdict(Counter)
        pending = (await js.stream_info("RUNS")).state.messages
        while pending > 0:
            batch = await subscription.fetch(min(pending, 500), timeout=10)
            pending -= len(batch)
            for message in batch:
                event = json.loads(message.data)
                said[event["type"]][event.get("run_id", "")] += 1
        return said
    finally:
        await nc.close()


def audit_verify(database_url: str, tenant_id: str) -> tuple[bool, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
    env.update(GRANTLINE_DATABASE_URL=database_url, GRANTLINE_ENVIRONMENT="development")
    done = subprocess.run(
        [sys.executable, "-m", "grantline.cli.main", "audit", "verify", tenant_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip().splitlines()[-1][:200]


@dataclass
class MemorySamples:
    """RSS of each process every few seconds, per pid (a restarted process starts a new series)."""

    samples: dict[tuple[str, int], list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))

    def sample(self, pids: dict[str, int]) -> None:
        now = time.monotonic()
        for name, pid in pids.items():
            try:
                process = psutil.Process(pid)
                rss = process.memory_info().rss
                if name == "postgres":  # the postmaster and its backends
                    rss += sum(child.memory_info().rss for child in process.children(recursive=True))
            except psutil.Error:
                continue
            self.samples[(name, pid)].append((now, rss))

    def trend(self) -> dict[str, tuple[float, float, float] | None]:
        """Per process (its longest-lived pid): (MB after warm-up, MB at the end, growth %).

        Warm-up is the first quarter of the series; the end is the median of the last quarter, so
        one spike does not count as growth. None for a process restarted so that no pid lived through
        half the run (a new process's start-up is not a trend).
        """
        longest: dict[str, list[tuple[float, int]]] = {}
        for (name, _), series in self.samples.items():
            if len(series) > len(longest.get(name, [])):
                longest[name] = series
        most = max((len(series) for series in longest.values()), default=0)
        result: dict[str, tuple[float, float, float] | None] = {}
        for name, series in sorted(longest.items()):
            if len(series) < max(4, most // 2):
                result[name] = None
                continue
            quarter = max(1, len(series) // 4)
            start = statistics.median(rss for _, rss in series[quarter : 2 * quarter])
            end = statistics.median(rss for _, rss in series[-quarter:])
            result[name] = (start / 2**20, end / 2**20, 100.0 * (end - start) / start)
        return result
