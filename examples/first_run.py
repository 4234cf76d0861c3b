"""An app runner's first run against `grantline dev`: request a run, get it admitted, resolve a token.

    .venv/bin/python examples/first_run.py ada@example.com [--data-dir .grantline]

It uses the runner SDK (grantline-runner, libs/runner), connecting to NATS as the dev tenant's
runner identity (from dev.json), asks Grantline to admit a run
of the app `first-run` for the user with the `sandbox` provider as its requirement, resolves the
user's token for a tool call, uses it at the sandbox's userinfo endpoint, and finishes the run. The
token itself is never printed: it is the user's credential.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx

from grantline.contract import RunAdmitted
from grantline.runner import RunnerClient

PROVIDER = "sandbox"
APP_ID = "first-run"


def _tls(info: dict[str, Any]) -> dict[str, Any]:
    """TLS options when `grantline dev --tls/--mutual-tls` runs NATS with its own CA."""
    files = info.get("nats_tls")
    if not files:
        return {}
    context = ssl.create_default_context(cafile=files["ca_file"])
    if files.get("cert_file"):
        context.load_cert_chain(files["cert_file"], files["key_file"])
    return {"tls": context, "tls_handshake_first": True}


async def first_run(user: str, info: dict[str, Any]) -> None:
    runner = await RunnerClient.connect(
        info["nats_url"], info["nats_user"], info["nats_password"], timeout=30, **_tls(info)
    )
    run_id = f"run-{uuid.uuid4()}"
    try:
        outcome = await runner.request_run(info["tenant_id"], run_id, user, APP_ID, requirements=[PROVIDER])
        if not isinstance(outcome, RunAdmitted):
            raise SystemExit(f"run {run_id} held: {outcome.message}; connect {user} first")
        print(f"run {run_id} admitted")
        token = await runner.resolve(run_id, PROVIDER, tool="whoami")
        print(f"token resolved for {user} (connection {token.connection_id}, expires {token.expires_at})")
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(
                f"{info['sandbox_url']}/p/standard/userinfo",  # the `sandbox` provider's endpoint
                headers={"Authorization": f"Bearer {token.access_token.get_secret_value()}"},
            )
        answer.raise_for_status()
        print(f"the sandbox says the token belongs to {answer.json()['sub']}")
        await runner.finish(run_id)
        print(f"run {run_id} finished")
    finally:
        await runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user", help="the user connected with `grantline dev connect`")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("GRANTLINE_DEV_DATA_DIR", ".grantline"),
        help="where `grantline dev` wrote dev.json",
    )
    arguments = parser.parse_args()
    info = json.loads((Path(arguments.data_dir) / "dev.json").read_text())
    asyncio.run(first_run(arguments.user, info))


if __name__ == "__main__":
    main()
