"""``grantline nats-config``: render the nats-server accounts, users, permissions and auth callout.

Without ``--passwords`` each password is a reference to the nats-server process's environment
(``$GRANTLINE_NATS_PASSWORD_VAULT``, ...), and without ``--callout-issuer`` so is the callout issuer's
public key (``$GRANTLINE_NATS_CALLOUT_ISSUER``), so the output holds no secret and nothing specific
to one deployment: docker-compose and Kubernetes mount it as is and feed nats-server the values.
"""

import json
from pathlib import Path

import typer

from grantline.runtime.nats.permissions import (
    CALLOUT_ISSUER_ENV,
    PermissionFileError,
    default_permissions_path,
    load_permissions,
)
from grantline.runtime.nats.server_config import bcrypt_passwords, password_env_name, render_authorization

app = typer.Typer(add_completion=False, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def nats_config(
    file: Path = typer.Option(None, "--file", help="the permission file (default: the checkout's)"),
    passwords: Path = typer.Option(
        None,
        "--passwords",
        help="JSON {user: password} (default: $GRANTLINE_NATS_PASSWORD_<USER> refs)",
    ),
    bcrypt: bool = typer.Option(False, "--bcrypt", help="write bcrypt hashes of the --passwords"),
    user: list[str] = typer.Option(None, "--user", help="only these users (default: all)"),
    output: Path = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
    list_env: bool = typer.Option(False, "--list-env", help="print the password variable of each user"),
    callout_issuer: str = typer.Option(
        None,
        "--callout-issuer",
        help=f"the auth-callout issuer's public account nkey (default: ${CALLOUT_ISSUER_ENV} at run time)",
    ),
) -> None:
    """Render the nats-server ``authorization`` block for Grantline's NATS users."""
    try:
        permissions = load_permissions(file or default_permissions_path())
        if list_env:
            for name in user or list(permissions.users):
                permissions.user(name)
                typer.echo(f"{name}\t{password_env_name(name)}")
            typer.echo(f"(callout issuer public key)\t{CALLOUT_ISSUER_ENV}")
            return
        mapping: dict[str, str] | None = None
        if passwords is not None:
            loaded = json.loads(passwords.read_text())
            mapping = {str(k): str(v) for k, v in loaded.items()}
            if bcrypt:
                mapping = bcrypt_passwords(mapping)
        elif bcrypt:
            raise PermissionFileError("--bcrypt needs --passwords")
        rendered = render_authorization(
            permissions, mapping, users=user or None, callout_issuer=callout_issuer
        )
    except (PermissionFileError, OSError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        output.write_text(rendered)
        if mapping is not None:
            output.chmod(0o600)
