"""`grantline dev` and `grantline run` that cannot start: one sentence, a non-zero exit, no traceback.

Each test forces one real failure (a port another program holds, a system tool that is not there, a
data directory that cannot be written) and reads what a newcomer would read on the terminal; the
traceback, where there is one, is in the log file the sentence names.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.infra import server_directory
from fixtures.start_up import run_role

from grantline.devstack import embedded
from grantline.devstack.embedded import SystemToolMissing, system_tool

pytestmark = pytest.mark.timeout(180)


def grantline_dev(
    data_dir: Path, port: int, *, prelude: str = "", path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`grantline dev` in a clean environment; ``prelude`` is Python run first in that process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
    if path is not None:
        env["PATH"] = path
    # `grantline dev` execs `python -m grantline.cli.dev` (the supervisor): a prelude must run in that one.
    entry = "grantline.cli.dev" if prelude else "grantline.cli.main"
    prefix = [] if prelude else ["dev"]
    code = f"import sys\n{prelude}\nfrom {entry} import main\nsys.argv = ['grantline'] + sys.argv[1:]\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *prefix, "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stdout + result.stderr
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with server_directory("start-up") as root:
        yield root / "grantline"


def test_dev_says_the_port_is_taken(data_dir: Path, taken_port: int) -> None:
    result = grantline_dev(data_dir, taken_port)
    assert_one_sentence(result, 2, f"port {taken_port} is taken", "--port")


@contextlib.contextmanager
def read_only_directory(root: Path) -> Iterator[Path]:
    """A directory nobody can write to: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    target = root / "read-only"
    target.mkdir(parents=True)
    if os.geteuid() != 0:
        target.chmod(0o555)
        try:
            yield target
        finally:
            target.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)], check=False)
    if mounted.returncode != 0:
        pytest.skip("as root, a read-only directory needs a read-only mount, and mount is not permitted here")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_dev_says_the_data_directory_cannot_be_written(data_dir: Path) -> None:
    with read_only_directory(data_dir.parent) as read_only:
        for where in (read_only, read_only / "grantline"):  # an existing directory, and one to create
            result = grantline_dev(where, 0)
            sentence = assert_one_sentence(result, 2, f"the data directory {where} cannot be written")
            assert "--data-dir" in sentence


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a system user (and useradd) for Postgres")
def test_dev_says_a_system_tool_is_missing(data_dir: Path) -> None:
    # As on the reported machine: root, useradd not on the PATH; here it is nowhere else either, and
    # Postgres's system user does not exist yet, so preparing Postgres needs it. NATS starts first.
    prelude = (
        "import grantline.devstack.embedded as e, grantline.devstack.embedded_postgres as p\n"
        "e.SYSTEM_TOOL_DIRS = ()\n"
        "p.POSTGRES_SYSTEM_USER = 'grantline-absent-user'\n"
    )
    result = grantline_dev(data_dir, 0, prelude=prelude, path="/usr/bin:/bin")
    sentence = assert_one_sentence(result, 1, "useradd is not installed", "passwd")
    log = Path(re.search(r"details in (\S+)$", sentence).group(1))  # type: ignore[union-attr]
    assert log == data_dir / "logs" / "dev.log"
    assert "Traceback" in log.read_text() and "SystemToolMissing" in log.read_text()
    assert "Stopped." in result.stdout  # the embedded NATS it had started is stopped again


def test_system_tools_are_found_where_the_system_keeps_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    found = [name for name in ("useradd", "nologin") if Path("/usr/sbin", name).exists()]
    if not found:
        pytest.skip("this system keeps neither useradd nor nologin in /usr/sbin")
    assert system_tool(found[0], why="for this test", package="passwd") == f"/usr/sbin/{found[0]}"
    monkeypatch.setattr(embedded, "SYSTEM_TOOL_DIRS", ())
    with pytest.raises(SystemToolMissing, match=f"{found[0]} is not installed"):
        system_tool(found[0], why="for this test", package="passwd")


def test_a_service_says_its_port_is_taken(taken_port: int) -> None:
    result = run_role(
        "audit",
        {
            "GRANTLINE_ENVIRONMENT": "development",
            "GRANTLINE_NATS_URL": "nats://127.0.0.1:9",
            "GRANTLINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/grantline",
            "GRANTLINE_HTTP_PORT": str(taken_port),
        },
    )
    assert_one_sentence(result, 2, f"audit cannot start: cannot listen on 127.0.0.1:{taken_port}")
