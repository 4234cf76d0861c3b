"""Re-sealing stored secrets in the bound format (owner and provider in the associated data) and
under the tenant's newest data key version.

Values sealed before owner binding (format version 1) stay readable, and so do values under older
data key versions; this seals them again (bound, newest version) while the vault keeps running, so
that `GRANTLINE_REQUIRE_BOUND_SEALS` can then be set, or a tenant's minimum decryption version raised.

- Batched and resumable: rows are visited in id order, a batch at a time, and each batch is one
  UPDATE statement (all of it lands or none). What is already bound and under the newest version is
  never selected again, so a
  run that was killed is finished by running it again, and a run with nothing left does nothing.
- Safe beside running vault replicas: no lock is held while decrypting, and each row is written
  back only if its sealed columns (and tenant, owner, provider) are still the bytes that were read
  (compare-and-set). A refresh or re-authorization that wrote meanwhile wins (it wrote the bound
  format itself). The row `version` (the refresh lease's fencing token) is left alone, so a refresh
  in flight still lands its new tokens afterwards.
- The seals a batch may make are counted on the tenant's newest data key first (rotating it when
  it reaches its encryption limit, as the vault does).
- An unbound value is first authenticated against its tenant, row and field: a value that does not
  open is reported and left as it is, never re-sealed. Owner and provider are bound as the row has
  them when it is re-sealed (the old format could not tell whether they were altered before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from grantline.cli.data_key_rows import SyncDataKeys
from grantline.runtime.db.urls import libpq_url
from grantline.vault.adapters.data_key_store import sealed_key_id_sql
from grantline.vault.domain import (
    DecryptionError,
    Keyring,
    SealContext,
    SecretField,
)
from grantline.vault.domain.data_key_versions import DEFAULT_MAX_ENCRYPTIONS, TenantDataKeys


@dataclass(frozen=True)
class SealedTable:
    """A table with sealed columns: which columns, which field each is, and how a row binds them."""

    name: str
    columns: dict[str, SecretField]
    # Columns besides `id` and `tenant_id` that the associated data binds (and the write compares).
    binding: tuple[str, ...]
    context: Callable[[Any, SecretField], SealContext]

    def unbound_filter(self) -> str:
        """SQL: the row has at least one sealed column in the unbound format (first byte 1)."""
        return " OR ".join(f"substring({column} FROM 1 FOR 1) = '\\x01'::bytea" for column in self.columns)

    def stale_filter(self) -> str:
        """SQL: some sealed column is unbound or not under the tenant's newest data key (`newest`)."""
        return " OR ".join(
            f"substring({column} FROM 1 FOR 1) = '\\x01'::bytea"
            f" OR {sealed_key_id_sql(column)} <> newest.data_key_id"
            for column in self.columns
        )

    def from_with_newest(self) -> str:
        """SQL: the table with each row's tenant's newest data key id as `newest.data_key_id`."""
        return (
            f"{self.name} LEFT JOIN LATERAL (SELECT k.data_key_id FROM vault.data_keys k"  # noqa: S608 - constants only
            f" WHERE k.tenant_id = {self.name}.tenant_id ORDER BY k.version DESC LIMIT 1) newest ON true"
        )


CONNECTIONS = SealedTable(
    "vault.connections",
    {
        "access_token": SecretField.ACCESS_TOKEN,
        "refresh_token": SecretField.REFRESH_TOKEN,
        "id_token": SecretField.ID_TOKEN,
        "api_key": SecretField.API_KEY,
    },
    ("owner", "provider"),
    lambda row, secret: SealContext.for_connection(
        row.tenant_id, row.id, owner=row.owner, provider=row.provider, field=secret
    ),
)
PROVIDER_APPS = SealedTable(
    "vault.provider_apps",
    # The webhook secret is sealed with the API_KEY field (see the vault's provider_apps service).
    {"client_secret": SecretField.CLIENT_SECRET, "webhook_secret": SecretField.API_KEY},
    ("provider",),
    lambda row, secret: SealContext.for_provider_app(
        row.tenant_id, row.id, provider=row.provider, field=secret
    ),
)
PENDING_REVOCATIONS = SealedTable(
    "vault.pending_revocations",
    # A provider revocation still to make keeps the token sealed exactly as its connection had it:
    # bound to that connection and to the field it came from, which the row's `field` column names
    # (so the context reads it from the row rather than from this map).
    {"sealed_token": SecretField.REFRESH_TOKEN},
    ("connection_id", "owner", "provider", "field"),
    lambda row, _secret: SealContext.for_connection(
        row.tenant_id, row.connection_id, owner=row.owner, provider=row.provider, field=SecretField(row.field)
    ),
)
# Pending revocations too: else a tenant's old data key version (or the unbound format) could not be
# retired until every revocation retry had drained, and one refused would leave the grant alive.
SEALED_TABLES = (CONNECTIONS, PROVIDER_APPS, PENDING_REVOCATIONS)


@dataclass
class ResealReport:
    """What a run did: rows re-sealed, rows skipped because the vault wrote them meanwhile, failures."""

    resealed: dict[str, int] = field(default_factory=dict)
    changed_meanwhile: dict[str, int] = field(default_factory=dict)
    # (table, row id, reason): rows left unbound because a value did not open.
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    # Rows still holding an unbound value or one under an older version when the run ended.
    remaining: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[str, ResealReport], None]


