"""``grantline providers|apps|connections``: the admin API from a shell, as a table or ``--json``.

Each command is one call of the public HTTP API with a tenant API key (see api_client), so it can do
exactly what that key may do over HTTP, and nothing more.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from grantline.cli.api_client import (
    ApiKeyOption,
    ApiUrlOption,
    DataDirOption,
    JsonOption,
    api_target,
    call,
    print_json,
    print_rows,
)

providers_app = typer.Typer(help="The provider catalogue as your tenant sees it.", no_args_is_help=True)
apps_app = typer.Typer(help="Your tenant's provider apps (OAuth clients).", no_args_is_help=True)
connections_app = typer.Typer(
    help="Your users' connections: list, show, revoke, and connect links for users.", no_args_is_help=True
)

CONNECTION_COLUMNS = ["connection_id", "user_id", "provider", "status", "account", "scopes", "expires_at"]
APP_COLUMNS = ["provider", "name", "client_id", "has_client_secret", "scopes", "enabled"]
NameOption = typer.Option(
    None, "--name", help="a named app: one more OAuth client for the provider (a second shop's or site's)"
)


def _app_path(provider: str, name: str | None) -> str:
    return f"/v1/provider-apps/{provider}" + (f"/apps/{name}" if name else "")


@providers_app.command("list")
def providers_list(
    category: str = typer.Option(None, help="only this category"),
    configured: bool = typer.Option(False, "--configured", help="only providers with an enabled app"),
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """The providers your users can connect, and whether your tenant has an app for each."""
    catalogue = call(api_target(api_url, api_key, data_dir), "GET", "/v1/providers")
    providers = [
        provider
        for provider in catalogue["providers"]
        if (category is None or provider["category"] == category) and (not configured or provider["enabled"])
    ]
    if as_json:
        print_json(providers)
        return
    print_rows(
        [{**p, "scopes": [s["id"] for s in p["scopes"] if s["default"]]} for p in providers],
        ["id", "name", "category", "auth", "enabled", "scopes"],
        empty="no provider matches",
    )


@apps_app.command("list")
def apps_list(
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """Your provider apps (whether a secret is set, never its value)."""
    apps = call(api_target(api_url, api_key, data_dir), "GET", "/v1/provider-apps")["provider_apps"]
    if as_json:
        print_json(apps)
        return
    print_rows(apps, APP_COLUMNS, empty="no provider app yet; add one with `grantline apps set PROVIDER`")


@apps_app.command("set")
def apps_set(
    provider: str = typer.Argument(..., help="the provider's id (see `grantline providers list`)"),
    client_id: str = typer.Option(..., "--client-id", help="the OAuth client id the provider gave you"),
    client_secret_stdin: bool = typer.Option(
        False, "--client-secret-stdin", help="read the client secret from standard input"
    ),
    scope: list[str] = typer.Option(None, "--scope", help="a default scope of new connections (repeat)"),
    setting: list[str] = typer.Option(None, "--setting", help="NAME=VALUE, a provider setting (repeat)"),
    disabled: bool = typer.Option(False, "--disabled", help="store it disabled"),
    name: str = NameOption,
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """Create or update a provider app.

    The client secret is never a flag (flags show in `ps` and shell history): pass it on standard input
    with --client-secret-stdin, or in GRANTLINE_PROVIDER_CLIENT_SECRET. Without either, the stored
    secret is kept.
    """
    body: dict[str, Any] = {"client_id": client_id, "scopes": scope or [], "enabled": not disabled}
    secret = sys.stdin.readline().strip() if client_secret_stdin else None
    secret = secret or _environment_secret()
    if secret:
        body["client_secret"] = secret
    body["settings"] = _pairs("--setting", setting)
    app = call(api_target(api_url, api_key, data_dir), "PUT", _app_path(provider, name), json=body)
    if as_json:
        print_json(app)
        return
    secret_state = "with a client secret" if app["has_client_secret"] else "without a client secret"
    named = f" {app['name']}" if app.get("name") else ""
    typer.echo(f"provider app {app['provider']}{named} saved ({app['client_id']}, {secret_state})")


def _pairs(flag: str, items: list[str] | None) -> dict[str, str]:
    """``NAME=VALUE`` flags as a mapping; a malformed one ends the command (exit status 2)."""
    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: {flag} {item!r} is not NAME=VALUE", err=True)
            raise typer.Exit(2)
        pairs[key] = value
    return pairs


def _environment_secret() -> str | None:
    import os

    return os.environ.get("GRANTLINE_PROVIDER_CLIENT_SECRET") or None


@apps_app.command("delete")
def apps_delete(
    provider: str = typer.Argument(..., help="the provider's id"),
    name: str = NameOption,
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """Disable a provider app; every connection made with it is revoked."""
    deleted = call(api_target(api_url, api_key, data_dir), "DELETE", _app_path(provider, name))
    if as_json:
        print_json(deleted)
        return
    typer.echo(
        f"provider app {deleted['provider']}{' ' + deleted['name'] if deleted.get('name') else ''} disabled;"
        f" {deleted['revoked_connections']} connection(s) revoked"
    )


@connections_app.command("list")
def connections_list(
    user: str = typer.Option(None, "--user", help="one user's connections"),
    provider: str = typer.Option(None, "--provider"),
    status: str = typer.Option(None, "--status", help="pending, active, reauth_required or revoked"),
    workspace: bool = typer.Option(False, "--workspace", help="workspace connections instead of users'"),
    limit: int = typer.Option(50, min=1, max=500),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the connection ids"),
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """Connections, newest first, with status, scopes, account and expiry (never a secret)."""
    params: dict[str, Any] = {"user_id": user, "provider": provider, "status": status, "limit": limit}
    if workspace:
        params["workspace"] = "true"
    params = {key: value for key, value in params.items() if value is not None}
    page = call(api_target(api_url, api_key, data_dir), "GET", "/v1/connections", params=params)
    if as_json:
        print_json(page["connections"])
        return
    if quiet:
        for connection in page["connections"]:
            typer.echo(connection["connection_id"])
        return
    print_rows(page["connections"], CONNECTION_COLUMNS, empty="no connection matches")


@connections_app.command("show")
def connections_show(
    connection_id: str = typer.Argument(...),
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """One connection's metadata."""
    connection = call(api_target(api_url, api_key, data_dir), "GET", f"/v1/connections/{connection_id}")
    if as_json:
        print_json(connection)
        return
    width = max(len(key) for key in connection)
    for key, value in connection.items():
        shown = ",".join(value) if isinstance(value, list) else "-" if value is None else value
        typer.echo(f"{key.ljust(width)}  {shown}")


