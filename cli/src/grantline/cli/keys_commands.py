"""``grantline keys``: master keyring status, online rotation (re-wrap of data keys), removal; tenants'
data key versions (rotation, minimum decryption version); and the online re-seal of secrets into the
bound format under the newest data key version (see reseal.py, data_key_rows.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import typer

from grantline.cli.data_key_rows import (
    MinimumRefused,
    rotate_data_keys,
    set_min_decryption_version,
    version_usage,
)
from grantline.cli.reseal import ResealReport, reseal_all, unbound_counts_at
from grantline.runtime.db.urls import libpq_url
from grantline.vault.domain import (
    Keyring,
    KeyringError,
    WrappedDataKey,
    load_keyring_file,
    remove_retired_key,
    rewrap_data_key,
)
from grantline.vault.domain.data_key_versions import DEFAULT_MAX_ENCRYPTIONS

app = typer.Typer(
    help="Master keyring of the vault: status, rotation, removal of retired keys, re-sealing.",
    no_args_is_help=True,
)

KEYRING_FILE = typer.Option(..., envvar="GRANTLINE_MASTER_KEYRING_FILE", help="the keyring JSON file")
DATABASE_URL = typer.Option(..., envvar="GRANTLINE_DATABASE_URL", help="Postgres URL")
MAX_ENCRYPTIONS = typer.Option(
    DEFAULT_MAX_ENCRYPTIONS,
    envvar="GRANTLINE_DATA_KEY_MAX_ENCRYPTIONS",
    min=16,
    help="values sealed per data key version before the next is created (the vault's setting)",
)


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
                    "WHERE master_key_id <> %s ORDER BY tenant_id, version LIMIT %s FOR UPDATE SKIP LOCKED",
                    (keyring.active_key_id, batch_size),
                ).fetchall()
                for tenant_id, data_key_id, master_key_id, wrapped in rows:
                    new = rewrap_data_key(
                        keyring, tenant_id, WrappedDataKey(master_key_id, data_key_id, bytes(wrapped))
                    )
                    conn.execute(
                        "UPDATE vault.data_keys SET master_key_id = %s, wrapped = %s, updated_at = now() "
                        "WHERE tenant_id = %s AND data_key_id = %s",
                        (new.master_key_id, new.ciphertext, tenant_id, data_key_id),
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
    max_encryptions: int = MAX_ENCRYPTIONS,
) -> None:
    """Seal every secret again in the bound format under its tenant's newest data key version
    (online, resumable)."""

    def progress(table: str, report: ResealReport) -> None:
        typer.echo(f"{table}: {report.resealed[table]} row(s) re-sealed so far")

    report = reseal_all(
        database_url,
        load_keyring_file(keyring_file),
        batch_size=batch_size,
        on_batch=progress,
        max_encryptions=max_encryptions,
    )
    for table, count in report.resealed.items():
        typer.echo(
            f"{table}: re-sealed {count} row(s); {report.changed_meanwhile[table]} written by the vault "
            f"meanwhile; {report.remaining.get(table, 0)} still unbound or under an older version"
        )
    for table, row_id, reason in report.failures:
        typer.echo(f"{table} {row_id}: left as it is, a value does not open ({reason})", err=True)
    if report.failures or any(report.remaining.values()):
        typer.echo("values remain to re-seal: run `grantline keys reseal` again, or see the errors", err=True)
        raise typer.Exit(1)
    typer.echo(
        "every sealed secret is bound and under its tenant's newest data key: "
        "GRANTLINE_REQUIRE_BOUND_SEALS=true can be set, and older versions retired"
    )


@app.command("rotate-data-key")
def rotate_data_key_command(
    tenant: list[str] = typer.Option(None, "--tenant", help="a tenant to rotate (repeatable)"),
    all_tenants: bool = typer.Option(False, "--all", help="rotate every tenant that has a data key"),
    keyring_file: Path = KEYRING_FILE,
    database_url: str = DATABASE_URL,
) -> None:
    """Add a new data key version for a tenant (or all): new secrets are sealed with it at once;
    older versions keep opening what they sealed until `grantline keys reseal` moves it."""
    if bool(tenant) == all_tenants:
        typer.echo("give --tenant T (one or more) or --all", err=True)
        raise typer.Exit(2)
    rotated = rotate_data_keys(database_url, load_keyring_file(keyring_file), None if all_tenants else tenant)
    for tenant_id, version in sorted(rotated.items()):
        typer.echo(f"{tenant_id}: data key version {version} now seals")
    typer.echo(f"rotated {len(rotated)} tenant(s)")


@app.command("data-keys")
def data_keys_command(
    tenant: str | None = typer.Option(None, "--tenant", help="only this tenant"),
    database_url: str = DATABASE_URL,
) -> None:
    """Each tenant's data key versions: encryptions counted, sealed values still under each, retired ones."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        usage = version_usage(conn, tenant)
    for u in usage:
        state = " (retired: below the minimum decryption version)" if u.retired else ""
        typer.echo(
            f"{u.tenant_id} v{u.version} {u.data_key_id}: {u.encryptions} encryption(s), "
            f"{u.sealed_values} sealed value(s){state}"
        )


@app.command("set-min-decryption-version")
def set_min_decryption_version_command(
    tenant: str = typer.Option(..., "--tenant", help="the tenant"),
    version: int = typer.Argument(..., help="the lowest data key version that may still decrypt"),
    force: bool = typer.Option(False, "--force", help="even if values are still sealed below it"),
    database_url: str = DATABASE_URL,
) -> None:
    """Retire a tenant's data key versions below VERSION: what they sealed no longer opens.

    Refused while values are still sealed under a lower version (run `grantline keys reseal`
    first), unless --force: those values are then refused with an error naming the versions.
    """
    try:
        stranded = set_min_decryption_version(database_url, tenant, version, force=force)
    except MinimumRefused as refused:
        typer.echo(str(refused), err=True)
        raise typer.Exit(1) from None
    note = f"; {stranded} sealed value(s) below it no longer open" if stranded else ""
    typer.echo(f"{tenant}: minimum decryption version is now {version}{note}")
