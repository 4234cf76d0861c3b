"""The ``grantline`` command: one CLI in which each service is a role."""

import asyncio
import os
import sys

import typer

from grantline.cli import audit_commands
from grantline.cli.runners_commands import app as runners_commands_app
from grantline.cli.satisfaction_commands import app as satisfaction_commands_app
from grantline.cli.services import ROLES
from grantline.cli.tenant_commands import app as tenant_commands_app
from grantline.common.nats.tls import NatsTlsError
from grantline.common.settings import MissingProductionSetting

app = typer.Typer(
    help="Grantline: an OAuth connection broker for agent platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(__import__("grantline.cli.nats_commands", fromlist=["app"]).app, name="nats-config")
app.add_typer(__import__("grantline.cli.keys_commands", fromlist=["app"]).app, name="keys")
app.add_typer(__import__("grantline.cli.run_grant_commands", fromlist=["app"]).app, name="run-grants")


def _use_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass


@app.command()
def run(service: str = typer.Argument(..., help=f"one of: {', '.join(ROLES)}")) -> None:
    """Run one service, as a Kubernetes Deployment does."""
    if service not in ROLES:
        typer.echo(f"unknown service {service!r}; choose one of: {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    _use_uvloop()
    from grantline.common.run_grants import KeySetError

    try:
        runtime = ROLES[service].runtime_factory()()
    except KeySetError as error:
        typer.echo(f"{service} cannot start: {error}", err=True)
        raise typer.Exit(2) from None
    asyncio.run(runtime.serve())


@app.command()
def migrate(
    database_url: str = typer.Option(None, envvar="GRANTLINE_DATABASE_URL", help="Postgres URL"),
    service: list[str] = typer.Option(None, help="only these services' schemas (default: all)"),
    nats: bool = typer.Option(
        True, help="also declare the JetStream streams and consumers (as GRANTLINE_NATS_USER, the operator)"
    ),
) -> None:
    """Apply every service's database migrations, then declare the streams and consumers.

    Safe to run concurrently and repeatedly. The NATS part needs the operator identity
    (GRANTLINE_NATS_URL, GRANTLINE_NATS_USER=operator, GRANTLINE_NATS_PASSWORD, GRANTLINE_NATS_INBOX_PREFIX).
    """
    from grantline.cli.migrate import MigrateSettings, NatsDeclarationFailed, declare_nats, migrate_all
    from grantline.common.telemetry.logging import configure_logging

    configure_logging("migrate", fmt="text")
    if not database_url:
        typer.echo("set GRANTLINE_DATABASE_URL or pass --database-url", err=True)
        raise typer.Exit(2)
    migrate_all(database_url, service or None)
    typer.echo("migrations applied")
    if nats:
        try:
            asyncio.run(declare_nats(MigrateSettings()))
        except NatsDeclarationFailed as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo("streams and consumers declared")


@app.command()
def dev(
    data_dir: str = typer.Option(".grantline", help="where embedded NATS and Postgres keep their data"),
    port: int = typer.Option(8080, help="port of the public API (auth gateway)"),
    tls: bool = typer.Option(False, "--tls", help="embedded NATS over TLS, with a CA generated for it"),
    mutual_tls: bool = typer.Option(
        False, "--mutual-tls", help="as --tls, and every NATS client must present a certificate"
    ),
) -> None:
    """Run every service on this machine, with embedded NATS and Postgres unless URLs are given."""
    from grantline.cli.dev import NatsTlsMode, run_dev

    nats_tls: NatsTlsMode | None = "mutual" if mutual_tls else "server" if tls else None
    sys.exit(run_dev(data_dir=data_dir, api_port=port, environ=dict(os.environ), nats_tls=nats_tls))


@app.command(hidden=True)
def sandbox(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8090)) -> None:
    """Serve the sandbox provider (development and tests only)."""
    _use_uvloop()
    from grantline.sandbox import serve

    asyncio.run(serve(host, port))


app.add_typer(audit_commands.app, name="audit")
app.add_typer(tenant_commands_app)  # `tenants ...` and `api-keys ...`
app.add_typer(satisfaction_commands_app, name="satisfaction")
app.add_typer(runners_commands_app, name="runners")


def main() -> None:
    """Entry point of the ``grantline`` script."""
    try:
        app()
    except (NatsTlsError, MissingProductionSetting) as error:
        # A configuration mistake, not a crash: one sentence an operator can act on, no traceback.
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
