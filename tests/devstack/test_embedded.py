"""The embedded servers behind `grantline dev`, and the test fixtures built on them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
import psutil
import psycopg
import pytest
from fixtures.database import DatabaseCleaner
from fixtures.infra import ServerHandle, libpq_url, resolve_infra
from fixtures.messaging import reset_jetstream
from fixtures.waiting import wait_for, wait_for_async
from nats.js import JetStreamContext

from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


async def test_embedded_nats_restart_keeps_port_and_stream_messages(embedded_dir: Path) -> None:
    server = EmbeddedNats(embedded_dir / "nats")
    server.start()
    try:
        url = server.url
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        for i in range(3):
            await js.publish("orders.created", f"{i}".encode())
        await nc.close()

        server.restart()

        assert server.url == url
        assert await _stream_messages(url, "ORDERS") == 3
        assert (embedded_dir / "nats" / "jetstream").is_dir()
        assert "Server is ready" in server.log_file.read_text()
    finally:
        server.stop()
    assert not server.is_running()


async def test_embedded_nats_recovers_from_kill(embedded_dir: Path) -> None:
    server = EmbeddedNats(embedded_dir / "nats", port=free_port())
    server.start()
    try:
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(name="KEEP", subjects=["keep"])
        await nc.jetstream().publish("keep", b"x")
        await nc.close()
        server.kill()
        assert not server.is_running()
        server.start()
        assert await _stream_messages(server.url, "KEEP") == 1
    finally:
        server.stop()


async def test_embedded_nats_uses_config_file_with_our_port(embedded_dir: Path) -> None:
    config = embedded_dir / "nats.conf"
    config.write_text("max_payload: 2MB\nport: 1\n")  # the port must be overridden by ours
    server = EmbeddedNats(embedded_dir / "nats", config_file=config)
    server.start()
    try:
        nc = await nats.connect(server.url)
        assert nc.max_payload == 2 * 1024 * 1024
        await nc.jetstream().account_info()
        await nc.close()
    finally:
        server.stop()


def test_embedded_postgres_keeps_data_across_instances_and_kill(embedded_dir: Path) -> None:
    data_dir = embedded_dir / "pg"
    first = EmbeddedPostgres(data_dir, durable=False)
    first.start()
    try:
        url = first.create_database("app")
        assert first.create_database("app") == url  # idempotent
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (1)")
            assert conn.execute("SHOW max_connections").fetchone() == ("300",)
    finally:
        first.stop()

    # A second server on the same directory reuses it (how `grantline dev` keeps `.grantline/`).
    second = EmbeddedPostgres(data_dir, port=first.port, durable=False)
    second.start()
    try:
        second.kill()  # leaves a stale postmaster.pid behind
        assert (second.pgdata / "postmaster.pid").exists()
        second.start()
        with psycopg.connect(second.url_for("app")) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]
    finally:
        second.stop()
    assert not second.is_running()


def test_embedded_postgres_ignores_pid_file_of_a_dead_process(embedded_dir: Path) -> None:
    server = EmbeddedPostgres(embedded_dir / "pg")  # durable, as `grantline dev` runs it
    server.start()
    server.stop()
    pid_file = server.pgdata / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{server.pgdata}\n0\n{server.port}\n/tmp\n127.0.0.1\n0 0\nready\n")
    server.start()  # our own pid is alive but is not a postgres: the file must not block us
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
    finally:
        server.stop()


ORPHANING_PARENT = """
import sys, time
from pathlib import Path
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres
base = Path(sys.argv[1])
nats = EmbeddedNats(base / "nats"); nats.start()
pg = EmbeddedPostgres(base / "pg", durable=False); pg.start()
print(nats.port, pg.port, nats._process.pid, pg._process.pid, flush=True)
time.sleep(120)
"""


def test_servers_orphaned_by_a_killed_parent_are_replaced(embedded_dir: Path) -> None:
    # `grantline dev` killed with SIGKILL runs no atexit: its servers live on, holding the data dirs.
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_PARENT, str(embedded_dir)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    nats_port, pg_port, nats_pid, pg_pid = map(int, parent.stdout.readline().split())
    parent.kill()
    parent.wait()
    assert psutil.pid_exists(nats_pid) and psutil.pid_exists(pg_pid)

    nats_server = EmbeddedNats(embedded_dir / "nats", port=nats_port)
    pg = EmbeddedPostgres(embedded_dir / "pg", durable=False, port=pg_port)
    nats_server.start()
    pg.start()
    try:
        assert not _alive(nats_pid) and not _alive(pg_pid)
        with psycopg.connect(pg.url) as conn:
            conn.execute("SELECT 1")
    finally:
        nats_server.stop()
        pg.stop()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_resolve_infra_defaults_to_embedded() -> None:
    choice = resolve_infra({})
    assert (choice.nats_mode, choice.postgres_mode) == ("embedded", "embedded")
    assert choice.nats_url is None and choice.postgres_url is None


def test_resolve_infra_prefers_external_urls_over_containers() -> None:
    choice = resolve_infra(
        {
            "GRANTLINE_TEST_INFRA": "containers",
            "GRANTLINE_TEST_NATS_URL": "nats://127.0.0.1:4222",
            "GRANTLINE_TEST_DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:5432/postgres",
        }
    )
    assert choice.nats_mode == "external" and choice.nats_url == "nats://127.0.0.1:4222"
    assert choice.postgres_mode == "external"
    assert choice.postgres_url == "postgresql://u:p@127.0.0.1:5432/postgres"


def test_resolve_infra_containers_for_servers_without_url() -> None:
    choice = resolve_infra({"GRANTLINE_TEST_INFRA": "containers", "GRANTLINE_TEST_NATS_URL": "nats://h:1"})
    assert (choice.nats_mode, choice.postgres_mode) == ("external", "containers")


def test_resolve_infra_rejects_unknown_mode() -> None:
    with pytest.raises(pytest.UsageError):
        resolve_infra({"GRANTLINE_TEST_INFRA": "docker"})


def test_libpq_url_swaps_database_and_drops_driver() -> None:
    assert libpq_url("postgresql+psycopg://a@h:1/postgres?x=1", "db") == "postgresql://a@h:1/db?x=1"


def test_database_url_is_emptied_between_tests(database_url: str, session_database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS fixture_check")
        conn.execute("CREATE TABLE IF NOT EXISTS fixture_check.item (id serial PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE IF NOT EXISTS fixture_check.alembic_version (version_num text)")
        conn.execute("INSERT INTO fixture_check.item (v) VALUES ('a'), ('b')")
        conn.execute("INSERT INTO fixture_check.alembic_version VALUES ('head')")

        DatabaseCleaner(session_database_url).truncate_all()

        assert conn.execute("SELECT count(*) FROM fixture_check.item").fetchone() == (0,)
        assert conn.execute("INSERT INTO fixture_check.item (v) VALUES ('c') RETURNING id").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM fixture_check.alembic_version").fetchone() == (1,)

        # An emptied table whose sequence moved on still starts again at 1.
        conn.execute("DELETE FROM fixture_check.item")
        DatabaseCleaner(session_database_url).truncate_all()
        assert conn.execute("INSERT INTO fixture_check.item (v) VALUES ('d') RETURNING id").fetchone() == (1,)
        conn.execute("DROP SCHEMA fixture_check CASCADE")


def test_database_cleaner_ends_sessions_left_in_a_transaction(session_database_url: str) -> None:
    with psycopg.connect(session_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.locked (v int)")
        conn.execute("INSERT INTO public.locked VALUES (1)")
    leaked = psycopg.connect(session_database_url)
    leaked.execute("SELECT * FROM public.locked")  # holds a lock, idle in transaction
    try:
        DatabaseCleaner(session_database_url).truncate_all()
        assert leaked.closed or leaked.broken or _is_dead(leaked)
    finally:
        leaked.close()
        with psycopg.connect(session_database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE public.locked")


def _is_dead(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


async def test_nats_url_starts_as_migrate_leaves_it(nats_url: str, js: JetStreamContext) -> None:
    async def streams() -> list[str]:
        return sorted(info.config.name for info in await js.streams_info())

    assert await streams() == ["AUDIT", "CONNECTIONS", "RUNNER_OUTCOMES", "RUNS"]
    runs_consumers = {info.name for info in await js.consumers_info("RUNS")}
    assert runs_consumers == {
        "satisfaction-runs-requested",
        "satisfaction-runs-finished",
        "vault-runs-finished",
    }
    await js.add_stream(name="LEFTOVER", subjects=["leftover.>"])
    kv = await js.create_key_value(bucket="settings")
    await kv.put("k", b"v")
    await asyncio.to_thread(reset_jetstream, nats_url)
    assert await streams() == ["AUDIT", "CONNECTIONS", "RUNNER_OUTCOMES", "RUNS"]


async def test_bare_nats_url_starts_without_streams(bare_nats_url: str) -> None:
    nc = await nats.connect(bare_nats_url)
    try:
        assert await nc.jetstream().streams_info() == []
    finally:
        await nc.close()


async def test_session_nats_server_can_restart(nats_server: ServerHandle, nats_url: str) -> None:
    nats_server.require_restart()
    url = nats_server.url
    nats_server.restart()
    assert nats_server.url == url
    nc = await nats.connect(url)
    await nc.jetstream().account_info()
    await nc.close()


def test_wait_for_returns_the_truthy_value_and_retries_assertions() -> None:
    calls: list[int] = []

    def ready() -> int:
        calls.append(1)
        assert len(calls) >= 3, "not yet"
        return len(calls)

    assert wait_for(ready, timeout=5, interval=0) == 3
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for nothing"):
        wait_for(lambda: False, timeout=0.05, message="nothing")


async def test_wait_for_async_accepts_async_predicates() -> None:
    state = {"n": 0}

    async def bump() -> bool:
        state["n"] += 1
        return state["n"] >= 2

    assert await wait_for_async(bump, timeout=5) is True
    with pytest.raises(AssertionError):
        await wait_for_async(lambda: None, timeout=0.05)
