"""What the satisfaction benchmark runs on: embedded NATS and Postgres, a bulk-loaded mirror, the service.

The mirror is loaded with COPY (100,000 users x 10 connections): pushing a million grant events through
the service would measure the consumer, not admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import psycopg

from benchmarks.run_grant_keys import run_grant_environment
from grantline.cli.migrate import MigrateSettings, declare_nats
from grantline.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest, SatisfactionReport
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from grantline.runtime.db.migrations import upgrade
from grantline.runtime.nats.request_reply import RequestFailed, request
from grantline.satisfaction.migrations import MIGRATIONS

TENANT = "bench"
# Ten providers per user: requirements name their apps and categories.
PROVIDERS = (
    "google",
    "github",
    "slack",
    "microsoft",
    "notion",
    "linear",
    "hubspot",
    "dropbox",
    "asana",
    "figma",
)
COPY_COLUMNS = (
    "tenant_id, owner, provider, connection_id, connected, scopes, connected_at, last_grant_event_id,"
    " last_event_at, last_event_id, last_event_kind, account, shared_fallback"
)


@dataclass(frozen=True)
class Servers:
    nats_url: str
    database_url: str


@contextlib.contextmanager
def embedded_servers() -> Iterator[Servers]:
    """Embedded NATS (JetStream) and Postgres in a temporary directory, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="grantline-bench-") as tmp:
        base = Path(tmp)
        os.chmod(base, 0o755)  # the Postgres system user must traverse it when we run as root
        nats_server = EmbeddedNats(base / "nats")
        postgres = EmbeddedPostgres(base / "pg", durable=True)
        nats_server.start()
        postgres.start()
        try:
            # The streams and consumers, as `grantline migrate` declares them (services never do).
            asyncio.run(declare_nats(MigrateSettings(nats_url=nats_server.url, environment="development")))
            with psycopg.connect(postgres.url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            yield Servers(nats_server.url, postgres.url_for("bench"))
        finally:
            postgres.stop()
            nats_server.stop()


def migrate(database_url: str) -> None:
    """The satisfaction schema only (the catalogue is seeded by the migration)."""
    upgrade(MIGRATIONS, database_url)


def connection_id(user: int, provider_index: int) -> str:
    return f"c-{user}-{provider_index}"


def load_mirror(database_url: str, users: int) -> None:
    """COPY ``users`` x 10 connected rows into ``connection_mirror``."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY satisfaction.connection_mirror ({COPY_COLUMNS}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for user in range(users):
                for index, provider in enumerate(PROVIDERS):
                    buffer.write(
                        f"{TENANT}\tuser:u{user}\t{provider}\t{connection_id(user, index)}\tt\t{{}}\t"
                        f"2025-01-01T00:00:00Z\tg-{user}-{index}\t2025-01-01T00:00:00Z\tg-{user}-{index}\t"
                        f"granted\t\\N\tf\n"
                    )
                if user % 5000 == 4999:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.commit()
        cur.execute("ANALYZE satisfaction.connection_mirror")
        conn.commit()
        # Write the load's WAL out now, so the checkpoint it would trigger does not land inside a
        # measured phase (a freshly bulk-loaded database is not the steady state being measured).
        cur.execute("CHECKPOINT")


def service_environment(servers: Servers, workers: int) -> dict[str, str]:
    return {
        **os.environ,
        "GRANTLINE_NATS_URL": servers.nats_url,
        "GRANTLINE_DATABASE_URL": servers.database_url,
        "GRANTLINE_LOG_LEVEL": "WARNING",
        # The benchmark's NATS is a plaintext server on loopback, which production mode refuses.
        "GRANTLINE_ENVIRONMENT": "development",
        **run_grant_environment(),
        "GRANTLINE_HTTP_PORT": str(free_port()),
        "GRANTLINE_DATABASE_DRIVER_POOL_SIZE": str(2 * workers + 8),
        # The service's default; BENCH_RUN_WORKERS tries another number of admission loops.
        "GRANTLINE_RUN_WORKERS": os.environ.get("BENCH_RUN_WORKERS", "2"),
        "GRANTLINE_CHECK_WORKERS": str(workers),
        "GRANTLINE_CONNECTION_WORKERS": "2",
        "GRANTLINE_EVENT_WORKERS": "2",
    }


@contextlib.contextmanager
def service_process(servers: Servers, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """``grantline run satisfaction`` as its own process (its own core), stopped with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "grantline.cli.main", "run", "satisfaction"],
        env=service_environment(servers, workers),
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def wait_until_serving(nats_url: str, timeout: float = 60) -> None:
    """Poll ``satisfaction.check`` until the service answers."""
    nc = await nats.connect(nats_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        probe = SatisfactionCheckRequest(tenant_id=TENANT, user_id="u0", requirements=["github"])
        while True:
            try:
                reply = await request(nc, f"{SUBJECT_CHECK}.{TENANT}", probe, SatisfactionReport, timeout=1)
                if isinstance(reply, SatisfactionReport) and reply.is_satisfied:
                    return
            except RequestFailed:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the satisfaction service did not start")
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
