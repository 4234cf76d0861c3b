"""``grantline satisfaction``: rebuild the connection mirror; enable or disable catalogue definitions."""

import asyncio

import typer

app = typer.Typer(
    help="The satisfaction service: rebuild the app_user_connect mirror, enable or disable definitions.",
    no_args_is_help=True,
)


@app.command()
def rebuild() -> None:
    """Recompute the mirror from the CONNECTIONS stream and swap it in (live consumers keep running)."""
    from grantline.runtime.db.engine import create_engine
    from grantline.runtime.nats.connection import connect_nats
    from grantline.runtime.telemetry.logging import configure_logging
    from grantline.satisfaction.entrypoints.mirror_rebuild import rebuild_mirror
    from grantline.satisfaction.settings import SatisfactionSettings

    settings = SatisfactionSettings()
    configure_logging("satisfaction-rebuild", level=settings.log_level, fmt="text")

    async def run() -> None:
        engine = create_engine(settings.database_url, pool_size=2, application_name="satisfaction-rebuild")
        nc = await connect_nats(settings, name="satisfaction-rebuild")
        try:
            result = await rebuild_mirror(engine, nc)
        finally:
            await nc.drain()
            await engine.dispose()
        typer.echo(
            f"mirror rebuilt: {result.rows} connections from {result.messages} events"
            f" ({result.malformed} unreadable, skipped)"
        )

    asyncio.run(run())


def _set_enabled(definition_id: str, enabled: bool) -> None:
    from grantline.runtime.db.engine import create_engine, session_factory, transaction
    from grantline.satisfaction.adapters.catalogue_tables import set_definition_enabled
    from grantline.satisfaction.settings import SatisfactionSettings

    async def run() -> bool:
        engine = create_engine(SatisfactionSettings().database_url, pool_size=1)
        try:
            async with transaction(session_factory(engine)) as session:
                return await set_definition_enabled(session, definition_id, enabled)
        finally:
            await engine.dispose()

    if not asyncio.run(run()):
        typer.echo(f"no catalogue definition {definition_id!r}", err=True)
        raise typer.Exit(1)
    state = "enabled" if enabled else "disabled"
    typer.echo(f"{definition_id} {state}; every replica picks it up at its next catalogue refresh")


@app.command()
def disable(definition_id: str = typer.Argument(..., help="a connect_definition id, e.g. gmail")) -> None:
    """Hide a definition from requirements and reports (kept, not deleted; seeding never re-enables it)."""
    _set_enabled(definition_id, False)


@app.command()
def enable(definition_id: str = typer.Argument(..., help="a connect_definition id, e.g. gmail")) -> None:
    """Show a disabled definition again."""
    _set_enabled(definition_id, True)
