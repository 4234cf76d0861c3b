"""`uv run python -m benchmarks.soak [--minutes 10]`: a bounded soak with faults on a schedule.

Starts an embedded NATS and Postgres (durable) and every service as its own process
(``grantline.cli.service_processes``), drives the mixed load of load.py, injects the faults of
faults.py, samples every process's RSS, then runs the ledger checks of ledger.py and prints one table.
With ``--readme`` it also writes the table into benchmarks/soak/README.md. Exit code 0 when every check
passed, no error happened outside a fault window, and nothing was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats

from benchmarks.soak.faults import KINDS, FaultSchedule
from benchmarks.soak.ledger import (
    CONNECTED_MIRROR_ROWS,
    EXPIRED_WHILE_SCHEDULED,
    SATISFIED_BUT_HELD,
    MemorySamples,
    audit_verify,
    count,
    outbox_rows,
    run_events,
)
from benchmarks.soak.load import PROVIDER, Load
from benchmarks.soak.report import render_table, write_readme
from grantline.cli.service_processes import ServiceProcesses
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres
from grantline.runner import RunnerClient

TOKEN_LIFETIME_SECONDS = 30
# The soak compresses time: tokens live 30 s instead of an hour, so every delay the services scale to
# token lifetimes is compressed too. The refresher renews 10 s before expiry (every connection about
# twice a minute); the vault refreshes inline only in a token's last 5 s (production: 60 s of an hour);
# the refresher's backoff after provider failures tops out at 5 s and its circuit stays open 3 s
# (production: 300 s and 15 s, for tokens that live an hour).
SERVICE_SETTINGS = {
    "GRANTLINE_REFRESH_PROVIDER_MARGINS": '{"sandbox": 10}',
    "GRANTLINE_REFRESH_MARGIN_SECONDS": "5",
    "GRANTLINE_REFRESH_RETRY_MAX_SECONDS": "5",
    "GRANTLINE_REFRESH_BREAKER_OPEN_SECONDS": "3",
    "GRANTLINE_REFRESH_JITTER_SECONDS": "0",
    "GRANTLINE_REFRESH_POLL_SECONDS": "0.5",
    "GRANTLINE_LOG_LEVEL": "INFO",
}
SAMPLE_SECONDS = 5.0


async def soak(root: Path, minutes: float, seed: int) -> dict[str, object]:
    nats_server, postgres = EmbeddedNats(root / "nats"), EmbeddedPostgres(root / "postgres")
    nats_server.start()
    postgres.start()
    services = ServiceProcesses(
        root / "grantline", nats_server.url, postgres.create_database("grantline"), SERVICE_SETTINGS
    )
    try:
        services.start()
        return await _drive(nats_server, postgres, services, minutes, seed)
    finally:
        services.stop()
        postgres.stop()
        nats_server.stop()


async def _drive(
    nats_server: EmbeddedNats,
    postgres: EmbeddedPostgres,
    services: ServiceProcesses,
    minutes: float,
    seed: int,
) -> dict[str, object]:
    async def quiet(_: Exception) -> None:
        """The runner's connection errors are expected during NATS faults; outcomes are counted instead."""

    nc = await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=-1, error_cb=quiet)
    runner = RunnerClient(nc, timeout=30)
    headers = {"Authorization": f"Bearer {services.api_key}"}
    async with (
        httpx.AsyncClient(base_url=services.api_url, headers=headers, timeout=30) as api,
        httpx.AsyncClient(timeout=30) as browser,
        httpx.AsyncClient(base_url=services.sandbox_url, timeout=30) as sandbox,
    ):
        client_id, secret = "soak-client", "sbx_secret_soak_" + os.urandom(12).hex()
        (
            await sandbox.post("/_sandbox/clients", json={"client_id": client_id, "client_secret": secret})
        ).raise_for_status()
        (
            await sandbox.put("/_sandbox/settings", json={"expires_in": TOKEN_LIFETIME_SECONDS})
        ).raise_for_status()
        app = await api.put(
            f"/v1/provider-apps/{PROVIDER}",
            json={"client_id": client_id, "client_secret": secret, "scopes": ["read"]},
        )
        app.raise_for_status()
        load = Load(runner, api, browser, services.tenant_id, seed)
        faults = FaultSchedule(nats_server, postgres, services, sandbox)
        memory = MemorySamples()
        began = time.monotonic()
        duration = minutes * 60
        stopped = asyncio.Event()
        every = duration * 0.75 / len(KINDS) if minutes < 5 else duration * 0.8 / (2 * len(KINDS))
        load_task = asyncio.create_task(load.run())
        fault_task = asyncio.create_task(
            faults.run(began + duration * 0.1, every, began + duration * 0.85, stopped)
        )
        while time.monotonic() - began < duration:
            memory.sample({**services.pids(), "nats-server": _pid(nats_server), "postgres": _pid(postgres)})
            await asyncio.sleep(SAMPLE_SECONDS)  # the sampling period
        stopped.set()
        await fault_task
        load.stop()
        await load_task
        refresh_grants = (await sandbox.get("/_sandbox/counters")).json()[
            "token_requests_by_profile_and_grant"
        ]
        await runner.close()
        await nc.close()
        ran_for = time.monotonic() - began
    return await _closing_checks(services, nats_server, load, faults, memory, refresh_grants, ran_for, began)