@connections_app.command("revoke")
def connections_revoke(
    connection_id: str = typer.Argument(...),
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """Revoke a connection: its secrets are deleted, the provider told, running runs notified."""
    revoked = call(
        api_target(api_url, api_key, data_dir),
        "DELETE",
        f"/v1/connections/{connection_id}",
        params={"reason": "admin"},
    )
    if as_json:
        print_json(revoked)
        return
    typer.echo(f"connection {revoked['connection_id']} revoked")


@connections_app.command("link")
def connections_link(
    user: str = typer.Argument(..., help="the user the link connects accounts for"),
    provider: list[str] = typer.Option(
        None, "--provider", help="offer only this provider (repeat); default: every provider"
    ),
    app: list[str] = typer.Option(
        None, "--app", help="PROVIDER=NAME: connect that provider through your named app (repeat)"
    ),
    expires_in: int = typer.Option(None, "--expires-in", min=60, max=86400, help="seconds (default 1800)"),
    as_json: bool = JsonOption,
    api_url: str = ApiUrlOption,
    api_key: str = ApiKeyOption,
    data_dir: str = DataDirOption,
) -> None:
    """A connect link (a connect session) to send one user: who opens it can connect accounts for that
    user until it expires, so send it to that user only."""
    body: dict[str, Any] = {"user_id": user, "provider_apps": _pairs("--app", app)}
    if provider:
        body["providers"] = provider
    if expires_in is not None:
        body["expires_in"] = expires_in
    session = call(api_target(api_url, api_key, data_dir), "POST", "/v1/connect-sessions", json=body)
    if as_json:
        print_json(session)
        return
    typer.echo(f"{session['connect_url']}\n(for {user}, until {session['expires_at']})")
