"""`uv run python -m benchmarks.proxy`: the tool-call proxy's added latency and its throughput.

Starts an embedded NATS and Postgres, migrates, runs the sandbox provider, the vault and the proxy as
separate processes (`grantline sandbox`, `grantline run vault`, `grantline run proxy`), connects one
user to the sandbox through a real authorization-code flow, then measures from this process, with
one lean HTTP client for both: the sandbox's REST API called directly with the access token, and
the same call through the proxy with a run grant. Writes README.md.
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
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nats
import uvloop
from pydantic import SecretStr

from benchmarks.process_cpu import CpuSample, cpu_seconds
from benchmarks.process_cpu import sample as base_sample
from benchmarks.proxy.lean_http import LeanConnection
from grantline.cli.migrate import MigrateSettings, declare_nats, migrate_all
from grantline.contract import vault, vault_admin
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from grantline.providers.authorize import build_authorize_url, code_challenge_s256, new_code_verifier
from grantline.providers.catalogue import load_catalogue
from grantline.runtime.nats.request_reply import RequestFailed
from grantline.runtime.nats.secret_wire import request_with_secrets
from grantline.runtime.run_grants import RunGrantSigner, new_signing_key, public_key_set

HERE = Path(__file__).resolve().parent
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "3000"))
CONCURRENCY = 64
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
TENANT = "bench-tenant"
GRANT_KEYS = {"keys": [new_signing_key("bench-1")]}
CLIENT_ID, CLIENT_SECRET = "bench-client", "sbx_secret_bench_0123456789"
REDIRECT_URI = "https://grantline.test/v1/oauth/callback"
PATH = "/p/standard/api/items"


def _grant() -> str:
    signer = RunGrantSigner(GRANT_KEYS, active_kid=None, ttl_seconds=3600)
    return signer.issue(
        tenant_id=TENANT,
        run_id="run-bench",
        user_id="alice",
        app_id="app-bench",
        providers={"sandbox": ()},
        is_test=False,
    )


def _wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.2)


async def connect_user(nats_url: str, sandbox_url: str) -> str:
    """A provider app and alice's connection, through the sandbox's authorize and token endpoints;
    returns her access token (for the direct calls)."""
    request = urllib.request.Request(
        f"{sandbox_url}/_sandbox/clients",
        data=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5)
    nc = await nats.connect(nats_url)
    put = vault_admin.PutProviderAppRequest(
        tenant_id=TENANT, provider="sandbox", client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET)
    )
    deadline = time.monotonic() + 60
    while True:  # the vault may still be starting
        try:
            await request_with_secrets(
                nc, vault_admin.SUBJECT_PROVIDER_APP_PUT, put, vault_admin.ProviderAppInfo, timeout=15
            )
            break
        except RequestFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    definition = load_catalogue(sandbox_url=sandbox_url).get("sandbox")
    verifier = new_code_verifier()
    url = build_authorize_url(
        definition,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scopes=["read", "write"],
        state="s",
        code_challenge=code_challenge_s256(verifier),
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url + "&sandbox_user=alice", timeout=5)
        raise RuntimeError("the sandbox did not redirect")
    except urllib.error.HTTPError as redirect:
        location = redirect.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    exchange = vault.ExchangeRequest(
        tenant_id=TENANT,
        connection_id="conn-bench",
        owner="user:alice",
        provider="sandbox",
        code=SecretStr(code),
        code_verifier=SecretStr(verifier),
        redirect_uri=REDIRECT_URI,
        requested_scopes=["read", "write"],
    )
    reply = await request_with_secrets(nc, vault.SUBJECT_EXCHANGE, exchange, vault.ConnectionInfo, timeout=15)
    assert isinstance(reply, vault.ConnectionInfo), reply
    resolve = vault.ResolveRequest(grant=SecretStr(_grant()), provider="sandbox")
    resolved = await request_with_secrets(
        nc, f"{vault.SUBJECT_RESOLVE}.{TENANT}", resolve, vault.ResolveReply, timeout=15
    )
    assert isinstance(resolved, vault.ResolveReply), resolved
    await nc.close()
    return resolved.access_token.get_secret_value()


async def sequential(connection: LeanConnection, count: int) -> list[float]:
    """Latencies (ms) of ``count`` calls one after another, after a warm-up."""
    for _ in range(300):
        await connection.get()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status, body = await connection.get()
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"{status}: {body[:200]!r}")
    return sorted(latencies)


async def concurrent(make: callable) -> tuple[float, int, int, list[float]]:  # type: ignore[valid-type]
    """(calls per second, successes, errors, sorted latencies in ms) of 64 keep-alive clients for
    DURATION seconds."""
    ok = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + DURATION

    async def client() -> None:
        nonlocal ok, errors
        connection = make()
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, _ = await connection.get()
            except Exception:
                errors += 1
                await connection.close()
                continue
            if status == 200:
                ok += 1
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                errors += 1
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return ok / (time.perf_counter() - started), ok, errors, sorted(latencies)


def sample(pids: dict[str, int]) -> CpuSample:
    """CPU seconds so far of the proxy, the sandbox, the vault, Postgres, NATS and this client."""
    import psutil

    base = base_sample("proxy", pids["proxy"])
    extra = {name: cpu_seconds(psutil.Process(pids[name])) for name in ("sandbox", "vault")}
    return CpuSample({**base.seconds, **extra})


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


async def measure(
    targets: dict[str, tuple[int, str, dict[str, str]]], pids: dict[str, int]
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (port, path, headers) in targets.items():

        def make(port: int = port, path: str = path, headers: dict[str, str] = headers) -> LeanConnection:
            return LeanConnection("127.0.0.1", port, path, headers)

        connection = make()
        before = sample(pids)
        latencies = await sequential(connection, SEQUENTIAL)
        await connection.close()
        between = sample(pids)
        rate, ok, errors, under_load = await concurrent(make)
        after = sample(pids)
        results[name] = {
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "rps_64": rate,
            "p50_64_ms": percentile(under_load, 0.50),
            "p99_64_ms": percentile(under_load, 0.99),
            "errors": errors,
            **{f"seq_{k}": v for k, v in before.per_item(between, SEQUENTIAL + 300, unit=1e6).items()},
            **{f"conc_{k}": v for k, v in between.per_item(after, ok + errors, unit=1e6).items()},
        }
    return results


PARTS = ("proxy", "sandbox", "vault", "postgres", "nats", "client")


def report(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| what | p50 at 1 (ms) | p99 at 1 (ms) | p50 at 64 (ms) | p99 at 64 (ms) | calls/s at 64 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['p50_64_ms']:.2f} | "
            f"{figures['p99_64_ms']:.2f} | {figures['rps_64']:,.0f} | {int(figures['errors'])} |"
        )
    lines += [
        "",
        "CPU per call (microseconds of CPU time, user + system):",
        "",
        "| what | phase | " + " | ".join(PARTS) + " | total |",
        "| --- | --- | " + " | ".join("---" for _ in PARTS) + " | --- |",
    ]
    for name, figures in results.items():
        for phase, label in (("seq", "sequential"), ("conc", "64 concurrent")):
            parts = [figures[f"{phase}_{part}"] for part in PARTS]
            cells = " | ".join(f"{value:.0f}" for value in [*parts, sum(parts)])
            lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines)


def summary(results: dict[str, dict[str, float]]) -> str:
    direct, proxied = results["sandbox, direct"], results["through the proxy"]
    added_p50 = proxied["p50_ms"] - direct["p50_ms"]
    added_p99 = proxied["p99_ms"] - direct["p99_ms"]
    verdict = "met" if added_p50 <= 1.0 and proxied["rps_64"] >= 2000 and not proxied["errors"] else "NOT met"
    return (
        f"Added by the proxy in this run: p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms; "
        f"{proxied['rps_64']:,.0f} proxied calls/s at 64 concurrent "
        f"({proxied['rps_64'] / direct['rps_64']:.0%} of the direct rate); "
        f"proxy CPU per call at 64 concurrent {proxied['conc_proxy']:.0f} us. "
        f"Targets (added p50 <= 1 ms, >= 2,000 proxied calls/s, no error): {verdict}."
    )


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        root = Path(tmp)
        nats_server = EmbeddedNats(root / "nats")
        postgres = EmbeddedPostgres(root / "postgres", durable=False)
        nats_server.start()
        postgres.start()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            database_url = postgres.create_database("bench")
            migrate_all(database_url)
            asyncio.run(declare_nats(MigrateSettings(nats_url=nats_server.url, environment="development")))
            from grantline.vault.domain import Keyring

            keyring = Keyring.from_bytes("mk-bench", {"mk-bench": secrets.token_bytes(32)})
            (root / "keyring.json").write_text(keyring.to_json())
            sandbox_port, proxy_port = free_port(), free_port()
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            env = {
                **os.environ,
                "GRANTLINE_NATS_URL": nats_server.url,
                "GRANTLINE_DATABASE_URL": database_url,
                "GRANTLINE_MASTER_KEYRING_FILE": str(root / "keyring.json"),
                "GRANTLINE_HTTP_PORT": "0",
                "GRANTLINE_LOG_LEVEL": "WARNING",
                "GRANTLINE_ENVIRONMENT": "development",
                "GRANTLINE_SANDBOX_URL": sandbox_url,
                "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",
                "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS": json.dumps(public_key_set(GRANT_KEYS)),
            }
            cli = [sys.executable, "-m", "grantline.cli.main"]
            sandbox = subprocess.Popen([*cli, "sandbox", "--port", str(sandbox_port)], env=env)
            vault_process = subprocess.Popen([*cli, "run", "vault"], env=env)
            # BENCH_PROFILE=<file>: run the proxy under cProfile (its stats are written when it stops).
            profile = (
                ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
                if os.environ.get("BENCH_PROFILE")
                else []
            )
            proxy = subprocess.Popen(
                [sys.executable, *profile, "-m", "grantline.cli.main", "run", "proxy"],
                env={**env, "GRANTLINE_HTTP_PORT": str(proxy_port), "GRANTLINE_SERVICE_NAME": "proxy"},
            )
            processes += [sandbox, vault_process, proxy]
            _wait_http(f"{sandbox_url}/_sandbox/health", sandbox)
            _wait_http(f"http://127.0.0.1:{proxy_port}/readyz", proxy)
            token = asyncio.run(connect_user(nats_server.url, sandbox_url))
            grant = _grant()
            targets = {
                "sandbox, direct": (sandbox_port, PATH, {"Authorization": f"Bearer {token}"}),
                "through the proxy": (
                    proxy_port,
                    "/v1/proxy/sandbox/items",
                    {"Authorization": f"Bearer {grant}"},
                ),
            }
            uvloop.install()
            pids = {"proxy": proxy.pid, "sandbox": sandbox.pid, "vault": vault_process.pid}
            results = asyncio.run(measure(targets, pids))
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
    table, verdict = report(results), summary(results)
    print(table, verdict, sep="\n\n")
    write_readme(table, verdict, load_before)


def write_readme(table: str, verdict: str, load_before: float) -> None:
    load = os.getloadavg()[0]
    machine = (
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}); "
        f"1-minute load average {load_before:.1f} when it started, {load:.1f} when it finished"
    )
    notes = (HERE / "NOTES.md").read_text() if (HERE / "NOTES.md").exists() else ""
    text = f"""# Benchmark: the tool-call proxy