async def _closing_checks(
    services: ServiceProcesses,
    nats_server: EmbeddedNats,
    load: Load,
    faults: FaultSchedule,
    memory: MemorySamples,
    refresh_grants: dict[str, int],
    ran_for: float,
    began: float,
) -> dict[str, object]:
    database_url = services.database_url
    drain_began = time.monotonic()
    while outbox_rows(database_url) and time.monotonic() - drain_began < 120:
        await asyncio.sleep(0.5)  # polling the outboxes with a deadline
    said = await run_events(nats_server.url)
    admitted = said["runs.admitted"]
    verified, verify_line = audit_verify(database_url, services.tenant_id)
    # Lost: a run requested on the stream without an answer, or granted its connection and never admitted.
    answered = set(said["runs.admitted"]) | set(said["runs.held"])
    unanswered = (set(said["runs.requested"]) - answered) | {r for r in load.granted_runs if not admitted[r]}
    checks = {
        "grantline audit verify": (verified, verify_line),
        "no run admitted twice": (max(admitted.values(), default=0) <= 1, f"{len(admitted)} runs admitted"),
        "no held run a grant satisfies": (
            count(database_url, SATISFIED_BUT_HELD) == 0,
            f"{count(database_url, CONNECTED_MIRROR_ROWS)} connected mirror rows checked",
        ),
        "no token expired while scheduled": (
            count(database_url, EXPIRED_WHILE_SCHEDULED) == 0,
            "refresher.refresh_schedule",
        ),
        "outboxes empty": (
            outbox_rows(database_url) == 0,
            f"drained in {time.monotonic() - drain_began:.1f}s",
        ),
    }
    outside = [o for o in load.outcomes if o.error and not faults.covering(o.started)]
    duplicated = sum(n - 1 for n in admitted.values() if n > 1)
    return {
        "ran_for": ran_for,
        "began": began,
        "flows": load.per_flow(),
        "refresh_grants": sum(v for k, v in refresh_grants.items() if "refresh_token" in k),
        "revocations_heard": load.revocations_heard,
        "faults": faults.records,
        "memory": memory.trend(),
        "checks": checks,
        "errors_outside": outside,
        "lost": len(unanswered),
        "duplicated": duplicated,
        "covering": faults.covering,
    }


def _pid(server: EmbeddedNats | EmbeddedPostgres) -> int:
    return server._process.pid or -1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's random choices")
    parser.add_argument(
        "--readme", action="store_true", help="write the table into benchmarks/soak/README.md"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: {args.minutes:g} min, seed {seed}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="grantline-soak-"))
    result = asyncio.run(soak(root, args.minutes, seed))
    table, passed = render_table(result, args.minutes, seed)
    print(table)
    if passed:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\nthe soak failed; every process's log is kept in {root / 'grantline' / 'logs'}")
    if args.readme:
        write_readme(table)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
