"""Every Grantline service as its own process, on a NATS and a Postgres the caller owns (fault work).

`grantline dev` is for a laptop: it stops the whole stack when one service dies. Fault tests and the
soak need the opposite: kill one service (or NATS, or Postgres) and start it again while the rest keep
running, then check nothing was lost. ``ServiceProcesses`` runs ``grantline migrate`` and then
``grantline run <service>`` per service (plus the sandbox provider) exactly as a Deployment would,
each with its own port and log file, and can SIGKILL and restart any of them by name.

NATS runs without the permission file here (a single embedded server or an ``EmbeddedNatsCluster``):
what is under test is recovery, not authorization (tests/security/ covers that).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from grantline.devstack.embedded import free_port

SERVICES = ("audit", "vault", "refresher", "satisfaction", "runner-auth", "auth-gateway")
READY_TIMEOUT_SECONDS = 120.0


@dataclass
class ServiceProcesses:
    """The services of one stack under ``root``; ``start`` migrates, then spawns and waits for each."""

    root: Path
    nats_url: str
    database_url: str
    # Extra GRANTLINE_* settings for every service (short refresh margins, ...).
    environment: dict[str, str] = field(default_factory=dict)
    stream_replicas: int = 1
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    api_key: str = ""
    tenant_id: str = ""
    # Per-service settings made at start (run grant keys, runner-auth's issuer seed).
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['auth-gateway']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    def url(self, service: str, path: str = "/readyz") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def base_environment(self) -> dict[str, str]:
        """What every process gets: the parent's environment without its GRANTLINE_ settings, plus ours."""
        from grantline.cli.dev_credentials import master_keyring, ui_session_secret

        env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
        return {
            **env,
            "GRANTLINE_NATS_URL": self.nats_url,
            "GRANTLINE_DATABASE_URL": self.database_url,
            "GRANTLINE_ENVIRONMENT": "development",
            "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",
            "GRANTLINE_SANDBOX_URL": self.sandbox_url,
            "GRANTLINE_PUBLIC_URL": self.api_url,
            "GRANTLINE_MASTER_KEYRING_FILE": str(master_keyring(self.root)),
            "GRANTLINE_UI_SESSION_SECRET": ui_session_secret(self.root),
            "GRANTLINE_NATS_STREAM_REPLICAS": str(self.stream_replicas),
            **self.environment,
        }

    def migrate(self) -> subprocess.CompletedProcess[str]:
        """``grantline migrate`` (schemas, streams, consumers), as the operator's Job runs it."""
        return subprocess.run(
            [sys.executable, "-m", "grantline.cli.main", "migrate"],
            env=self.base_environment(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def start(self) -> None:
        """Migrate, create the tenant and its API key, start the sandbox and every service; wait for all."""
        from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
        from grantline.cli.dev_credentials import ISSUER_SEED_FILE, callout_issuer, run_grant_key_environment

        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in (*SERVICES, "sandbox")}
        migrated = self.migrate()
        if migrated.returncode != 0:
            raise RuntimeError(f"grantline migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
        self.api_key = "glk_fault_" + os.urandom(16).hex()
        self.tenant_id = str(ensure_tenant_with_key(self.database_url, name="faults", api_key=self.api_key))
        callout_issuer(self.root)  # writes runner-auth's issuer seed (0600) beside the data
        seed = self.root / ISSUER_SEED_FILE
        self.service_env = {name: {} for name in SERVICES}
        for name, values in run_grant_key_environment(self.root).items():
            if name in self.service_env:  # the proxy, stateless, is not one of these processes
                self.service_env[name].update(values)
        self.service_env["runner-auth"]["GRANTLINE_RUNNER_AUTH_ISSUER_SEED_FILE"] = str(seed)
        self.spawn("sandbox")
        for name in SERVICES:
            self.spawn(name)
        self.wait_ready([*SERVICES, "sandbox"])

    def spawn(self, name: str) -> None:
        """Start one process (again), appending to its log."""
        if name == "sandbox":
            args = ["sandbox", "--port", str(self.ports["sandbox"])]
            env = self.base_environment()
        else:
            args = ["run", name]
            env = {
                **self.base_environment(),
                **self.service_env[name],
                "GRANTLINE_SERVICE_NAME": name,
                "GRANTLINE_HTTP_PORT": str(self.ports[name]),
            }
        with self.log_path(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "grantline.cli.main", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready_url(self, name: str) -> str:
        return f"{self.sandbox_url}/_sandbox/health" if name == "sandbox" else self.url(name)

    def is_ready(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url(name), timeout=2) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)
        except OSError:
            return False

    def readiness(self, name: str) -> tuple[int, dict[str, object]]:
        """``/readyz`` of a service: the status code and its JSON body."""
        try:
            with urllib.request.urlopen(self.url(name), timeout=3) as response:  # noqa: S310 - loopback
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def wait_ready(self, names: list[str], timeout: float = READY_TIMEOUT_SECONDS) -> float:
        """Seconds until every named process answers its readiness probe with 200."""
        began = time.monotonic()
        pending = set(names)
        while pending:
            for name in list(pending):
                code = self.processes[name].poll()
                if code is not None:
                    raise RuntimeError(f"{name} exited with {code}; see {self.log_path(name)}")
                if self.is_ready(name):
                    pending.discard(name)
            if pending and time.monotonic() - began > timeout:
                raise RuntimeError(f"not ready after {timeout:.0f}s: {sorted(pending)}; logs in {self.root}")
            time.sleep(0.1)
        return time.monotonic() - began

    def kill(self, name: str) -> None:
        """SIGKILL one process, as the OOM killer or a lost node would."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process (services first, the sandbox last); their exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes
