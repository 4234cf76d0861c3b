"""``grantline dev connect USER PROVIDER``: connect a user through the sandbox without a browser.

It does what the user's browser would: starts the flow through the public API, visits the provider's
authorize URL (the sandbox approves at once) and follows the provider's redirect to Grantline's
callback. Only the sandbox of the running ``grantline dev`` is driven this way; for a real provider,
or to see the pages, ``--link`` prints a connect page to open in a browser instead.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import typer

from grantline.cli.api_client import DataDirOption, api_target, call, read_dev_json

# Where the flow "returns" the browser: never opened, only read for the outcome. Loopback, which the
# dev tenant's allow-list accepts.
RETURN_TO = "http://127.0.0.1:3000/grantline-dev-connect"


def connect(
    user: str = typer.Argument(..., help="the user's id in your platform (e.g. ada@example.com)"),
    provider: str = typer.Argument("sandbox", help="the provider (only the sandbox can be headless)"),
    link: bool = typer.Option(False, "--link", help="print a connect page to open in a browser instead"),
    data_dir: str = DataDirOption,
) -> None:
    """Connect USER to PROVIDER on the running `grantline dev` (headless through the sandbox)."""
    info = read_dev_json(data_dir)
    target = api_target(None, None, data_dir)
    if link:
        session = call(target, "POST", "/v1/connect-sessions", json={"user_id": user})
        typer.echo(f"open this link in a browser to connect {user} (valid until {session['expires_at']}):")
        typer.echo(session["connect_url"])
        return
    initiated = call(
        target,
        "POST",
        "/v1/connections/initiate",
        json={"user_id": user, "provider": provider, "return_to": RETURN_TO},
    )
    authorize_url = str(initiated["authorize_url"])
    if not authorize_url.startswith(str(info["sandbox_url"]) + "/"):
        typer.echo(
            f"error: {provider} is not played by the sandbox, so its consent needs a person; "
            f"open this link in a browser instead: {authorize_url}",
            err=True,
        )
        raise typer.Exit(1)
    outcome = _browse(authorize_url)
    if outcome.get("status") != "connected":
        typer.echo(f"error: the connection failed: {outcome.get('error', 'no outcome')}", err=True)
        raise typer.Exit(1)
    typer.echo(f"connected {user} to {provider}: connection {outcome['connection_id']}")
    typer.echo(f"(to connect in a browser instead: grantline dev connect {user} {provider} --link)")


def _browse(authorize_url: str) -> dict[str, str]:
    """The browser's part: the provider's redirect to the callback, then the callback's outcome."""
    import httpx

    with httpx.Client(timeout=30) as browser:
        at_provider = browser.get(authorize_url)
        callback = at_provider.headers.get("location")
        if at_provider.status_code != 302 or not callback:
            return {"error": f"the sandbox answered {at_provider.status_code} instead of approving"}
        landed = browser.get(callback)
        destination = landed.headers.get("location", "")
        if landed.status_code != 303 or not destination.startswith(RETURN_TO):
            return {"error": f"Grantline's callback answered {landed.status_code}"}
    return {key: values[0] for key, values in parse_qs(urlsplit(destination).query).items()}
