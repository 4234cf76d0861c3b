"""``grantline dev``: every service on one machine (DESIGN section 7).

Starts embedded NATS and Postgres under the data directory unless ``GRANTLINE_NATS_URL`` and
``GRANTLINE_DATABASE_URL`` are set, migrates, creates the ``dev`` tenant, serves the sandbox provider,
runs each service as its own process (as in Kubernetes), waits until all are ready, writes
``dev.json`` and prints how to reach the API. Ctrl-C or SIGTERM stops everything cleanly.

With ``--tls`` the embedded NATS speaks only TLS, with a CA generated under the data directory; with
``--mutual-tls`` every client must also present a certificate of that CA. Services get the CA (and the
client certificate) through ``GRANTLINE_NATS_TLS_*``; ``dev.json`` says where the files are.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grantline.cli.dev_credentials import (
    callout_issuer,
    dev_runner_credentials,
    master_keyring,
    run_grant_key_environment,
    runner_auth_environment,
    ui_session_secret,
)
from grantline.cli.services import ROLES

if TYPE_CHECKING:
    from grantline.common.tls_certificates import TlsFiles

READY_TIMEOUT_SECONDS = 90.0
# "server": clients verify the embedded NATS's certificate; "mutual": NATS verifies theirs too.
NatsTlsMode = Literal["server", "mutual"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` on loopback."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class DevStack:
    data_dir: Path
    api_port: int
    environ: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stoppers: list[object] = field(default_factory=list)
    info: dict[str, object] = field(default_factory=dict)
    # NATS user -> password, when the embedded NATS runs with deploy/nats/permissions.yaml.
    nats_passwords: dict[str, str] = field(default_factory=dict)
    nats_tls: NatsTlsMode | None = None
    tls_files: "TlsFiles | None" = None

    def log_path(self, name: str) -> Path:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name}.log"

    # -- infrastructure -----------------------------------------------------------------------------

    def start_infrastructure(self) -> tuple[str, str]:
        from grantline.common.embedded import EmbeddedNats, EmbeddedPostgres

        nats_url = self.environ.get("GRANTLINE_NATS_URL")
        if not nats_url:
            auth = self._nats_auth_config()
            log_file = self.log_path("nats-server")
            tls = self._nats_tls_files()
            nats = EmbeddedNats(
                self.data_dir / "nats",
                config_file=auth,
                log_file=log_file,
                tls=tls,
                verify_clients=self.nats_tls == "mutual",
            )
            nats.start()
            self.stoppers.append(nats)
            nats_url = nats.url
            print(f"  embedded NATS      {nats_url}", flush=True)
        elif self.nats_tls:
            print("  --tls applies to the embedded NATS only; set GRANTLINE_NATS_TLS_* for yours", flush=True)
        database_url = self.environ.get("GRANTLINE_DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(self.data_dir / "postgres")
            postgres.start()
            self.stoppers.append(postgres)
            postgres.create_database("grantline")
            database_url = postgres.url.rsplit("/", 1)[0] + "/grantline"
            print(f"  embedded Postgres  {database_url}", flush=True)
        return nats_url, database_url

    def _nats_auth_config(self) -> Path:
        # Embedded NATS runs with the same users and permissions as production (DESIGN section 5);
        # random passwords are generated once and kept beside the data (0600).
        from grantline.common.nats.permissions import (
            load_or_create_passwords,
            load_permissions,
            render_authorization,
        )

        permissions = load_permissions()
        self.nats_passwords = load_or_create_passwords(self.data_dir / "nats-users.json", permissions)
        config = self.data_dir / "nats-auth.conf"
        issuer = callout_issuer(self.data_dir)
        config.write_text(render_authorization(permissions, self.nats_passwords, callout_issuer=issuer))
        os.chmod(config, 0o600)
        return config

    # -- TLS on the embedded NATS (grantline dev --tls / --mutual-tls) --------------------------------

    def _nats_tls_files(self) -> "TlsFiles | None":
        """The generated CA and certificates (kept across runs under the data directory), if TLS is on."""
        if self.nats_tls is None:
            return None
        from grantline.common.tls_certificates import ensure_local_certificates

        self.tls_files = ensure_local_certificates(
            self.data_dir / "nats-tls", client=self.nats_tls == "mutual"
        )
        return self.tls_files

    def nats_tls_environment(self) -> dict[str, str]:
        """The GRANTLINE_NATS_TLS_* variables every service and the runner connect with."""
        if self.tls_files is None:
            return {}
        env = {"GRANTLINE_NATS_TLS_CA_FILE": str(self.tls_files.ca_file)}
        if self.nats_tls == "mutual":
            env["GRANTLINE_NATS_TLS_CERT_FILE"] = str(self.tls_files.client_cert_file)
            env["GRANTLINE_NATS_TLS_KEY_FILE"] = str(self.tls_files.client_key_file)
        return env

    def nats_tls_info(self) -> dict[str, object]:
        """dev.json's ``nats_tls``: where a runner finds the CA (and its client certificate and key)."""
        env = self.nats_tls_environment()
        if not env:
            return {}
        names = {"CA_FILE": "ca_file", "CERT_FILE": "cert_file", "KEY_FILE": "key_file"}
        return {"nats_tls": {names[k.removeprefix("GRANTLINE_NATS_TLS_")]: v for k, v in env.items()}}

    def nats_client(self, user: str) -> dict[str, str]:
        """The GRANTLINE_NATS_* variables for ``user`` (none when NATS runs without auth)."""
        if not self.nats_passwords:
            return {}
        from grantline.common.nats.permissions import client_environment, load_permissions

        return client_environment(load_permissions(), user, self.nats_passwords[user])

    def migrate(self, nats_url: str, database_url: str) -> None:
        """``grantline migrate``: the schemas, then the streams and consumers as the operator."""
        import asyncio

        from pydantic import SecretStr

        from grantline.cli.migrate import MigrateSettings, declare_nats, migrate_all

        migrate_all(database_url)
        # Only this step holds the operator's credentials; the services get their own users.
        operator = self.nats_client("operator")
        tls = {
            key.removeprefix("GRANTLINE_").lower(): value
            for key, value in self.nats_tls_environment().items()
        }
        common: dict[str, object] = {"nats_url": nats_url, "environment": "development", **tls}
        if operator:
            common.update(
                nats_user=operator["GRANTLINE_NATS_USER"],
                nats_password=SecretStr(operator["GRANTLINE_NATS_PASSWORD"]),
                nats_inbox_prefix=operator["GRANTLINE_NATS_INBOX_PREFIX"],
            )
        asyncio.run(declare_nats(MigrateSettings(**common)))  # type: ignore[arg-type]

    # -- processes ----------------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = self.log_path(name).open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "grantline.cli.main", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, urls: dict[str, str]) -> list[str]:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = dict(urls)
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    return [f"{name} exited with {process.returncode}; see {self.log_path(name)}"]
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
                        if response.status == 200:
                            del pending[name]
                except OSError:
                    pass
            time.sleep(0.2)
        return [
            f"{name} not ready after {READY_TIMEOUT_SECONDS:.0f}s; see {self.log_path(name)}"
            for name in pending
        ]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        for stopper in reversed(self.stoppers):
            stopper.stop()  # type: ignore[attr-defined]


