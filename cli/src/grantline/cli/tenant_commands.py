"""`grantline tenants ...` and `grantline api-keys ...`: tenant administration (auth gateway tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # psycopg is loaded by the commands that run, not by every `grantline` start
    from grantline.runtime.db.driver import DriverConnection

app = typer.Typer(no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants (workspaces).", no_args_is_help=True)
api_keys_app = typer.Typer(help="Tenant API keys (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(api_keys_app, name="api-keys")

DatabaseUrl = typer.Option(None, envvar="GRANTLINE_DATABASE_URL", help="Postgres URL")


def _url(database_url: str | None) -> str:
    if not database_url:
        typer.echo("set GRANTLINE_DATABASE_URL or pass --database-url", err=True)
        raise typer.Exit(2)
    return database_url


def _run(database_url: str | None, work):  # type: ignore[no-untyped-def]
    from grantline.auth_gateway.bootstrap import run_in_transaction
    from grantline.auth_gateway.service.tenants import TenantError

    try:
        return run_in_transaction(_url(database_url), work)
    except TenantError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@tenants_app.command("create")
def create_tenant(
    name: str = typer.Argument(..., help="a unique tenant name"),
    allow_return_to: list[str] = typer.Option(
        [], "--allow-return-to", help="an origin (or origin + path) flows may return to; repeatable"
    ),
    database_url: str = DatabaseUrl,
) -> None:
    """Create a tenant and print its id."""
    from grantline.auth_gateway.service.tenants import create_tenant as create

    async def work(conn: DriverConnection) -> str:
        return (await create(conn, name, allow_return_to)).tenant_id

    typer.echo(_run(database_url, work))


@tenants_app.command("allow-return-to")
def allow_return_to(
    tenant: str = typer.Argument(..., help="tenant name or id"),
    entries: list[str] = typer.Argument(..., help="the complete new allow-list"),
    database_url: str = DatabaseUrl,
) -> None:
    """Replace a tenant's return_to allow-list."""
    from grantline.auth_gateway.service.tenants import set_allow_list

    async def work(conn: DriverConnection) -> None:
        await set_allow_list(conn, tenant, entries)

    _run(database_url, work)
    typer.echo("allow-list updated")


@api_keys_app.command("create")
def create_api_key(
    tenant: str = typer.Argument(..., help="tenant name or id"), database_url: str = DatabaseUrl
) -> None:
    """Mint an API key for a tenant. It is printed once and cannot be shown again."""
    from grantline.auth_gateway.service.tenants import create_api_key as create

    async def work(conn: DriverConnection) -> tuple[str, str]:
        return await create(conn, tenant)

    key_id, key = _run(database_url, work)
    typer.echo(f"key id: {key_id}", err=True)
    typer.echo(key)


@api_keys_app.command("revoke")
def revoke_api_key(
    key_id: str = typer.Argument(..., help="the key id"), database_url: str = DatabaseUrl
) -> None:
    """Revoke an API key by id."""
    from grantline.auth_gateway.service.tenants import revoke_api_key as revoke

    async def work(conn: DriverConnection) -> None:
        await revoke(conn, key_id)

    _run(database_url, work)
    typer.echo(f"revoked {key_id}")
