"""`uv run python -m benchmarks.refresh`: the refresh schedule at scale.

1. Claim cost at 10k, 100k and 1M scheduled rows (COPY-loaded), with EXPLAIN (ANALYZE, BUFFERS).
2. Sustained refreshes per second end to end: 2 refresher processes (`grantline run refresher`), a
   backlog of due connections, real refresh requests to the sandbox provider (its own process) over
   HTTP, answered by the real vault (`grantline run vault`, connections sealed as it stores them:
   real_vault.py). BENCH_VAULT=stand-in runs a stand-in instead (vault_stand_in.py: the refreshers'
   own ceiling, without the vault's storage and crypto) and BENCH_VAULT=both runs the two in turn.
3. Schedule lag (refresh time minus due time) p99 at 50% of each rate, and how many tokens expired.
Everything runs on this machine: embedded Postgres (durable) and NATS, started here. Writes README.md.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psycopg
import uvloop

from benchmarks.refresh import claim_cost
from benchmarks.refresh.cpu_usage import CpuMeter
from benchmarks.refresh.real_vault import RealVault
from benchmarks.refresh.report import write_readme
from benchmarks.refresh.vault_stand_in import VaultStandIn
from grantline.cli.migrate import MigrateSettings, declare_nats, migrate_all
from grantline.contract import encode_message
from grantline.contract.vault import SUBJECT_REFRESH, RefreshRequest
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port

HERE = Path(__file__).resolve().parent
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "10000"))
LAG_SECONDS = float(os.environ.get("BENCH_LAG_SECONDS", "20"))
GRANTLINE = str(Path(sys.executable).parent / "grantline")


def spawn_refresher(nats_url: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRANTLINE_NATS_URL": nats_url,
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_HTTP_PORT": str(free_port()),
        "GRANTLINE_LOG_LEVEL": "WARNING",
        # The benchmark's NATS is a plaintext server on loopback, which production mode refuses.
        "GRANTLINE_ENVIRONMENT": "development",
    }
    argv = [GRANTLINE, "run", "refresher"]
    profile = os.environ.get("BENCH_PROFILE_REFRESHER")
    if profile and not Path(profile).exists():
        # BENCH_PROFILE_REFRESHER=<file>: the first refresher runs under cProfile and dumps there on stop.
        Path(profile).touch()
        code = (
            "import asyncio, cProfile, uvloop; from grantline.refresher.app import create_runtime;"
            " uvloop.install(); runtime = create_runtime(); profiler = cProfile.Profile();"
            " profiler.enable(); asyncio.run(runtime.serve()); profiler.disable();"
            f" profiler.dump_stats({profile!r})"
        )
        argv = [sys.executable, "-c", code]
    return subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def spawn_sandbox(port: int, log: Path) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio, uvloop; from grantline.sandbox import serve; uvloop.install();"
        f" asyncio.run(serve(port={port}))"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def schedule(database_url: str, rows: list[tuple[str, datetime, datetime]]) -> None:
    """Insert scheduled rows (connection id, due, expires) as the consumer would after the grants."""
    stamp = datetime.now(UTC) - timedelta(hours=1)
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY refresher.refresh_schedule ({claim_cost.COPY_COLUMNS}) FROM STDIN") as copy:
            for cid, due, expires in rows:
                copy.write_row(
                    (
                        cid,
                        "bench",
                        "user:bench",
                        "sandbox",
                        "scheduled",
                        expires,
                        due,
                        due,
                        0,
                        stamp,
                        uuid.uuid4(),
                    )
                )
        conn.commit()


async def grant_all(vault: VaultStandIn, ids: list[str], concurrency: int = 32) -> None:
    queue = list(ids)

    async def worker() -> None:
        while queue:
            await vault.grant(queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1)]


# Which vault answers vault.refresh: the real one, the stand-in (vault_stand_in.py: the refreshers'
# own ceiling, without the vault's storage and crypto), or both, one after the other.
VAULTS = {"both": ("real", "stand-in"), "real": ("real",), "stand-in": ("stand-in",)}[
    os.environ.get("BENCH_VAULT", "real")
]


async def end_to_end(
    nats_url: str, database_url: str, workdir: Path, infra_pids: dict[str, list[int]], *, vault_kind: str
) -> dict[str, Any]:
    port = free_port()
    sandbox = spawn_sandbox(port, workdir / "sandbox.log")
    refreshers = [spawn_refresher(nats_url, database_url, workdir / f"refresher-{i}.log") for i in range(2)]
    processes = [*refreshers, sandbox]
    nc = await nats.connect(nats_url)
    sandbox_url = f"http://127.0.0.1:{port}"
    stand_in: VaultStandIn | None = None
    try:
        await wait_until(lambda: _ok(f"{sandbox_url}/_sandbox/health"), 30, "sandbox")
        await wait_until(lambda: _consumer(nc), 60, "refreshers")
        # The stand-in always does the grants at the sandbox; it answers vault.refresh only without
        # the real vault.
        stand_in = VaultStandIn(nc, sandbox_url, skip_provider=os.environ.get("BENCH_SKIP_PROVIDER") == "1")
        await stand_in.register_client()
        real = RealVault(database_url, workdir) if vault_kind == "real" else None
        vault_pids: dict[str, list[int]] = {}
        if real is not None:
            real.seed_provider_app()
            vault = real.spawn(nats_url, sandbox_url, workdir / "vault.log")
            processes.append(vault)
            vault_pids["vault"] = [vault.pid]
            await wait_until(lambda: _vault_answers(nc), 60, "vault")
        else:
            await stand_in.start()
        progress = Progress(stand_in, real)

        backlog = [f"{vault_kind}-backlog-{n}" for n in range(BACKLOG)]
        started = time.perf_counter()
        await grant_all(stand_in, backlog)
        if real is not None:
            real.store({cid: stand_in.held[cid] for cid in backlog})
        print(
            f"  granted {BACKLOG:,} connections at the sandbox in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        now = datetime.now(UTC)
        # The rows carry the sandbox tokens' real expiry, so only_if_expiring_before lets them refresh.
        meter = CpuMeter(
            {
                **infra_pids,
                "sandbox": [sandbox.pid],
                "refresher 1": [refreshers[0].pid],
                "refresher 2": [refreshers[1].pid],
                **vault_pids,
            }
        )
        since = datetime.now(UTC)
        schedule(database_url, [(cid, now, _expiry(stand_in, cid)) for cid in backlog])
        meter.restart()
        started = time.perf_counter()
        timeout = float(os.environ.get("BENCH_TIMEOUT", "600"))
        await wait_until(lambda: progress.done(since, BACKLOG), timeout, "backlog")
        elapsed = time.perf_counter() - started
        cpu = meter.since()
        load = os.getloadavg()
        rate = BACKLOG / elapsed
        for name, seconds in cpu.items():
            print(
                f"    {name}: {seconds:.1f} CPU s, {seconds / BACKLOG * 1000:.2f} CPU ms per refresh",
                flush=True,
            )
        print(f"    load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        print(
            f"  backlog of {BACKLOG:,} due refreshes done in {elapsed:.1f} s: {rate:.0f} refreshes/s",
            flush=True,
        )

        target = rate / 2
        count = int(target * LAG_SECONDS)
        paced = [f"{vault_kind}-paced-{n}" for n in range(count)]
        await grant_all(stand_in, paced)
        if real is not None:
            real.store({cid: stand_in.held[cid] for cid in paced})
        since = datetime.now(UTC)
        base = stand_in.refreshes
        begin = datetime.now(UTC) + timedelta(seconds=3)
        dues = {cid: begin + timedelta(seconds=LAG_SECONDS * i / count) for i, cid in enumerate(paced)}
        expiries = {cid: _expiry(stand_in, cid) for cid in paced}
        schedule(database_url, [(cid, dues[cid], expiries[cid]) for cid in paced])
        await wait_until(lambda: progress.done(since, count, base), 120 + LAG_SECONDS, "paced")
        refreshed = progress.refreshed_at(paced, since)
        lags = [(refreshed[cid] - dues[cid]).total_seconds() for cid in paced]
        expired = sum(1 for cid in paced if refreshed[cid] >= expiries[cid])
        errors = stand_in.errors if real is None else 0
        print(
            f"  {count:,} refreshes due at {target:.0f}/s over {LAG_SECONDS:.0f} s:"
            f" lag p50 {percentile(lags, 50):.3f} s, p99 {percentile(lags, 99):.3f} s, max {max(lags):.3f} s;"
            f" expired {expired}; errors {errors}",
            flush=True,
        )
        return {
            "rate": rate,
            "elapsed": elapsed,
            "target": target,
            "count": count,
            "lag_p50": percentile(lags, 50),
            "lag_p99": percentile(lags, 99),
            "lag_max": max(lags),
            "lag_mean": statistics.mean(lags),
            "expired": expired,
            "errors": errors,
            "cpu": cpu,
            "load": load,
            "vault": vault_kind,
        }
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        raise
    finally:
        if stand_in is not None:
            await stand_in.aclose()
        await nc.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


class Progress:
    """How far the refreshes got: counted by the stand-in, or read from the real vault's rows."""

    def __init__(self, stand_in: VaultStandIn, real: RealVault | None) -> None:
        self._stand_in = stand_in
        self._real = real

    async def done(self, since: datetime, wanted: int, base: int = 0) -> bool:
        if self._real is None:
            return self._stand_in.refreshes >= base + wanted
        # A query every poll: light next to hundreds of refreshes a second.
        await asyncio.sleep(0.2)
        return await asyncio.to_thread(self._real.refreshed_count, since) >= wanted

    def refreshed_at(self, connection_ids: list[str], since: datetime) -> dict[str, datetime]:
        if self._real is None:
            return {cid: self._stand_in.refreshed_at[cid] for cid in connection_ids}
        return self._real.refreshed_at(connection_ids, since)


def _expiry(vault: VaultStandIn, connection_id: str) -> datetime:
    expires_at = vault.held[connection_id].expires_at
    assert expires_at is not None
    return expires_at


async def _ok(url: str) -> bool:
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).status == 200)


async def _consumer(nc: nats.NATS) -> bool:
    info = await nc.jetstream().consumer_info("CONNECTIONS", "refresher-schedule")
    return info is not None


async def _vault_answers(nc: nats.NATS) -> bool:
    probe = RefreshRequest(tenant_id="bench", connection_id="probe")
    await nc.request(SUBJECT_REFRESH, encode_message(probe), timeout=2)
    return True


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-refresh-", dir=os.environ.get("BENCH_WORKDIR")) as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        # Durable, as in production: fsync and synchronous commit on.
        postgres = EmbeddedPostgres(workdir / "pg", durable=True)
        nats_server = EmbeddedNats(workdir / "nats")
        postgres.start()
        nats_server.start()
        try:
            database_url = postgres.create_database("grantline")
            migrate_all(database_url, ["refresher", "vault"])
            asyncio.run(
                declare_nats(MigrateSettings(nats_url=nats_server.url, environment="development"))
            )  # streams and consumers
            print("claim cost:", flush=True)
            sizes = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(","))
            claims = claim_cost.run(database_url, sizes)
            infra = {"postgres": [postgres._process.pid or 0], "nats": [nats_server._process.pid or 0]}
            runs = []
            for kind in VAULTS:
                vault = "the real vault" if kind == "real" else "a vault.refresh stand-in"
                print(f"end to end ({vault}, real sandbox refreshes):", flush=True)
                runs.append(await end_to_end(nats_server.url, database_url, workdir, infra, vault_kind=kind))
            write_readme(claims, runs, backlog=BACKLOG, lag_seconds=LAG_SECONDS)
            print(f"wrote {HERE / 'README.md'}")
        finally:
            nats_server.stop()
            postgres.stop()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main())
