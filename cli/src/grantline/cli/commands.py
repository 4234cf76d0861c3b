"""Every command of the ``grantline`` CLI (main.py is its entry point)."""

import asyncio
import os
import sys

import typer

from grantline.cli import admin_commands, audit_commands, dev_connect
from grantline.cli.runners_commands import app as runners_commands_app
from grantline.cli.satisfaction_commands import app as satisfaction_commands_app
from grantline.cli.service_entry import run_service, use_uvloop
from grantline.cli.services import ROLES
from grantline.cli.tenant_commands import app as tenant_commands_app

app = typer.Typer(
    help="Grantline: an OAuth connection broker for agent platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(__import__("grantline.cli.nats_commands", fromlist=["app"]).app, name="nats-config")
app.add_typer(__import__("grantline.cli.keys_commands", fromlist=["app"]).app, name="keys")
app.add_typer(__import__("grantline.cli.run_grant_commands", fromlist=["app"]).app, name="run-grants")
app.add_typer(__import__("grantline.cli.platform_app_commands", fromlist=["app"]).app, name="platform-apps")


@app.command()
def run(service: str = typer.Argument(..., help=f"one of: {', '.join(ROLES)}")) -> None:
    """Run one service, as a Kubernetes Deployment does."""
    code = run_service(service)
    if code:
        raise typer.Exit(code)


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
    from grantline.runtime.telemetry.logging import configure_logging

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


dev_app = typer.Typer(
    help="Run every service on this machine, and try it out (`grantline dev connect`).",
    invoke_without_command=True,
)


@dev_app.callback()
def dev(
    context: typer.Context,
    data_dir: str = typer.Option(
        ".grantline", envvar="GRANTLINE_DEV_DATA_DIR", help="where embedded NATS and Postgres keep their data"
    ),
    port: int = typer.Option(8080, envvar="GRANTLINE_DEV_PORT", help="port of the public API (auth gateway)"),
    tls: bool = typer.Option(False, "--tls", help="embedded NATS over TLS, with a CA generated for it"),
    mutual_tls: bool = typer.Option(
        False, "--mutual-tls", help="as --tls, and every NATS client must present a certificate"
    ),
) -> None:
    """Run every service on this machine, with embedded NATS and Postgres unless URLs are given."""
    if context.invoked_subcommand is not None:
        return
    nats_tls = ["--nats-tls", "mutual" if mutual_tls else "server"] if mutual_tls or tls else []
    # The supervisor runs for as long as the stack: a fresh interpreter with only what it needs, not
    # this process with every command's imports (same pid, so signals and exit codes are unchanged).
    argv = [sys.executable, "-m", "grantline.cli.dev", "--data-dir", data_dir, "--port", str(port), *nats_tls]
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter, arguments as given


dev_app.command("connect")(dev_connect.connect)
app.add_typer(dev_app, name="dev")


@app.command(hidden=True)
def sandbox(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8090)) -> None:
    """Serve the sandbox provider (development and tests only)."""
    use_uvloop()
    from grantline.sandbox import serve

    asyncio.run(serve(host, port))


app.add_typer(audit_commands.app, name="audit")
app.add_typer(tenant_commands_app)  # `tenants ...` and `api-keys ...`
app.add_typer(satisfaction_commands_app, name="satisfaction")
app.add_typer(runners_commands_app, name="runners")
app.add_typer(admin_commands.providers_app, name="providers")
app.add_typer(admin_commands.apps_app, name="apps")
app.add_typer(admin_commands.connections_app, name="connections")
