"""``grantline keys``: master keyring status, online rotation (re-wrap of data keys), removal, and
the online re-seal of secrets into the format bound to owner and provider (see reseal.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import typer

from grantline.cli.reseal import ResealReport, reseal_all, unbound_counts_at
from grantline.common.db.engine import libpq_url
from grantline.vault.domain import (
    Keyring,
    KeyringError,
    WrappedDataKey,
    load_keyring_file,
    remove_retired_key,
    rewrap_data_key,
)

app = typer.Typer(
    help="Master keyring of the vault: status, rotation, removal of retired keys, re-sealing.",
    no_args_is_help=True,
)

KEYRING_FILE = typer.Option(..., envvar="GRANTLINE_MASTER_KEYRING_FILE", help="the keyring JSON file")
DATABASE_URL = typer.Option(..., envvar="GRANTLINE_DATABASE_URL", help="Postgres URL")


def write_keyring_file(path: Path, keyring: Keyring) -> None:
    """Replace the keyring file atomically (readers see the old or the new file, never half of one)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".keyring-")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(keyring.to_json())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def usage(database_url: str, keyring: Keyring) -> dict[str, int]:
    """Data keys per master key id."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT master_key_id, count(*) FROM vault.data_keys GROUP BY master_key_id"
        ).fetchall()
    counts = dict.fromkeys(keyring.key_ids, 0)
    counts.update({key_id: int(count) for key_id, count in rows})
    return counts


def rewrap_all(database_url: str, keyring: Keyring, *, batch_size: int = 100) -> int:
    """Re-wrap every data key not under the active master key, one committed batch at a time.

    Resumable: an interrupted run leaves some keys re-wrapped and the rest untouched, and a new run
    picks up the rest. Only wrapped keys move; sealed secrets are never decrypted.
    """
    moved = 0
    with psycopg.connect(libpq_url(database_url)) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT tenant_id, data_key_id, master_key_id, wrapped FROM vault.data_keys "
                    "WHERE master_key_id <> %s ORDER BY tenant_id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (keyring.active_key_id, batch_size),
                ).fetchall()
                for tenant_id, data_key_id, master_key_id, wrapped in rows:
                    new = rewrap_data_key(
                        keyring, tenant_id, WrappedDataKey(master_key_id, data_key_id, bytes(wrapped))
                    )
                    conn.execute(
                        "UPDATE vault.data_keys SET master_key_id = %s, wrapped = %s, updated_at = now() "
                        "WHERE tenant_id = %s",
                        (new.master_key_id, new.ciphertext, tenant_id),
                    )
            moved += len(rows)
            if len(rows) < batch_size:
                return moved


def rotate_master(keyring_file: Path, database_url: str) -> tuple[str, int]:
    """Add a new active master key to the file, then re-wrap every data key under it."""
    keyring = load_keyring_file(keyring_file).with_new_active_key()
    write_keyring_file(keyring_file, keyring)
    return keyring.active_key_id, rewrap_all(database_url, keyring)


@app.command("status")
def status(keyring_file: Path = KEYRING_FILE, database_url: str = DATABASE_URL) -> None:
    """How many data keys each master key wraps, and how many rows still hold unbound sealed values."""
    keyring = load_keyring_file(keyring_file)
    for key_id, count in sorted(usage(database_url, keyring).items()):
        marker = " (active)" if key_id == keyring.active_key_id else ""
        missing = "" if key_id in keyring else " (NOT IN KEYRING)"
        typer.echo(f"{key_id}{marker}{missing}: {count} data key(s)")
    for table, count in unbound_counts_at(database_url).items():
        typer.echo(f"{table}: {count} row(s) with secrets in the unbound format (1)")


@app.command("rotate-master")
def rotate_master_command(keyring_file: Path = KEYRING_FILE, database_url: str = DATABASE_URL) -> None:
    """Generate a master key, make it active in the keyring file, re-wrap every data key (online)."""
    key_id, moved = rotate_master(keyring_file, database_url)
    typer.echo(f"active master key is now {key_id}; re-wrapped {moved} data key(s)")


@app.command("rewrap")
def rewrap_command(keyring_file: Path = KEYRING_FILE, database_url: str = DATABASE_URL) -> None:
    """Resume an interrupted rotation: re-wrap data keys still under an older master key."""
    keyring = load_keyring_file(keyring_file)
    typer.echo(f"re-wrapped {rewrap_all(database_url, keyring)} data key(s) under {keyring.active_key_id}")


@app.command("remove-master")
def remove_master(
    key_id: str = typer.Argument(..., help="the retired master key id"),
    keyring_file: Path = KEYRING_FILE,
    database_url: str = DATABASE_URL,
) -> None:
    """Remove a retired master key from the file, refusing while any data key still uses it."""
    keyring = load_keyring_file(keyring_file)
    try:
        smaller = remove_retired_key(keyring, key_id, usage(database_url, keyring))
    except KeyringError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    write_keyring_file(keyring_file, smaller)
    typer.echo(f"removed {key_id}; {len(smaller)} key(s) remain")


@app.command("reseal")
def reseal_command(
    keyring_file: Path = KEYRING_FILE,
    database_url: str = DATABASE_URL,
    batch_size: int = typer.Option(100, min=1, help="rows per committed batch"),
) -> None:
    """Seal every secret again in the format bound to owner and provider (online, resumable)."""

    def progress(table: str, report: ResealReport) -> None:
        typer.echo(f"{table}: {report.resealed[table]} row(s) re-sealed so far")

    report = reseal_all(
        database_url, load_keyring_file(keyring_file), batch_size=batch_size, on_batch=progress
    )
    for table, count in report.resealed.items():
        typer.echo(
            f"{table}: re-sealed {count} row(s); {report.changed_meanwhile[table]} written by the vault "
            f"meanwhile; {report.remaining.get(table, 0)} still unbound"
        )
    for table, row_id, reason in report.failures:
        typer.echo(f"{table} {row_id}: left unbound, a value does not open ({reason})", err=True)
    if report.failures or any(report.remaining.values()):
        typer.echo("unbound values remain: run `grantline keys reseal` again, or see the errors", err=True)
        raise typer.Exit(1)
    typer.echo("every sealed secret is bound: GRANTLINE_REQUIRE_BOUND_SEALS=true can be set")
