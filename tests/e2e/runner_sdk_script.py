"""An app runner that has only `grantline-runner` installed: run by tests/e2e/test_e2e_runner_sdk.py with
the python of a bare virtualenv, never imported by the suite.

Reads the stack's dev.json values and the run to make from stdin (JSON); does one run with the async
client and one with the sync client (check, request, admission, resolve, grant renewal, finish); prints
what it saw as JSON on stdout: no token, only whether it looked like one and its connection.
"""

import asyncio
import importlib.util
import json
import ssl
import sys
import time
import uuid
from typing import Any

from grantline.contract import RunAdmitted
from grantline.runner import RunnerClient, SyncRunnerClient

# What the service stack would bring along; none of it may be importable here.
SERVICE_STACK = ("grantline.runtime", "sqlalchemy", "opentelemetry", "fastapi", "alembic")


def tls_options(tls: dict[str, str] | None) -> dict[str, Any]:
    if not tls:
        return {}
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls["ca_file"])
    if tls.get("cert_file"):
        context.load_cert_chain(tls["cert_file"], tls.get("key_file"))
    return {"tls": context, "tls_handshake_first": True}


async def async_run(job: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    runner = await RunnerClient.connect(job["nats_url"], job["nats_user"], job["nats_password"], **options)
    try:
        report = await runner.check(job["tenant_id"], job["user_id"], [job["provider"]])
        run_id = f"sdk-async-{uuid.uuid4()}"
        outcome = await runner.request_run(
            job["tenant_id"], run_id, job["user_id"], job["app_id"], [job["provider"]], trigger="api"
        )
        if not isinstance(outcome, RunAdmitted):
            outcome = await runner.wait_until_admitted(run_id)
        token = await runner.resolve(run_id, job["provider"], tool="sdk_async")
        await runner.finish(run_id)
        return {
            "run_id": run_id,
            "satisfied": report.is_satisfied,
            "admitted": isinstance(outcome, RunAdmitted),
            "token_looks_right": token.access_token.get_secret_value().startswith("sbx_at_"),
            "connection_id": token.connection_id,
        }
    finally:
        await runner.close()


def sync_run(job: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    identity = (job["nats_url"], job["nats_user"], job["nats_password"])
    with SyncRunnerClient.connect(*identity, **options) as runner:
        run_id = f"sdk-sync-{uuid.uuid4()}"
        outcome = runner.request_run(
            job["tenant_id"], run_id, job["user_id"], job["app_id"], [job["provider"]], trigger="api"
        )
        if not isinstance(outcome, RunAdmitted):
            outcome = runner.wait_until_admitted(run_id)
        first_grant = runner.grant(run_id)
        renewed = runner.renew_grant(run_id)
        token = runner.resolve(run_id, job["provider"], tool="sdk_sync")
        runner.finish(run_id)
        return {
            "run_id": run_id,
            "admitted": isinstance(outcome, RunAdmitted),
            "renewed": renewed != first_grant,
            "token_looks_right": token.access_token.get_secret_value().startswith("sbx_at_"),
            "connection_id": token.connection_id,
        }


def main() -> None:
    job = json.load(sys.stdin)
    options = {"connect_timeout": 10, **tls_options(job.get("nats_tls"))}
    started = time.monotonic()
    result: dict[str, Any] = {
        "importable": [name for name in SERVICE_STACK if importlib.util.find_spec(name) is not None],
        "async": asyncio.run(async_run(job, options)),
    }
    result["async_seconds"] = time.monotonic() - started
    result["sync"] = sync_run(job, options)
    result["seconds"] = time.monotonic() - started
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