def unbound_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows per table that still hold a value in the unbound format (0 everywhere: migration done)."""
    return _counts(conn, lambda table: f"{table.name} WHERE {table.unbound_filter()}")


def stale_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows per table with a value unbound or under an older data key version (0: nothing to re-seal)."""
    return _counts(conn, lambda table: f"{table.from_with_newest()} WHERE {table.stale_filter()}")


def _counts(conn: psycopg.Connection[Any], rows_of: Callable[[SealedTable], str]) -> dict[str, int]:
    counts = {}
    for table in SEALED_TABLES:
        row = conn.execute(f"SELECT count(*) FROM {rows_of(table)}").fetchone()  # type: ignore[arg-type]  # noqa: S608
        counts[table.name] = int(row[0]) if row else 0
    return counts


def unbound_counts_at(database_url: str) -> dict[str, int]:
    """`unbound_counts` over a connection of its own."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        return unbound_counts(conn)


def reseal_all(
    database_url: str,
    keyring: Keyring,
    *,
    batch_size: int = 100,
    on_batch: ProgressCallback | None = None,
    max_encryptions: int = DEFAULT_MAX_ENCRYPTIONS,
) -> ResealReport:
    """Re-seal every unbound or older-version value of every sealed table; `on_batch` hears after each
    committed batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ResealReport()
    with psycopg.connect(
        libpq_url(database_url), autocommit=True, application_name="grantline-reseal"
    ) as conn:
        keys = SyncDataKeys(conn, keyring, max_encryptions=max_encryptions)
        for table in SEALED_TABLES:
            report.resealed[table.name] = report.changed_meanwhile[table.name] = 0
            after = ""
            while True:
                rows = _stale_rows(conn, table, after, batch_size)
                if not rows:
                    break
                after = rows[-1].id
                _reseal_batch(conn, table, rows, keys, report)
                if on_batch is not None:
                    on_batch(table.name, report)
                if len(rows) < batch_size:
                    break
        report.remaining = stale_counts(conn)
    return report


def _stale_rows(conn: psycopg.Connection[Any], table: SealedTable, after: str, limit: int) -> list[Any]:
    columns = ", ".join(("id", "tenant_id", *table.binding, *table.columns))
    query = (
        f"SELECT {columns} FROM {table.from_with_newest()}"  # noqa: S608
        f" WHERE id > %s AND ({table.stale_filter()}) ORDER BY id LIMIT %s"
    )
    with conn.cursor(row_factory=namedtuple_row) as cursor:
        return cursor.execute(query, (after, limit)).fetchall()  # type: ignore[arg-type]


def _reseal_batch(
    conn: psycopg.Connection[Any],
    table: SealedTable,
    rows: list[Any],
    keys: SyncDataKeys,
    report: ResealReport,
) -> None:
    # Count the seals this batch may make on each tenant's newest key before making them.
    seals: dict[str, int] = {}
    for row in rows:
        present = sum(getattr(row, column) is not None for column in table.columns)
        seals[row.tenant_id] = seals.get(row.tenant_id, 0) + present
    for tenant_id, count in seals.items():
        if count:
            keys.reserve(tenant_id, count)
    writes: list[tuple[Any, dict[str, bytes | None]]] = []
    for row in rows:
        try:
            tenant_keys = keys.get(row.tenant_id)
            writes.append((row, _resealed_columns(table, row, tenant_keys)))
        except DecryptionError as error:
            report.failures.append((table.name, row.id, error.reason))
    if not writes:
        return
    written = _compare_and_set(conn, table, writes)
    report.resealed[table.name] += written
    report.changed_meanwhile[table.name] += len(writes) - written


def _resealed_columns(table: SealedTable, row: Any, keys: TenantDataKeys) -> dict[str, bytes | None]:
    """Every sealed column's new value: unbound or older-version ones re-sealed, the rest as they are."""
    values: dict[str, bytes | None] = {}
    for column, secret in table.columns.items():
        sealed = getattr(row, column)
        if sealed is None:
            values[column] = None
            continue
        sealed = bytes(sealed)
        again = keys.reseal_to_newest(table.context(row, secret), sealed)
        values[column] = again if again is not None else sealed
    return values


def _compare_and_set(
    conn: psycopg.Connection[Any], table: SealedTable, writes: list[tuple[Any, dict[str, bytes | None]]]
) -> int:
    """Write the batch in one statement; a row lands only if nothing it was read with has changed."""
    keys = ("id", "tenant_id", *table.binding)
    params: dict[str, list[Any]] = {name: [getattr(row, name) for row, _ in writes] for name in keys}
    for column in table.columns:
        params[f"old_{column}"] = [_as_bytes(getattr(row, column)) for row, _ in writes]
        params[f"new_{column}"] = [values[column] for _, values in writes]
    arrays = [f"%({name})s::text[]" for name in keys]
    arrays += [f"%(old_{column})s::bytea[]" for column in table.columns]
    arrays += [f"%(new_{column})s::bytea[]" for column in table.columns]
    names = [*keys, *(f"old_{c}" for c in table.columns), *(f"new_{c}" for c in table.columns)]
    assignments = ", ".join(f"{column} = u.new_{column}" for column in table.columns)
    unchanged = " AND ".join(
        [f"t.{name} = u.{name}" for name in keys]
        + [f"t.{column} IS NOT DISTINCT FROM u.old_{column}" for column in table.columns]
    )
    statement = (
        f"UPDATE {table.name} AS t SET {assignments}"  # noqa: S608 - this module's constants only
        f" FROM unnest({', '.join(arrays)}) AS u({', '.join(names)})"
        f" WHERE {unchanged} RETURNING t.id"
    )
    return len(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]


def _as_bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
