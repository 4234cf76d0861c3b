"""Postgres restarted and failed over under load, JetStream recreated empty: every service recovers alone.

Out of the default run: set ``GRANTLINE_TEST_FAULTS=1`` (docs/operations.md, "Testing failures").
Every service runs as its own process (``grantline.cli.service_processes``) on a NATS and a Postgres
this module owns, so the test can stop, cut and wipe them while runs are being requested. Each test
then checks that no service process was restarted (same pids, still running), that ``/readyz``
reported the outage while it lasted, that every run requested during it got exactly one answer, and
that every outbox drained.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import nats
import psycopg
import pytest
from e2e_leak_scan import read_streams
from fixtures.infra import server_directory
from fixtures.waiting import wait_for, wait_for_async
from psycopg import sql
from test_e2e_connection_lifecycle import _events

from grantline.cli.service_processes import SERVICES, ServiceProcesses
from grantline.contract import RunAdmitted
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres
from grantline.runner import RunnerClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.faults,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("GRANTLINE_TEST_FAULTS") != "1",
        reason="whole-stack fault test: set GRANTLINE_TEST_FAULTS=1",
    ),
]

RECOVERY_TIMEOUT = 90.0
OUTBOX_SCHEMAS = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"


@dataclass
class Stack:
    nats: EmbeddedNats
    postgres: EmbeddedPostgres
    services: ServiceProcesses


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with server_directory("outages") as root:
        nats_server = EmbeddedNats(root / "nats")
        postgres = EmbeddedPostgres(root / "postgres")
        nats_server.start()
        postgres.start()
        services = ServiceProcesses(
            root / "grantline", nats_server.url, postgres.create_database("grantline")
        )
        try:
            services.start()
            yield Stack(nats_server, postgres, services)
        finally:
            services.stop()
            postgres.stop()
            nats_server.stop()


@pytest.fixture
async def runner(stack: Stack) -> AsyncIterator[RunnerClient]:
    nc = await nats.connect(stack.nats.url, connect_timeout=5, max_reconnect_attempts=-1)
    client = RunnerClient(nc, timeout=RECOVERY_TIMEOUT)
    yield client
    await client.close()
    await nc.close()


@dataclass
class RunLoad:
    """Runs requested back to back (no requirements: each is admitted) while faults happen."""

    runner: RunnerClient
    tenant_id: str
    requested: list[str] = field(default_factory=list)
    answered: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self) -> None:
        run_id = f"run-{uuid.uuid4()}"
        began = time.monotonic()
        try:
            outcome = await self.runner.request_run(self.tenant_id, run_id, "ada", "outage-app")
        except Exception as error:  # a publish refused while NATS itself is away
            self.failures.append(f"{run_id}: {type(error).__name__}")
            return
        self.requested.append(run_id)
        assert isinstance(outcome, RunAdmitted), outcome
        self.answered[run_id] = time.monotonic() - began

    async def run(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            task = asyncio.create_task(self._one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(0.05)  # the load's pace (about 20 runs/s), not a wait for work
        await asyncio.gather(*pending)

    def stop(self) -> None:
        self._stop.set()


async def _all_not_ready(stack: Stack, dependency: str, *, saying: str = "") -> dict[str, object]:
    """Wait until every service's /readyz answers 503 with ``dependency`` down (and its reason
    ``saying`` so, when given)."""
    bodies: dict[str, object] = {}

    def down() -> bool:
        for name in SERVICES:
            code, body = stack.services.readiness(name)
            if code != 503 or body["dependencies"].get(dependency) is not False:  # type: ignore[union-attr]
                return False
            if saying not in str(body.get("reasons", {}).get(dependency, "")):  # type: ignore[union-attr]
                return False
            bodies[name] = body
        return True

    await asyncio.to_thread(wait_for, down, timeout=RECOVERY_TIMEOUT, interval=0.2)
    return bodies


async def _recovered(stack: Stack, pids: dict[str, int]) -> float:
    seconds = await asyncio.to_thread(stack.services.wait_ready, list(SERVICES), RECOVERY_TIMEOUT)
    assert stack.services.pids() == pids and all(stack.services.alive().values()), "a service was restarted"
    return seconds


def _outbox_rows(database_url: str) -> dict[str, int]:
    """Rows still waiting in each service's outbox (every schema with an ``outbox`` table)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        schemas = [row[0] for row in conn.execute(OUTBOX_SCHEMAS)]
        assert len(schemas) >= 5, schemas
        return {
            schema: conn.execute(
                sql.SQL("SELECT count(*) FROM {}.outbox").format(sql.Identifier(schema))
            ).fetchone()[0]  # type: ignore[index]
            for schema in schemas
        }


