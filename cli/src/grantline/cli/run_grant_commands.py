"""`grantline run-grants ...`: the keys satisfaction signs run grants with, and their public half.

The signing set goes to satisfaction only (a Secret); the public set to the vault and the proxy.
Rotation: `keygen --add-to` a new key, roll out the new public set, make the new kid active in
satisfaction (GRANTLINE_RUN_GRANT_ACTIVE_KID), and drop the old key once its grants have expired.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import typer

app = typer.Typer(help="Run grant signing keys (Ed25519 JWK sets).", no_args_is_help=True)


def _write_private(path: Path, document: dict[str, object]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
    os.chmod(path, 0o600)


@app.command("keygen")
def keygen(
    kid: str = typer.Option(None, help="key id (default: rg-<random>)"),
    out: Path = typer.Option(None, "-o", "--out", help="write the private set here (0600)"),
    add_to: Path = typer.Option(None, "--add-to", help="add the new key to this private set (not active)"),
) -> None:
    """Make a new signing key: a private JWK set for satisfaction (print it, or write it to a file)."""
    from grantline.runtime.run_grants import load_key_set, new_signing_key
    from grantline.runtime.settings import KeySetError

    key = new_signing_key(kid or f"rg-{secrets.token_hex(4)}")
    if add_to is not None:
        try:
            document = load_key_set("--add-to", file=add_to, value=None) or {"keys": []}
        except KeySetError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        if any(existing.get("kid") == key["kid"] for existing in document["keys"]):
            typer.echo(f"error: {add_to} already has a key {key['kid']}", err=True)
            raise typer.Exit(2)
        document["keys"].append(key)
        _write_private(add_to, document)
        typer.echo(f"added {key['kid']} to {add_to}; it signs once GRANTLINE_RUN_GRANT_ACTIVE_KID names it")
        return
    document = {"keys": [key]}
    if out is not None:
        _write_private(out, document)
        typer.echo(f"wrote {out} (kid {key['kid']})")
    else:
        typer.echo(json.dumps(document, indent=2))


@app.command("public-keys")
def public_keys(
    private_set: Path = typer.Argument(..., help="the private JWK set (satisfaction's)"),
    out: Path = typer.Option(None, "-o", "--out", help="write the public set here"),
) -> None:
    """The public JWK set for the vault and the proxy."""
    from grantline.runtime.run_grants import load_key_set, public_key_set
    from grantline.runtime.settings import KeySetError

    try:
        document = load_key_set(str(private_set), file=private_set, value=None)
    except KeySetError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    assert document is not None
    text = json.dumps(public_key_set(document), indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text, nl=False)
