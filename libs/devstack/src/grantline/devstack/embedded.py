"""Embedded NATS and Postgres servers for `grantline dev` and the test suite.

Each server is a child process we own: it runs in its own process group, logs to a file (never to our
stdout), keeps its port across restarts and is stopped when the parent exits normally (atexit).
`kill()` SIGKILLs the whole group to simulate a crash in fault tests.

This module holds the process plumbing shared by both servers; the servers themselves live in
`embedded_nats` and `embedded_postgres` and are re-exported here.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from grantline.devstack.embedded_nats import EmbeddedNats
    from grantline.devstack.embedded_postgres import EmbeddedPostgres

__all__ = [
    "ChildProcess",
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "SystemToolMissing",
    "free_port",
    "system_tool",
]

_log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop."""


class SystemToolMissing(EmbeddedServerError):
    """A program of the operating system (useradd, ...) that preparing a server needs is not installed."""


# Where distributions keep administrators' programs: a root shell started with `su` or `sudo -E`, or
# a container's default environment, often has a PATH without them.
SYSTEM_TOOL_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")


def system_tool(name: str, *, why: str, package: str) -> str:
    """The full path of system program `name`, looked up in PATH and then where the system keeps it."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_TOOL_DIRS])
    found = shutil.which(name, path=search)
    if found is None:
        raise SystemToolMissing(
            f"{name} is not installed (looked in PATH and {', '.join(SYSTEM_TOOL_DIRS)}), and it is needed "
            f"{why}; install it (Debian/Ubuntu package {package}) or run as a user other than root"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (we can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def log_tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def terminate_stale(
    pid: int, *, name: str, marker: str, sig: int = signal.SIGTERM, timeout: float = 10.0
) -> bool:
    """Stop a leftover `name` process whose command line mentions `marker` (an orphan of a killed run).

    Returns True when such a process was found. A recycled pid belonging to something else is left alone.
    """
    try:
        proc = psutil.Process(pid)
        if name not in proc.name() or not any(marker in arg for arg in proc.cmdline()):
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    _log.warning("stopping leftover %s (pid %d) from an earlier run", name, pid)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return True


class ChildProcess:
    """One supervised server process in its own process group, with output appended to a log file."""

    def __init__(self, name: str, log_file: Path, *, stop_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.log_file = log_file
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start the process; `user` drops privileges (we may run as root, Postgres refuses to)."""
        if self.is_running():
            raise EmbeddedServerError(f"{self.name} is already running (pid {self.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes] = self.log_file.open("ab")
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs.update(user=user, group=user, extra_groups=[])
        try:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                **kwargs,
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor
        _register(self)

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop with `stop_signal`; SIGKILL the group if it does not exit within `timeout`."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(self.stop_signal)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
        self._kill_group(popen)
        self._popen = None
        _unregister(self)

    def kill(self) -> None:
        """SIGKILL the process and everything in its group, as a crash would."""
        popen = self._popen
        if popen is None:
            return
        self._kill_group(popen)
        self._popen = None
        _unregister(self)

    @staticmethod
    def _kill_group(popen: subprocess.Popen[bytes]) -> None:
        try:
            members = psutil.Process(popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            members = []
        # The group id is the child's pid (start_new_session); children such as Postgres backends go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(10)
        _wait_gone(members)


def _wait_gone(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """Wait until `procs` have exited (Postgres backends must be gone before the next start).

    Zombies count as gone: in a container nobody may reap them, but they hold no resources.
    """
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending and time.monotonic() < deadline:
        still = []
        for proc in pending:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    still.append(proc)
        pending = still
        if pending:
            time.sleep(0.02)


_live: set[ChildProcess] = set()
_live_lock = threading.Lock()


def _register(child: ChildProcess) -> None:
    with _live_lock:
        _live.add(child)


def _unregister(child: ChildProcess) -> None:
    with _live_lock:
        _live.discard(child)


@atexit.register
def _stop_all_children() -> None:
    """Leave no orphan servers behind when the parent exits normally."""
    with _live_lock:
        children = list(_live)
    for child in children:
        with contextlib.suppress(Exception):
            child.stop(timeout=10)


def __getattr__(name: str) -> Any:
    # Lazy re-exports: the server modules import the helpers above, so importing them eagerly here
    # would be circular.
    if name == "EmbeddedNats":
        from grantline.devstack.embedded_nats import EmbeddedNats

        return EmbeddedNats
    if name == "EmbeddedPostgres":
        from grantline.devstack.embedded_postgres import EmbeddedPostgres

        return EmbeddedPostgres
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
