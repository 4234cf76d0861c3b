"""`uv run python -m benchmarks.resolve`: vault.resolve latency and throughput beside the raw floor.

Starts an embedded NATS and Postgres, migrates, seeds one tenant with one connection, runs the vault
(`grantline run vault`) and the raw floor as separate processes, then measures from this process:
p50/p99 of one sequential client, and throughput with 64 concurrent clients. Every resolve carries a
run grant; two vault rows: the same grant on every call (a run's tool calls: verified once, then
remembered) and a new grant on every call (each one verified: the worst case). Writes README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import psycopg
import uvloop

from benchmarks.process_cpu import sample
from benchmarks.resolve.raw_floor import SUBJECT as RAW_SUBJECT
from benchmarks.resolve.raw_floor import seed as seed_raw
from grantline.cli.migrate import MigrateSettings, declare_nats, migrate_all
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres
from grantline.runtime.run_grants import RunGrantSigner, new_signing_key, public_key_set
from grantline.vault.domain import (
    Keyring,
    SealContext,
    SecretField,
    generate_data_key,
    seal,
    wrap_data_key,
)

HERE = Path(__file__).resolve().parent
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "3000"))
CONCURRENCY = 64
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
FRESH_GRANTS = int(os.environ.get("BENCH_FRESH_GRANTS", "60000"))
TENANT = "bench-tenant"
RESOLVE_SUBJECT = f"vault.resolve.{TENANT}"
GRANT_KEYS = {"keys": [new_signing_key("bench-1")]}
RAW = json.dumps({"id": "t1"}).encode()


def resolve_payloads(count: int) -> list[bytes]:
    """Resolve requests, each with a grant of its own run (what satisfaction signs at admission)."""
    signer = RunGrantSigner(GRANT_KEYS, active_kid=None, ttl_seconds=3600)
    return [
        json.dumps(
            {
                "grant": signer.issue(
                    tenant_id=TENANT,
                    run_id=f"run-{index}",
                    user_id="alice",
                    app_id="app-bench",
                    providers={"sandbox": ()},
                    is_test=False,
                ),
                "provider": "sandbox",
                "scopes": ["read"],
                "tool": "search",
            }
        ).encode()
        for index in range(count)
    ]


def seed_vault(database_url: str, keyring: Keyring) -> None:
    """One tenant, one provider app, one active connection whose token expires in a day."""
    data_key = generate_data_key()
    wrapped = wrap_data_key(keyring, TENANT, data_key)
    context = SealContext.for_connection(
        TENANT, "conn-bench", owner="user:alice", provider="sandbox", field=SecretField.ACCESS_TOKEN
    )
    sealed = seal(data_key, context=context, plaintext="sbx_at_bench_" + secrets.token_urlsafe(24))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vault.data_keys (tenant_id, data_key_id, master_key_id, wrapped) "
            "VALUES (%s, %s, %s, %s)",
            (TENANT, wrapped.data_key_id, wrapped.master_key_id, wrapped.ciphertext),
        )
        conn.execute(
            "INSERT INTO vault.provider_apps (id, tenant_id, provider, client_id) "
            "VALUES ('pa-bench', %s, 'sandbox', 'c')",
            (TENANT,),
        )
        conn.execute(
            "INSERT INTO vault.connections (id, tenant_id, owner, provider, provider_app_id, auth_kind, "
            "status, scopes, is_default, expires_at, access_token) VALUES ('conn-bench', %s, 'user:alice', "
            "'sandbox', 'pa-bench', 'oauth2', 'active', %s, true, %s, %s)",
            (TENANT, ["profile", "read"], datetime.now(UTC) + timedelta(days=1), sealed),
        )


async def sequential(nc: nats.NATS, subject: str, payloads: list[bytes], count: int) -> list[float]:
    """Latencies (ms) of `count` requests one after another (cycling through `payloads`)."""
    latencies = []
    for index in range(200):  # warm-up
        await nc.request(subject, payloads[-1 - index % len(payloads)], timeout=5)
    for index in range(count):
        started = time.perf_counter()
        reply = await nc.request(subject, payloads[index % len(payloads)], timeout=5)
        latencies.append((time.perf_counter() - started) * 1000)
        if b"error" in reply.data[:10]:
            raise RuntimeError(reply.data.decode())
    return sorted(latencies)


async def concurrent(nc: nats.NATS, subject: str, payloads: list[bytes]) -> tuple[float, int, int]:
    """(requests per second, successes, errors) of 64 clients for DURATION seconds."""
    ok = errors = sent = 0
    deadline = time.perf_counter() + DURATION

    async def client() -> None:
        nonlocal ok, errors, sent
        while time.perf_counter() < deadline:
            sent += 1
            try:
                reply = await nc.request(subject, payloads[sent % len(payloads)], timeout=5)
            except Exception:
                errors += 1
                continue
            if reply.data.startswith(b'{"error"'):
                errors += 1
            else:
                ok += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return ok / (time.perf_counter() - started), ok, errors


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


async def measure(nats_url: str, pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """Sequential then concurrent figures, with CPU per request, for each responder in turn."""
    nc = await nats.connect(nats_url, pending_size=64 * 1024 * 1024)
    results: dict[str, dict[str, float]] = {}
    # Enough distinct grants that none repeats in the fresh-grant phases (the vault remembers 65,536).
    fresh = resolve_payloads(FRESH_GRANTS)
    for name, subject, payloads in (
        ("raw floor", RAW_SUBJECT, [RAW]),
        ("vault.resolve, one grant per run", RESOLVE_SUBJECT, fresh[:1]),
        ("vault.resolve, a new grant each call", RESOLVE_SUBJECT, fresh[1:]),
    ):
        pid = pids["raw floor" if name == "raw floor" else "vault.resolve"]
        before = sample("responder", pid)
        latencies = await sequential(nc, subject, payloads, SEQUENTIAL)
        between = sample("responder", pid)
        rate, ok, errors = await concurrent(nc, subject, payloads[SEQUENTIAL + 200 :] or payloads)
        after = sample("responder", pid)
        results[name] = {
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "rps_64": rate,
            "ok": ok,
            "errors": errors,
            **{f"seq_{k}": v for k, v in before.per_item(between, SEQUENTIAL + 200, unit=1e6).items()},
            **{f"conc_{k}": v for k, v in between.per_item(after, ok + errors, unit=1e6).items()},
        }
    await nc.close()
    return results


def wait_ready(process: subprocess.Popen[bytes], nats_url: str, subject: str, payload: bytes) -> None:
    async def probe() -> None:
        nc = await nats.connect(nats_url)
        deadline = time.monotonic() + 60
        while True:
            try:
                await nc.request(subject, payload, timeout=1)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{subject} responder did not start") from None
                await asyncio.sleep(0.2)
        await nc.close()

    asyncio.run(probe())


def report(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| what | sequential p50 (ms) | sequential p99 (ms) | 64 concurrent (req/s) | errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['rps_64']:,.0f} | "
            f"{int(figures['errors'])} |"
        )
    lines += [
        "",
        "CPU per request (microseconds of CPU time, user + system):",
        "",
        "| what | phase | responder | Postgres | NATS server | client | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, figures in results.items():
        for phase, label in (("seq", "sequential"), ("conc", "64 concurrent")):
            parts = [figures[f"{phase}_{part}"] for part in ("responder", "postgres", "nats", "client")]
            cells = " | ".join(f"{value:.0f}" for value in [*parts, sum(parts)])
            lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        root = Path(tmp)
        nats_server = EmbeddedNats(root / "nats")
        postgres = EmbeddedPostgres(root / "postgres", durable=False)
        nats_server.start()
        postgres.start()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            database_url = postgres.create_database("bench")
            migrate_all(database_url)
            asyncio.run(
                declare_nats(MigrateSettings(nats_url=nats_server.url, environment="development"))
            )  # streams and consumers
            keyring = Keyring.from_bytes("mk-bench", {"mk-bench": secrets.token_bytes(32)})
            (root / "keyring.json").write_text(keyring.to_json())
            seed_vault(database_url, keyring)
            seed_raw(database_url)
            env = {
                **os.environ,
                "GRANTLINE_NATS_URL": nats_server.url,
                "GRANTLINE_DATABASE_URL": database_url,
                "GRANTLINE_MASTER_KEYRING_FILE": str(root / "keyring.json"),
                "GRANTLINE_HTTP_PORT": "0",
                "GRANTLINE_LOG_LEVEL": "WARNING",
                "GRANTLINE_ENVIRONMENT": "development",
                "GRANTLINE_SANDBOX_URL": "http://127.0.0.1:9",
                "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS": json.dumps(public_key_set(GRANT_KEYS)),
            }
            vault = subprocess.Popen([sys.executable, "-m", "grantline.cli.main", "run", "vault"], env=env)
            raw = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.resolve.raw_floor", nats_server.url, database_url]
            )
            processes += [vault, raw]
            wait_ready(raw, nats_server.url, RAW_SUBJECT, RAW)
            wait_ready(vault, nats_server.url, RESOLVE_SUBJECT, resolve_payloads(1)[0])
            uvloop.install()
            pids = {"raw floor": raw.pid, "vault.resolve": vault.pid}
            results = asyncio.run(measure(nats_server.url, pids))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            postgres.stop()
            nats_server.stop()
    table = report(results)
    summary = ratios(results)
    print(table, summary, sep="\n\n")
    write_readme(table, summary, load_before)


def ratios(results: dict[str, dict[str, float]]) -> str:
    """The vault's figures as multiples of the floor's, which transfer better than absolute ones."""
    vault, floor = results["vault.resolve, one grant per run"], results["raw floor"]
    return (
        f"Vault / floor in this run: sequential p50 x{vault['p50_ms'] / floor['p50_ms']:.2f}; "
        f"throughput x{vault['rps_64'] / floor['rps_64']:.2f}; CPU per request at 64 concurrent: "
        f"responder x{vault['conc_responder'] / floor['conc_responder']:.2f}, all processes "
        f"x{_total(vault, 'conc') / _total(floor, 'conc'):.2f}."
    )


def _total(figures: dict[str, float], phase: str) -> float:
    return sum(figures[f"{phase}_{part}"] for part in ("responder", "postgres", "nats", "client"))


def write_readme(table: str, summary: str, load_before: float) -> None:
    load = os.getloadavg()[0]
    machine = (
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}); "
        f"1-minute load average {load_before:.1f} when it started, {load:.1f} when it finished"
    )
    notes = (HERE / "NOTES.md").read_text() if (HERE / "NOTES.md").exists() else ""
    text = f"""# Benchmark: `vault.resolve`

