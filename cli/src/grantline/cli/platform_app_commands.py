"""``grantline platform-apps put|list``: operators' platform-wide provider apps (the vault's rows).

Straight to Postgres with the vault's keyring (``GRANTLINE_MASTER_KEYRING_FILE``), like
``grantline keys``: the platform's apps are never reachable over the bus, so no tenant, gateway or
runner can read or change them. The client secret is read from a file (or stdin with ``-``), never
from the command line, where shell history and ``ps`` would keep it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer
from pydantic import SecretStr

_APPLICATION = "grantline-platform-apps"

app = typer.Typer(
    help="Platform apps: one OAuth client per provider that every tenant without its own may use.",
    no_args_is_help=True,
)


def _read_secret(source: str | None, what: str) -> SecretStr | None:
    if source is None:
        return None
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    secret = text.strip()
    if not secret:
        typer.echo(f"the {what} is empty", err=True)
        raise typer.Exit(2)
    return SecretStr(secret)


@app.command("put")
def put(
    provider: str = typer.Argument(..., help="a catalogue provider id, e.g. google"),
    client_id: str = typer.Option(..., help="the OAuth client id"),
    client_secret_file: str = typer.Option(
        None, help="file holding the client secret ('-': stdin); omit to keep the stored one"
    ),
    webhook_secret_file: str = typer.Option(
        None,
        help="file holding the provider's webhook signing secret ('-': stdin), so its revocation "
        "webhooks reach this app; omit to keep the stored one",
    ),
    scope: list[str] = typer.Option([], help="a default scope for new connections (repeat)"),
    setting: list[str] = typer.Option([], help="a provider setting, name=value (repeat)"),
    disabled: bool = typer.Option(False, "--disabled", help="store it switched off"),
) -> None:
    """Create or update the platform app of a provider."""
    from grantline.providers.catalogue import load_catalogue
    from grantline.runtime.db.driver import connect
    from grantline.vault.adapters.data_key_store import DataKeyStore
    from grantline.vault.adapters.keyring_source import KeyringSource
    from grantline.vault.domain import DataKeyCache
    from grantline.vault.service.platform_apps import PlatformAppError, put_platform_app
    from grantline.vault.settings import VaultSettings

    settings = VaultSettings()
    pairs = dict(item.split("=", 1) for item in setting if "=" in item)
    if client_secret_file == "-" and webhook_secret_file == "-":
        typer.echo("only one secret can come from stdin", err=True)
        raise typer.Exit(2)
    secret = _read_secret(client_secret_file, "client secret")
    webhook_secret = _read_secret(webhook_secret_file, "webhook secret")

    async def run() -> str:
        keys = DataKeyStore(
            KeyringSource(settings),
            DataKeyCache(max_size=4, ttl_seconds=60),
            max_encryptions=settings.data_key_max_encryptions,
        )
        catalogue = load_catalogue(settings.provider_dirs, sandbox_url=settings.sandbox_url)
        # One transaction: the row lock, the data key reservation and the write commit together.
        async with (
            await connect(settings.database_url, application_name=_APPLICATION) as conn,
            conn.transaction(),
        ):
            return await put_platform_app(
                conn,
                keys,
                catalogue,
                provider=provider,
                client_id=client_id,
                client_secret=secret,
                webhook_secret=webhook_secret,
                scopes=scope,
                settings=pairs,
                enabled=not disabled,
            )

    try:
        app_id = asyncio.run(run())
    except PlatformAppError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"platform app {app_id} for {provider} stored; tenants without their own app use it now")
    if webhook_secret is not None:
        typer.echo(f"its provider webhooks go to {{public URL}}/v1/webhooks/{provider}/{app_id}")


@app.command("list")
def list_() -> None:
    """Every platform app: provider, client id, enabled, its webhook path (never a secret)."""
    from grantline.runtime.db.driver import connect
    from grantline.vault.service.platform_apps import PlatformAppView, list_platform_apps
    from grantline.vault.settings import VaultSettings

    settings = VaultSettings()

    async def run() -> list[PlatformAppView]:
        async with await connect(
            settings.database_url, application_name=_APPLICATION, autocommit=True
        ) as conn:
            return await list_platform_apps(conn)

    for view in asyncio.run(run()):
        webhooks = view.webhook_path if view.has_webhook_secret else "no webhook secret"
        state = "enabled" if view.enabled else "disabled"
        typer.echo(f"{view.provider}\t{view.client_id}\t{state}\t{webhooks}")
