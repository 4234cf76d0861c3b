"""How ``grantline dev`` fails to start: one sentence on the terminal, the traceback in a log file.

A newcomer who meets a traceback cannot tell a taken port from a bug. Every start-up failure is turned
into a sentence saying what failed and what to do; the traceback goes to ``<data dir>/logs/dev.log`` (or
a temporary file when the data directory cannot be written), whose path the sentence gives.
"""

import errno
import tempfile
import traceback
import urllib.error
from pathlib import Path


class StartUpFailure(Exception):
    """A start-up problem already phrased for the person at the terminal."""


def check_data_dir(root: Path) -> None:
    """Refuse early, in one sentence, a data directory this user cannot create or write to."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".grantline-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StartUpFailure(
            f"the data directory {root} cannot be written ({error.strerror or error}); "
            "make it writable for this user or choose another with --data-dir"
        ) from None


def record_traceback(root: Path, stage: str) -> Path:
    """Append the current exception's traceback to the dev log; returns where it went."""
    text = f"grantline dev failed while {stage}:\n{traceback.format_exc()}\n"
    log = root / "logs" / "dev.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as file:
            file.write(text)
        return log
    except OSError:
        with tempfile.NamedTemporaryFile("w", prefix="grantline-dev-", suffix=".log", delete=False) as file:
            file.write(text)
            return Path(file.name)


def explain(error: BaseException, stage: str, log: Path) -> str:
    """One sentence for ``error``, raised while ``stage``: what failed, and what to do."""
    from grantline.devstack.embedded import EmbeddedServerError

    if isinstance(error, StartUpFailure):
        return str(error)
    if isinstance(error, EmbeddedServerError):
        # The first line says what happened; the server's log tail that follows is in the log file.
        reason = str(error).splitlines()[0].rstrip(";: ")
        return f"{stage} failed: {reason}; details in {log}"
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" {error.filename}" if error.filename else ""
        return (
            f"{stage} failed: cannot write{where} ({error.strerror}); "
            f"make the data directory writable or choose another with --data-dir; details in {log}"
        )
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"{stage} failed: the disk is full; free some space and start again; details in {log}"
    if isinstance(error, urllib.error.HTTPError):
        # Our own loopback API refused a set-up call: its status says which way (its body is in the log).
        return f"{stage} failed: the local API answered HTTP {error.code}; details in {log}"
    # Anything else is unexpected: name it by its type only (a message may quote a URL with a password).
    return f"{stage} failed ({type(error).__name__}); the traceback is in {log}"