async def _each_run_answered_once(stack: Stack, load: RunLoad) -> None:
    assert load.requested and not load.failures, load.failures
    assert set(load.answered) == set(load.requested)
    await asyncio.to_thread(
        wait_for,
        lambda: not any(_outbox_rows(stack.services.database_url).values()),
        timeout=RECOVERY_TIMEOUT,
        message="outboxes did not drain",
    )
    streams = await read_streams(stack.nats.url, None, None, "_INBOX", streams=["RUNS"])  # type: ignore[arg-type]
    admitted: dict[str, int] = {}
    for event in _events(streams, "RUNS"):
        if event["type"] == "runs.admitted":
            admitted[event["run_id"]] = admitted.get(event["run_id"], 0) + 1
    assert {run_id: admitted.get(run_id, 0) for run_id in load.requested} == dict.fromkeys(load.requested, 1)


async def test_postgres_restart_under_load(stack: Stack, runner: RunnerClient) -> None:
    pids = stack.services.pids()
    load = RunLoad(runner, stack.services.tenant_id)
    running = asyncio.create_task(load.run())
    await wait_for_async(lambda: len(load.answered) >= 10, timeout=RECOVERY_TIMEOUT)
    await asyncio.to_thread(stack.postgres.stop)
    try:
        bodies = await _all_not_ready(stack, "postgres")
    finally:
        await asyncio.to_thread(stack.postgres.start)
    recovered_in = await _recovered(stack, pids)
    answered_before = len(load.answered)
    await wait_for_async(lambda: len(load.answered) >= answered_before + 10, timeout=RECOVERY_TIMEOUT)
    load.stop()
    await running
    print(f"postgres restart: services ready {recovered_in:.1f}s after Postgres; {len(load.requested)} runs")
    assert all(body["status"] == "not_ready" for body in bodies.values())  # type: ignore[index]
    await _each_run_answered_once(stack, load)


async def test_postgres_failover_connections_cut_then_server_back_on_its_address(
    stack: Stack, runner: RunnerClient
) -> None:
    pids = stack.services.pids()
    load = RunLoad(runner, stack.services.tenant_id)
    running = asyncio.create_task(load.run())
    await wait_for_async(lambda: len(load.answered) >= 10, timeout=RECOVERY_TIMEOUT)
    # A failover as clients see it: every session cut at once, then the primary gone, then a server
    # back on the same address (here: the same data, as a promoted replica would hold).
    with psycopg.connect(stack.services.database_url, autocommit=True) as conn:
        cut = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] > 0
    await asyncio.to_thread(stack.postgres.kill)
    try:
        await _all_not_ready(stack, "postgres")
    finally:
        await asyncio.to_thread(stack.postgres.start)
    recovered_in = await _recovered(stack, pids)
    answered_before = len(load.answered)
    await wait_for_async(lambda: len(load.answered) >= answered_before + 10, timeout=RECOVERY_TIMEOUT)
    load.stop()
    await running
    print(f"failover: every service ready {recovered_in:.1f}s after Postgres; {len(load.requested)} runs")
    await _each_run_answered_once(stack, load)


async def test_jetstream_recreated_empty_recovers_after_migrate(stack: Stack, runner: RunnerClient) -> None:
    pids = stack.services.pids()
    # A node replaced: the server comes back on its address with an empty store.
    await asyncio.to_thread(stack.nats.stop)
    shutil.rmtree(stack.nats.store_dir, ignore_errors=True)
    await asyncio.to_thread(stack.nats.start)
    # Readiness says what is missing and what to run, once the services are connected again.
    await _all_not_ready(stack, "jetstream", saying="run `grantline migrate`")

    migrated = await asyncio.to_thread(stack.services.migrate)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    recovered_in = await _recovered(stack, pids)
    load = RunLoad(runner, stack.services.tenant_id)
    running = asyncio.create_task(load.run())
    await wait_for_async(lambda: len(load.answered) >= 10, timeout=RECOVERY_TIMEOUT)
    load.stop()
    await running
    print(f"jetstream recreated: every service ready {recovered_in:.1f}s after `grantline migrate`")
    await _each_run_answered_once(stack, load)
