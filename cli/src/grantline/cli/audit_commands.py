"""``grantline audit``: verify the ledger, export it as JSON lines, run and configure retention."""

import asyncio
import sys
from datetime import datetime

import typer
from pydantic import ValidationError

from grantline.cli.api_client import DataDirOption

app = typer.Typer(help="The audit ledger: verify, export, prune.", no_args_is_help=True)


def _settings():  # type: ignore[no-untyped-def]
    from grantline.audit.settings import AuditSettings

    return AuditSettings()


@app.command()
def verify(tenant: str = typer.Argument(None, help="one tenant (default: every tenant)")) -> None:
    """Verify the hash chain from the latest checkpoint; exit 1 and name the first broken record."""
    from grantline.audit.domain.verification import VerificationResult
    from grantline.audit.entrypoints.admin import verify_tenants

    def report(tenant_id: str, result: VerificationResult) -> None:
        if result.ok:
            typer.echo(f"ok      {tenant_id}: {result.checked} records, head seq {result.head.seq}")
            return
        broken = result.first_broken
        assert broken is not None
        record = f" (record {broken.record_id})" if broken.record_id else ""
        typer.echo(f"BROKEN  {tenant_id}: seq {broken.seq}{record}: {broken.reason.value}: {broken.message}")

    intact = asyncio.run(verify_tenants(_settings(), tenant, report))
    raise typer.Exit(0 if intact else 1)


@app.command()
def export(
    tenant: str = typer.Option(None, help="one tenant (default: every tenant)"),
    user: str = typer.Option(None),
    connection: str = typer.Option(None),
    provider: str = typer.Option(None),
    app_id: str = typer.Option(None, "--app"),
    run: str = typer.Option(None),
    action: str = typer.Option(None, help='an action or a family such as "connection.*"'),
    since: datetime = typer.Option(None, help="occurred at or after (ISO 8601, with a time zone)"),
    until: datetime = typer.Option(None, help="occurred before (ISO 8601, with a time zone)"),
) -> None:
    """Write matching records as JSON lines to stdout, newest first."""
    from grantline.audit.domain.filters import AuditQuery
    from grantline.audit.entrypoints.admin import export_records

    filters = {
        "user_id": user,
        "connection_id": connection,
        "provider": provider,
        "app_id": app_id,
        "run_id": run,
        "action": action,
        "since": since,
        "until": until,
    }
    filters = {key: value for key, value in filters.items() if value is not None}
    try:
        query = AuditQuery.model_validate({**filters, "tenant_id": tenant}) if tenant else None
        if query is None:
            AuditQuery.model_validate({**filters, "tenant_id": "check"})
    except ValidationError as error:
        typer.echo(f"invalid filters: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None

    async def write() -> None:
        async for item in export_records(_settings(), query, all_tenants_filters=filters):
            sys.stdout.write(item.model_dump_json() + "\n")

    asyncio.run(write())


@app.command()
def prune(tenant: str = typer.Option(None, help="one tenant (default: every tenant)")) -> None:
    """Cut records past retention now, behind signed checkpoints (the service also does this hourly)."""
    from grantline.audit.entrypoints.admin import prune as run_prune

    removed = asyncio.run(run_prune(_settings(), tenant))
    for tenant_id, count in removed.items():
        typer.echo(f"{tenant_id}: {count} records removed")


@app.command()
def retention(
    tenant: str = typer.Argument(..., help="the tenant"),
    days: int = typer.Argument(None, min=1, help="days to keep (omit to return to the default)"),
) -> None:
    """Set a tenant's own retention (or clear it to use GRANTLINE_AUDIT_RETENTION_DAYS)."""
    from grantline.audit.entrypoints.admin import set_retention

    asyncio.run(set_retention(_settings(), tenant, days))
    typer.echo(f"{tenant}: retention {'default' if days is None else f'{days} days'}")


@app.command()
def tail(
    count: int = typer.Option(0, "--count", min=0, help="stop after this many records (0: no limit)"),
    follow: bool = typer.Option(False, "--follow", help="keep waiting for new records until Ctrl-C"),
    user: str = typer.Option(None, "--user", help="show only this user's records"),
    as_json: bool = typer.Option(False, "--json", help="one JSON record a line"),
    nats_url: str = typer.Option(None, envvar="GRANTLINE_NATS_URL", help="default: dev.json's"),
    data_dir: str = DataDirOption,
) -> None:
    """Follow the AUDIT stream as the `audit-reader` NATS user (GRANTLINE_NATS_USER/PASSWORD/INBOX_PREFIX,
    else the dev stack's), through its consumer `audit-export`: a record shown is acknowledged there,
    so the next tail goes on where this one stopped."""
    from grantline.cli.audit_tail import AuditReader, reader_from_environment

    reader: AuditReader = reader_from_environment(nats_url, data_dir)
    shown = asyncio.run(reader.tail(count=count, follow=follow, user=user, as_json=as_json, echo=typer.echo))
    if not as_json:
        typer.echo(f"({shown} record{'s' if shown != 1 else ''})", err=True)
