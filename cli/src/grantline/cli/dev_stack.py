"""The pieces of a running ``grantline dev`` stack, and how each is started and stopped again.

The supervisor (dev.py) decides what to start and when; this keeps what it started (the embedded NATS
and Postgres, one child process per service) so that a Ctrl-C or a failed start stops all of it, in
order, and nothing outlives the supervisor. Like dev.py it imports no service and none of the service
runtime: the steps that need them run in a child process (dev_setup.py).
"""

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from grantline.cli.dev_setup import EXPLAINED_FAILURE
from grantline.cli.dev_start_up import StartUpFailure

if TYPE_CHECKING:
    from grantline.devstack.tls_certificates import TlsFiles

READY_TIMEOUT_SECONDS = 90.0
# "server": clients verify the embedded NATS's certificate; "mutual": NATS verifies theirs too.
NatsTlsMode = Literal["server", "mutual"]


@dataclass
class DevStack:
    data_dir: Path
    api_port: int
    environ: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stoppers: list[object] = field(default_factory=list)
    nats_tls: NatsTlsMode | None = None
    # What dev_setup's `prepare` step made: NATS's auth config, TLS files, each process's environment.
    prepared: dict[str, Any] = field(default_factory=dict)
    # What the stack is doing, for the sentence that explains a start-up failure.
    stage: str = "starting"

    def log_path(self, name: str) -> Path:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name}.log"

    def run_step(self, step: str, request: dict[str, Any]) -> dict[str, Any]:
        """One of dev_setup's steps in a child process (the supervisor keeps none of their imports)."""
        done = subprocess.run(
            [sys.executable, "-m", "grantline.cli.dev_setup", step],
            input=json.dumps(request),
            env=self.environ,
            capture_output=True,
            text=True,
            check=False,
        )
        log = self.log_path("dev")
        if done.stderr.strip():  # what the step said (warnings, a traceback) is kept in the dev log
            with log.open("a") as file:
                file.write(f"{step} ({self.stage}), exit {done.returncode}:\n{done.stderr}\n")
        if done.returncode == 0:
            return dict(json.loads(done.stdout))
        if done.returncode == EXPLAINED_FAILURE:
            raise StartUpFailure(done.stderr.strip().splitlines()[-1])
        last = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
        # The last line of a traceback names the exception; its message may quote a URL: type only.
        raise StartUpFailure(f"{self.stage} failed ({last.split(':', 1)[0]}); details in {log}")

    # -- infrastructure -----------------------------------------------------------------------------

    def start_infrastructure(self) -> tuple[str, str]:
        from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres

        nats_url = self.environ.get("GRANTLINE_NATS_URL")
        self.prepared = self.run_step(
            "prepare",
            {"data_dir": str(self.data_dir), "embedded_nats": not nats_url, "nats_tls": self.nats_tls},
        )
        if not nats_url:
            auth = self.prepared["auth_config"]
            nats = EmbeddedNats(
                self.data_dir / "nats",
                config_file=Path(auth) if auth else None,
                log_file=self.log_path("nats-server"),
                tls=self._tls_files(),
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
            database_url = postgres.url  # its `postgres` database: `finish` creates `grantline`
        return nats_url, database_url

    def _tls_files(self) -> "TlsFiles | None":
        files = self.prepared.get("tls_files")
        if not files:
            return None
        from grantline.devstack.tls_certificates import TlsFiles

        return TlsFiles(**{key: Path(value) for key, value in files.items()})

    def nats_tls_environment(self) -> dict[str, str]:
        """The GRANTLINE_NATS_TLS_* variables every service and the runner connect with."""
        files = self.prepared.get("tls_files")
        if not files:
            return {}
        env = {"GRANTLINE_NATS_TLS_CA_FILE": files["ca_file"]}
        if self.nats_tls == "mutual":
            env["GRANTLINE_NATS_TLS_CERT_FILE"] = files["client_cert_file"]
            env["GRANTLINE_NATS_TLS_KEY_FILE"] = files["client_key_file"]
        return env

    def nats_tls_info(self) -> dict[str, object]:
        """dev.json's ``nats_tls``: where a runner finds the CA (and its client certificate and key)."""
        env = self.nats_tls_environment()
        if not env:
            return {}
        names = {"CA_FILE": "ca_file", "CERT_FILE": "cert_file", "KEY_FILE": "key_file"}
        return {"nats_tls": {names[k.removeprefix("GRANTLINE_NATS_TLS_")]: v for k, v in env.items()}}

    def environment_of(self, name: str) -> dict[str, str]:
        """The NATS identity (and keys) of process ``name``, as `prepare` made them."""
        return dict(self.prepared["environments"].get(name, {}))

    def finish_setup(self, nats_url: str, database_url: str, api_key: str) -> dict[str, Any]:
        """Database, migrations and streams, the dev tenant and its runner (dev_setup's `finish`)."""
        return self.run_step(
            "finish",
            {
                "data_dir": str(self.data_dir),
                "nats_url": nats_url,
                "database_url": database_url,
                "embedded_postgres": "GRANTLINE_DATABASE_URL" not in self.environ,
                "operator": self.environment_of("operator"),
                "nats_tls_env": self.nats_tls_environment(),
                "api_key": api_key,
            },
        )

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


def _die_with_parent() -> None:
    """In the child: get SIGTERM if ``grantline dev`` dies without stopping us (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
