"""``grantline runners create|list|revoke``: runner identities (runner-auth's registry).

Straight to Postgres, like ``grantline tenants``: a created runner connects at once (runner-auth
reads the registry on every connection), and a revoked runner's connections are closed by
runner-auth's sweep within a second or two.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from psycopg import AsyncConnection

app = typer.Typer(help="Runner identities: NATS credentials scoped to tenants.", no_args_is_help=True)

DatabaseUrl = typer.Option(None, envvar="GRANTLINE_DATABASE_URL", help="Postgres URL")
T = TypeVar("T")


def _run(database_url: str | None, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    from grantline.runner_auth.domain.runner import RunnerError
    from grantline.runtime.db.driver import connect

    if not database_url:
        typer.echo("set GRANTLINE_DATABASE_URL or pass --database-url", err=True)
        raise typer.Exit(2)

    async def run() -> T:
        conn = await connect(database_url, application_name="grantline-runners")
        try:
            async with conn.transaction():
                return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except RunnerError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command("create")
def create(
    tenant: list[str] = typer.Option([], "--tenant", help="a tenant this runner serves; repeatable"),
    platform_wide: bool = typer.Option(False, "--platform-wide", help="serve every tenant"),
    name: str = typer.Option("", "--name", help="a label for people"),
    nats_url: str = typer.Option(None, envvar="GRANTLINE_NATS_URL", help="for the printed snippet"),
    database_url: str = DatabaseUrl,
) -> None:
    """Create a runner; its id and secret are printed once (only a hash of the secret is kept)."""
    from grantline.runner_auth.service.runners import IssuedRunner, create_runner

    if bool(tenant) == platform_wide:
        typer.echo("give --tenant (repeatable) or --platform-wide, not both", err=True)
        raise typer.Exit(2)

    async def work(conn: AsyncConnection[Any]) -> IssuedRunner:
        return await create_runner(
            conn, tenants=None if platform_wide else tenant, name=name, created_by="cli"
        )

    issued = _run(database_url, work)
    info = issued.runner.info()
    typer.echo(f"runner id: {info.runner_id}", err=True)
    typer.echo("the secret is shown once; store it now", err=True)
    snippet = {
        "nats_url": nats_url or "nats://127.0.0.1:4222",
        "nats_user": info.runner_id,
        "nats_password": issued.secret.get_secret_value(),
        "nats_inbox_prefix": info.inbox_prefix,
    }
    typer.echo(json.dumps(snippet, indent=2))


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
    include_revoked: bool = typer.Option(False, "--all", help="revoked runners too"),
    database_url: str = DatabaseUrl,
) -> None:
    """List runners (never their secrets)."""
    from grantline.runner_auth.domain.runner import Runner
    from grantline.runner_auth.service.runners import list_runners

    async def work(conn: AsyncConnection[Any]) -> list[Runner]:
        return await list_runners(conn, include_revoked=include_revoked)

    infos = [runner.info() for runner in _run(database_url, work)]
    if as_json:
        typer.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return
    typer.echo(f"{'RUNNER ID':30} {'SCOPE':40} {'NAME':20} {'CREATED':20} REVOKED")
    for info in infos:
        scope = "platform-wide" if info.platform_wide else ",".join(info.tenants)
        revoked = info.revoked_at.strftime("%Y-%m-%d %H:%M") if info.revoked_at else "-"
        created = info.created_at.strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{info.runner_id:30} {scope[:40]:40} {info.name[:20]:20} {created:20} {revoked}")


@app.command("revoke")
def revoke(
    runner_id: str = typer.Argument(..., help="the runner id (rnr_...)"), database_url: str = DatabaseUrl
) -> None:
    """Revoke a runner: it cannot connect again, and its open connections are closed within seconds."""
    from grantline.runner_auth.service.runners import revoke_runner

    async def work(conn: AsyncConnection[Any]) -> None:
        await revoke_runner(conn, runner_id, revoked_by="cli")

    _run(database_url, work)
    typer.echo(f"revoked {runner_id}")


@app.command("issuer-key")
def issuer_key() -> None:
    """Print a new auth-callout issuer key pair as the two variables that carry it.

    GRANTLINE_RUNNER_AUTH_ISSUER_SEED (runner-auth's secret) and GRANTLINE_NATS_CALLOUT_ISSUER (the
    public key nats-server's `auth_callout { issuer }` names); see docs/nats-security.md.
    """
    from grantline.runner_auth.adapters.nats_jwt import key_pair, new_account_seed

    seed = new_account_seed()
    typer.echo(f"GRANTLINE_RUNNER_AUTH_ISSUER_SEED={seed}")
    typer.echo(f"GRANTLINE_NATS_CALLOUT_ISSUER={key_pair(seed).public_key.decode()}")