`uv run python -m benchmarks.proxy` (about a minute; `BENCH_SEQUENTIAL`, `BENCH_SECONDS` shorten it).

What it does: starts an embedded NATS (JetStream) and an embedded Postgres, runs the migrations,
then the sandbox provider (`grantline sandbox`, uvicorn), the vault and the proxy (`grantline run
vault`, `grantline run proxy`) as separate processes. One user connects through the sandbox's real
authorize and token endpoints (the vault exchanges the code). From this process, with one lean
HTTP/1.1 keep-alive client (asyncio streams, uvloop) for both, it calls `GET {PATH}` (the
user's records, a small JSON answer):

- directly at the sandbox with the access token: the floor, measured in the same run;
- through the proxy (`GET /v1/proxy/sandbox/items`) with the run grant: the grant's check (verified
  once, then remembered), the token (resolved from the vault over NATS on the first call, then kept
  for `GRANTLINE_TOKEN_CACHE_SECONDS`, 10 s by default, so about one resolve per 10 s per run), the
  upstream call on a pooled aiohttp connection, the answer, and the audit record (buffered, published
  to JetStream in acknowledged batches during the run).

For each: {SEQUENTIAL} sequential calls after a warm-up (p50, p99), then {CONCURRENCY} concurrent
keep-alive clients for {DURATION:.0f} s (calls/s, errors). Everything shares the machine: the client,
the sandbox, the proxy, the vault, NATS and Postgres. Around each phase it reads the CPU time (user +
system) of each process and divides by the calls served.

Machine: {machine}; measured {datetime.now(UTC):%Y-%m-%d}.

{table}

{verdict}

Targets: added p50 <= 1 ms (proxied p50 minus direct p50), >= 2,000 proxied calls/s at 64
concurrent with no error. Nango's proxy was not run side by side: it needs its own server, Postgres
and Redis, which this machine's shared cores (and the no-internet rule) leave out.
{notes}"""
    (HERE / "README.md").write_text(text)


if __name__ == "__main__":
    main()
