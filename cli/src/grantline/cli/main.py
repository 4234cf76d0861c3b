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

app = typer.Typer(
    help="Grantline: an OAuth connection broker for agent platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(__import__("grantline.cli.nats_commands", fromlist=["app"]).app, name="nats-config")
app.add_typer(__import__("grantline.cli.keys_commands", fromlist=["app"]).app, name="keys")


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
    runtime = ROLES[service].runtime_factory()()
    asyncio.run(runtime.serve())


@app.command()
def migrate(
    database_url: str = typer.Option(None, envvar="GRANTLINE_DATABASE_URL", help="Postgres URL"),
    service: list[str] = typer.Option(None, help="only these services (default: all)"),
) -> None:
    """Apply every service's database migrations (safe to run concurrently and repeatedly)."""
    from grantline.cli.migrate import migrate_all
    from grantline.common.telemetry.logging import configure_logging

    configure_logging("migrate", fmt="text")
    if not database_url:
        typer.echo("set GRANTLINE_DATABASE_URL or pass --database-url", err=True)
        raise typer.Exit(2)
    migrate_all(database_url, service or None)
    typer.echo("migrations applied")


@app.command()
def dev(
    data_dir: str = typer.Option(".grantline", help="where embedded NATS and Postgres keep their data"),
    port: int = typer.Option(8080, help="port of the public API (auth gateway)"),
) -> None:
    """Run every service on this machine, with embedded NATS and Postgres unless URLs are given."""
    from grantline.cli.dev import run_dev

    sys.exit(run_dev(data_dir=data_dir, api_port=port, environ=dict(os.environ)))


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
    app()


if __name__ == "__main__":
    main()
