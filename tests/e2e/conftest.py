"""The end-to-end stack: `grantline dev` started once per module as a subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_dev_stack import DevStackProcess
from fixtures.infra import free_port, server_directory

# Short token lifetimes need short refresh margins. The vault refreshes inline only once a token has
# expired (margin 0), so every refresh the walk sees before a resolve was the refresher's; the
# refresher refreshes sandbox tokens 3 s before expiry (capped at half their life), with no jitter.
E2E_ENVIRONMENT = {
    "GRANTLINE_REFRESH_MARGIN_SECONDS": "0",
    "GRANTLINE_REFRESH_PROVIDER_MARGINS": json.dumps({"sandbox": 3}),
    "GRANTLINE_REFRESH_JITTER_SECONDS": "0",
    "GRANTLINE_REFRESH_POLL_SECONDS": "0.2",
    # The strictest logs: a secret that only a debug line would show still fails the leak scan. Spans
    # are exported to stdout, which `grantline dev` writes to each service's log file: the log scan
    # covers every span attribute and event as it leaves the process.
    "GRANTLINE_LOG_LEVEL": "DEBUG",
    "GRANTLINE_OTEL_CONSOLE": "true",
}


# The stack's NATS transport: "" (plaintext), "server" (`grantline dev --tls`) or "mutual"
# (`--mutual-tls`, the default: the walk runs over mutual TLS). `GRANTLINE_TEST_E2E_NATS_TLS=`
# (empty) runs it in clear.
E2E_NATS_TLS = os.environ.get("GRANTLINE_TEST_E2E_NATS_TLS", "mutual").strip() or None


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[DevStackProcess]:
    """A running `grantline dev` (its `dev.json` in ``.info``); stopped with SIGTERM afterwards."""
    # Not under pytest's tmp_path: any pytest that starts meanwhile (on this machine) resets
    # /tmp/pytest-of-<user> to 0700, locking out the unprivileged user Postgres runs as.
    with server_directory("e2e") as root:
        yield from _running_stack(root)


def _running_stack(root: Path) -> Iterator[DevStackProcess]:
    stack = DevStackProcess(
        data_dir=root / "grantline",
        api_port=free_port(),
        extra_env=E2E_ENVIRONMENT,
        nats_tls=E2E_NATS_TLS,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        # Shown by pytest only when a test failed: where to look first.
        print(f"grantline dev output:\n{stack.output()}\nwarnings and errors:\n{stack.problems()}")
