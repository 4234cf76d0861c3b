"""Re-sealing every stored secret in the bound format (owner and provider in the associated data).

Values sealed before owner binding (format version 1) stay readable; this migration seals them again
(version 2) while the vault keeps running, so that `GRANTLINE_REQUIRE_BOUND_SEALS` can then be set.

- Batched and resumable: rows are visited in id order, a batch at a time, and each batch is one
  UPDATE statement (all of it lands or none). What is already bound is never selected again, so a
  run that was killed is finished by running it again, and a run with nothing left does nothing.
- Safe beside running vault replicas: no lock is held while decrypting, and each row is written
  back only if its sealed columns (and tenant, owner, provider) are still the bytes that were read
  (compare-and-set). A refresh or re-authorization that wrote meanwhile wins (it wrote the bound
  format itself). The row `version` (the refresh lease's fencing token) is left alone, so a refresh
  in flight still lands its new tokens afterwards.
- An unbound value is first authenticated against its tenant, row and field: a value that does not
  open is reported and left as it is, never re-sealed. Owner and provider are bound as the row has
  them when it is re-sealed (the old format could not tell whether they were altered before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from grantline.common.db.engine import libpq_url
from grantline.vault.domain import (
    DataKey,
    DecryptionError,
    Keyring,
    SealContext,
    SecretField,
    WrappedDataKey,
    reseal_bound,
    unwrap_data_key,
)


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
SEALED_TABLES = (CONNECTIONS, PROVIDER_APPS)


@dataclass
class ResealReport:
    """What a run did: rows re-sealed, rows skipped because the vault wrote them meanwhile, failures."""

    resealed: dict[str, int] = field(default_factory=dict)
    changed_meanwhile: dict[str, int] = field(default_factory=dict)
    # (table, row id, reason): rows left unbound because a value did not open.
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    # Rows still holding an unbound value when the run ended (failures included).
    remaining: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[str, ResealReport], None]


def unbound_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows per table that still hold a value in the unbound format (0 everywhere: migration done)."""
    counts = {}
    for table in SEALED_TABLES:
        query = f"SELECT count(*) FROM {table.name} WHERE {table.unbound_filter()}"  # noqa: S608
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
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
) -> ResealReport:
    """Re-seal every unbound value of every sealed table; `on_batch` hears after each committed batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ResealReport()
    with psycopg.connect(
        libpq_url(database_url), autocommit=True, application_name="grantline-reseal"
    ) as conn:
        keys = _TenantKeys(conn, keyring)
        for table in SEALED_TABLES:
            report.resealed[table.name] = report.changed_meanwhile[table.name] = 0
            after = ""
            while True:
                rows = _unbound_rows(conn, table, after, batch_size)
                if not rows:
                    break
                after = rows[-1].id
                _reseal_batch(conn, table, rows, keys, report)
                if on_batch is not None:
                    on_batch(table.name, report)
                if len(rows) < batch_size:
                    break
        report.remaining = unbound_counts(conn)
    return report


class _TenantKeys:
    """Tenants' data keys, unwrapped once per run."""

    def __init__(self, conn: psycopg.Connection[Any], keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring
        self._keys: dict[str, DataKey | DecryptionError] = {}

    def load(self, tenant_ids: Iterable[str]) -> None:
        missing = sorted(set(tenant_ids) - set(self._keys))
        if not missing:
            return
        rows = self._conn.execute(
            "SELECT tenant_id, data_key_id, master_key_id, wrapped FROM vault.data_keys"
            " WHERE tenant_id = ANY(%s)",
            (missing,),
        ).fetchall()
        for tenant_id, data_key_id, master_key_id, wrapped in rows:
            try:
                self._keys[tenant_id] = unwrap_data_key(
                    self._keyring, tenant_id, WrappedDataKey(master_key_id, data_key_id, bytes(wrapped))
                )
            except DecryptionError as error:
                self._keys[tenant_id] = error
        for tenant_id in missing:
            self._keys.setdefault(tenant_id, DecryptionError("tenant has no data key", reason="no_data_key"))

    def get(self, tenant_id: str) -> DataKey:
        key = self._keys[tenant_id]
        if isinstance(key, DecryptionError):
            raise key
        return key


def _unbound_rows(conn: psycopg.Connection[Any], table: SealedTable, after: str, limit: int) -> list[Any]:
    columns = ", ".join(("id", "tenant_id", *table.binding, *table.columns))
    query = (
        f"SELECT {columns} FROM {table.name} WHERE id > %s AND ({table.unbound_filter()})"  # noqa: S608
        " ORDER BY id LIMIT %s"
    )
    with conn.cursor(row_factory=namedtuple_row) as cursor:
        return cursor.execute(query, (after, limit)).fetchall()  # type: ignore[arg-type]


def _reseal_batch(
    conn: psycopg.Connection[Any],
    table: SealedTable,
    rows: list[Any],
    keys: _TenantKeys,
    report: ResealReport,
) -> None:
    keys.load(row.tenant_id for row in rows)
    writes: list[tuple[Any, dict[str, bytes | None]]] = []
    for row in rows:
        try:
            key = keys.get(row.tenant_id)
            writes.append((row, _resealed_columns(table, row, key)))
        except DecryptionError as error:
            report.failures.append((table.name, row.id, error.reason))
    if not writes:
        return
    written = _compare_and_set(conn, table, writes)
    report.resealed[table.name] += written
    report.changed_meanwhile[table.name] += len(writes) - written


def _resealed_columns(table: SealedTable, row: Any, key: DataKey) -> dict[str, bytes | None]:
    """Every sealed column's new value: unbound ones re-sealed, the rest as they are."""
    values: dict[str, bytes | None] = {}
    for column, secret in table.columns.items():
        sealed = getattr(row, column)
        if sealed is None:
            values[column] = None
            continue
        sealed = bytes(sealed)
        again = reseal_bound(key, context=table.context(row, secret), sealed=sealed)
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
