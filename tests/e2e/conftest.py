"""The end-to-end stack: `grantline dev` started once per module as a subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from e2e_dev_stack import DevStackProcess, running
from fixtures.infra import free_port, server_directory

from grantline.runner import RunnerClient

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
    yield from running(stack)


@pytest.fixture
async def runner(dev_stack: DevStackProcess) -> AsyncIterator[RunnerClient]:
    """The stack's runner, connected as `grantline dev` tells one to (its NATS user and inbox prefix)."""
    info = dev_stack.info
    nc = await nats.connect(
        str(info["nats_url"]),
        user=str(info["nats_user"]),
        password=str(info["nats_password"]),
        inbox_prefix=str(info["nats_inbox_prefix"]),
        connect_timeout=5,
        **dev_stack.nats_connect_options(),
    )
    # With its runner id, the client also follows the identity's durable consumer of outcomes.
    client = RunnerClient(nc, runner_id=str(info["nats_user"]), timeout=30.0)
    try:
        yield client
    finally:
        await client.close()
        await nc.close()
