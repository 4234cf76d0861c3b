"""`grantline dev` as a subprocess, exactly as a user starts it: every service its own process.

`DevStackProcess.start()` runs `python -m grantline.cli.main dev --data-dir <dir> --port <port>` (plus
`--tls` or `--mutual-tls` when ``nats_tls`` says so) with a clean environment (no test-infrastructure
URLs, so it starts its own embedded NATS with the permission file and its own embedded Postgres), waits
for `dev.json`, and `stop()` sends SIGTERM and returns the exit code. If the stack does not stop, every
process it started is killed by pid so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grantline.runtime.nats.tls import client_ssl_context

# Starting five services, NATS, Postgres (initdb) and the sandbox takes 20-60 s on 2 busy cores.
START_TIMEOUT_SECONDS = 150.0
STOP_TIMEOUT_SECONDS = 45.0


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc), so a failed stop can end them by id."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def service_command_lines(stack: DevStackProcess) -> dict[str, list[str]]:
    """Each running service's command line (``... run <service>``), by service name."""
    found: dict[str, list[str]] = {}
    for pid in _children(stack.process.pid):
        with contextlib.suppress(OSError):
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")[:-1]
            if len(command) >= 2 and command[-2] == "run":
                found[command[-1]] = command
    return found


@dataclass
class DevStackProcess:
    """One `grantline dev` run under ``data_dir``, its `dev.json` once ready."""

    data_dir: Path
    api_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    # None: plaintext NATS; "server": `--tls`; "mutual": `--mutual-tls`.
    nats_tls: str | None = None
    # A shell command line that starts the stack instead (the README's, run from the checkout): its
    # data directory and port then come from GRANTLINE_DEV_DATA_DIR and GRANTLINE_DEV_PORT.
    shell_command: str | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    started_in: float = 0.0

    @property
    def output_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-dev-output.log"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def environment(self) -> dict[str, str]:
        # Drop every GRANTLINE_ variable of the test run (test infrastructure URLs above all): the stack
        # must start its own embedded NATS and Postgres, as on a laptop.
        env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
        if self.shell_command is not None:
            env.update(GRANTLINE_DEV_DATA_DIR=str(self.data_dir), GRANTLINE_DEV_PORT=str(self.api_port))
        return {**env, **self.extra_env}

    def start(self) -> dict[str, Any]:
        """Start the stack and return `dev.json` once every service is ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        output = self.output_path.open("wb")
        began = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            cwd=self.cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        dev_json = self.data_dir / "dev.json"
        deadline = began + START_TIMEOUT_SECONDS
        while not dev_json.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"grantline dev exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"grantline dev not ready in {START_TIMEOUT_SECONDS}s:\n{self.output()}")
            time.sleep(0.2)
        # dev.json is written in one call after everything is ready; re-read until it parses whole.
        while True:
            try:
                self.info = json.loads(dev_json.read_text())
                break
            except ValueError:
                time.sleep(0.05)
        self.started_in = time.monotonic() - began
        return self.info

    def command(self) -> list[str]:
        """What starts the stack: the CLI on our interpreter, or ``shell_command`` in place of a shell."""
        if self.shell_command is not None:
            # `exec`: the shell becomes the command, so SIGTERM reaches `grantline dev` itself.
            return ["sh", "-c", f"exec {self.shell_command}"]
        dev = ["dev", "--data-dir", str(self.data_dir), "--port", str(self.api_port), *self.tls_arguments()]
        return [sys.executable, "-m", "grantline.cli.main", *dev]

    def tls_arguments(self) -> list[str]:
        """The `grantline dev` flag for ``nats_tls``."""
        flags = {None: [], "server": ["--tls"], "mutual": ["--mutual-tls"]}
        if self.nats_tls not in flags:
            raise ValueError(f"nats_tls must be None, 'server' or 'mutual', not {self.nats_tls!r}")
        return flags[self.nats_tls]

    def nats_connect_options(self) -> dict[str, Any]:
        """TLS keyword arguments of `nats.connect` for a runner of this stack (from dev.json)."""
        return nats_connect_options(self.info)

    def output(self) -> str:
        """What `grantline dev` printed so far."""
        try:
            return self.output_path.read_text(errors="replace")
        except OSError:
            return ""

    def problems(self, limit: int = 40) -> str:
        """The warning and error lines of every service log (what to read when the walk fails)."""
        lines: list[str] = []
        for path in sorted(self.logs_dir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if '"level": "warning"' in line or '"level": "error"' in line:
                    lines.append(f"{path.stem}: {line[:600]}")
        return "\n".join(lines[-limit:])

    def stop(self) -> int | None:
        """SIGTERM, as Ctrl-C or Kubernetes would send; kill what is left after the timeout. The exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        descendants = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            for pid in [*_children(process.pid), *descendants]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()
            return None


def running(stack: DevStackProcess) -> Iterator[DevStackProcess]:
    """Start ``stack``, yield it, stop it; shows its output and problems when a test failed."""
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        # Shown by pytest only when a test failed: where to look first.
        print(f"grantline dev output:\n{stack.output()}\nwarnings and errors:\n{stack.problems()}")


def nats_connect_options(info: dict[str, Any]) -> dict[str, Any]:
    """What a runner adds to `nats.connect` to reach a `grantline dev` NATS, read from its dev.json."""
    tls = info.get("nats_tls")
    if not tls:
        return {}
    context: ssl.SSLContext = client_ssl_context(
        Path(tls["ca_file"]),
        Path(tls["cert_file"]) if tls.get("cert_file") else None,
        Path(tls["key_file"]) if tls.get("key_file") else None,
    )
    return {"tls": context, "tls_handshake_first": True}