def _say(text: str) -> None:
    """Print, unless our output is gone (a closed terminal must not keep us from stopping)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _die_with_parent() -> None:
    """In the child: get SIGTERM if ``grantline dev`` dies without stopping us (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _dev_api_key(data_dir: Path, environ: dict[str, str]) -> str:
    if environ.get("GRANTLINE_DEV_API_KEY"):
        return environ["GRANTLINE_DEV_API_KEY"]
    previous = data_dir / "dev.json"
    if previous.exists():
        try:
            return str(json.loads(previous.read_text())["api_key"])
        except (ValueError, KeyError):
            pass
    return "glk_dev_" + secrets.token_urlsafe(32)


def run_dev(
    *, data_dir: str, api_port: int, environ: dict[str, str], nats_tls: NatsTlsMode | None = None
) -> int:
    """Run the whole stack until interrupted; returns the exit code."""
    started = time.monotonic()
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not port_is_free(api_port):
        print(f"port {api_port} is taken; pass --port", file=sys.stderr)
        return 2
    stack = DevStack(root, api_port, environ, nats_tls=nats_tls)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())
    print("Starting Grantline (development)", flush=True)
    try:
        nats_url, database_url = stack.start_infrastructure()
        from grantline.cli.migrate import NatsDeclarationFailed

        try:
            stack.migrate(nats_url, database_url)
        except NatsDeclarationFailed as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        api_key = _dev_api_key(root, environ)
        sandbox_port = free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        api_url = f"http://127.0.0.1:{api_port}"
        tenant_id = _ensure_dev_tenant(database_url, api_key)
        base_env = {
            **environ,
            "GRANTLINE_NATS_URL": nats_url,
            "GRANTLINE_DATABASE_URL": database_url,
            "GRANTLINE_ENVIRONMENT": "development",
            "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",
            "GRANTLINE_SANDBOX_URL": sandbox_url,
            "GRANTLINE_PUBLIC_URL": api_url,
            "GRANTLINE_LOG_FORMAT": environ.get("GRANTLINE_LOG_FORMAT", "json"),
            "GRANTLINE_MASTER_KEYRING_FILE": str(master_keyring(root)),
            "GRANTLINE_UI_SESSION_SECRET": ui_session_secret(root),
            **stack.nats_tls_environment(),
        }
        health: dict[str, str] = {}
        stack.spawn("sandbox", ["sandbox", "--port", str(sandbox_port)], base_env)
        health["sandbox"] = f"{sandbox_url}/_sandbox/health"
        grant_keys = run_grant_key_environment(root)
        for name in ROLES:
            port = api_port if name == "auth-gateway" else free_port()
            env = {**base_env, "GRANTLINE_HTTP_PORT": str(port), "GRANTLINE_SERVICE_NAME": name}
            env.update(grant_keys.get(name, {}))
            env.update(stack.nats_client(name))
            if name == "runner-auth":
                env.update(runner_auth_environment(stack.data_dir, stack.nats_passwords))
            stack.spawn(name, ["run", name], env)
            health[name] = f"http://127.0.0.1:{port}/readyz"
        problems = stack.wait_ready(health)
        if problems:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return 1
        info = {
            "api_url": api_url,
            "api_key": api_key,
            "tenant_id": tenant_id,
            "nats_url": nats_url,
            "database_url": database_url,
            "sandbox_url": sandbox_url,
            "services": health,
            "logs": str(root / "logs"),
            **stack.nats_tls_info(),
        }
        if stack.nats_passwords:
            # What an app runner needs to connect (DESIGN section 7): a runner identity of the dev tenant.
            info.update(dev_runner_credentials(root, database_url, tenant_id))
        dev_json = root / "dev.json"
        dev_json.write_text(json.dumps(info, indent=2) + "\n")
        os.chmod(dev_json, 0o600)
        print(f"\nGrantline is ready in {time.monotonic() - started:.1f}s", flush=True)
        print(f"  API          {api_url}  (docs: {api_url}/docs)")
        # The local dev tenant's key, shown to the developer who just started the stack on their own machine
        # (it is in dev.json too): the terminal is its intended destination, not a log.
        print(f"  API key      {api_key}")  # nosemgrep: secret-named-value-in-output
        print(f"  tenant       {tenant_id}")
        print(f"  NATS         {nats_url}")
        print(f"  Postgres     {database_url}")
        print(f"  sandbox      {sandbox_url}")
        print(f"  written to   {dev_json}; logs in {root / 'logs'}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop_requested.wait(0.5):
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(
                        f"error: {name} exited with {process.returncode}; see {stack.log_path(name)}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        _say("Stopping Grantline...")
        stack.stop()
        _say("Stopped.")


def _ensure_dev_tenant(database_url: str, api_key: str) -> str:
    """Create the ``dev`` tenant and its API key (through the gateway's bootstrap, once it exists)."""
    try:
        from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
    except ImportError:
        return "dev"
    return str(ensure_tenant_with_key(database_url, name="dev", api_key=api_key))