`uv run python -m benchmarks.resolve` (about a minute; `BENCH_SEQUENTIAL`, `BENCH_SECONDS` shorten it).

What it does: starts an embedded NATS (JetStream) and an embedded Postgres, runs the migrations,
seeds one tenant (data key wrapped by a master key), one provider app and one active connection
with a token valid for a day, then starts two responders as separate processes:

- the vault itself (`grantline run vault`, uvloop), answering `vault.resolve.<tenant>` through its
  hot path: a raw nats-py queue subscription, the run grant's check (an Ed25519 JWT verified with
  PyJWT, or found among the grants verified before), micro-batched psycopg lookups (one prepared
  `unnest` join per batch reading the run's finished flag and the candidate connections, one scalar
  prepared query for a batch of one, 3 connections), the in-memory data key cache, an AES-GCM open,
  and the buffered audit record (one statement per flush to the outbox, published to JetStream by the
  outbox relay in the same process during the run);
- the raw floor: a bare nats-py responder doing one primary-key select (psycopg, one connection,
  unbatched) and one AES-GCM decrypt per request, and no audit record.

The vault is measured twice: with one grant on every call (the tool calls of one run: the grant is
verified on the first call and remembered until it expires) and with a new grant on every call (every
call pays a signature check: the worst case, as if each run made a single tool call).

From this process (nats-py, uvloop, the same lean client for both) it measures, for each:
{SEQUENTIAL} sequential requests after a warm-up (p50, p99), then {CONCURRENCY} concurrent clients
for {DURATION:.0f} s (requests/s, errors). Client, NATS, Postgres and both responders share the
machine. Around each phase it reads the CPU time (user + system, from the kernel) of the responder,
of every Postgres process, of the NATS server and of the client, and divides by the requests served:
CPU per request does not depend on what the neighbours do as much as wall-clock figures do.

Machine: {machine}; measured {datetime.now(UTC):%Y-%m-%d}.

{table}

{summary}

Targets: sequential p50 <= 1 ms; >= 5,000 resolves/s at 64 concurrent with no error, with the
run grant checked on every call.
{notes}"""
    (HERE / "README.md").write_text(text)


if __name__ == "__main__":
    main()
