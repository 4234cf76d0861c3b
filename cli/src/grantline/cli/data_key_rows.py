"""Tenants' versioned data keys from the command line: rotation, the minimum decryption version,
usage per version, and the keys a re-seal run seals with (counted like the vault's own seals).

The statements are the vault's (grantline.vault.adapters.data_key_store), run on a synchronous
psycopg connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from grantline.runtime.db.urls import libpq_url
from grantline.vault.adapters.data_key_store import (
    ADD_VERSION_SQL,
    NEWEST_VERSION_SQL,
    RESERVE_SQL,
    TENANT_KEYS_SQL,
    sealed_key_id_sql,
)
from grantline.vault.domain import (
    DataKey,
    DecryptionError,
    Keyring,
    WrappedDataKey,
    generate_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from grantline.vault.domain.data_key_versions import TenantDataKeys

# Every column holding a sealed value, with the table's tenant column: all of them name their data
# key in their header. Pending revocations keep a token as it was sealed in its connection.
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "vault.connections": ("access_token", "refresh_token", "id_token", "api_key"),
    "vault.provider_apps": ("client_secret", "webhook_secret"),
    "vault.pending_revocations": ("sealed_token",),
}
# Bounds the number of rotations a re-seal can race against before giving up.
_RESERVE_PASSES = 8


def add_version(
    conn: psycopg.Connection[Any], keyring: Keyring, tenant_id: str, *, after: int | None
) -> int | None:
    """Create the tenant's next data key version (see `DataKeyStore.add_version`)."""
    wrapped = wrap_data_key(keyring, tenant_id, generate_data_key())
    row = conn.execute(
        ADD_VERSION_SQL,  # type: ignore[arg-type]
        {
            "tenant_id": tenant_id,
            "after": after,
            "data_key_id": wrapped.data_key_id,
            "master_key_id": wrapped.master_key_id,
            "wrapped": wrapped.ciphertext,
        },
    ).fetchone()
    return None if row is None else int(row[0])


def rotate_data_keys(database_url: str, keyring: Keyring, tenant_ids: list[str] | None) -> dict[str, int]:
    """Add a newest data key version for each tenant (every tenant with a key when None); new values
    are sealed with it at once, older versions keep opening what they sealed."""
    rotated: dict[str, int] = {}
    with psycopg.connect(libpq_url(database_url), autocommit=True, application_name="grantline-keys") as conn:
        if tenant_ids is None:
            tenant_ids = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT tenant_id FROM vault.data_keys ORDER BY 1"
                ).fetchall()
            ]
        for tenant_id in tenant_ids:
            version = add_version(conn, keyring, tenant_id, after=None)
            if version is not None:
                rotated[tenant_id] = version
    return rotated


@dataclass(frozen=True)
class VersionUsage:
    """One data key version of a tenant and how much it is used."""

    tenant_id: str
    version: int
    data_key_id: str
    encryptions: int
    sealed_values: int
    min_decryption_version: int

    @property
    def retired(self) -> bool:
        """Below the tenant's minimum decryption version: what it sealed no longer opens."""
        return self.version < self.min_decryption_version


def version_usage(conn: psycopg.Connection[Any], tenant_id: str | None = None) -> list[VersionUsage]:
    """Every version (of one tenant, or of all) with its encryption count and sealed values in place."""
    counted = " UNION ALL ".join(
        f"SELECT tenant_id, {sealed_key_id_sql(column)} AS data_key_id FROM {table}"  # noqa: S608
        f" WHERE {column} IS NOT NULL AND (CAST(%(tenant_id)s AS text) IS NULL OR tenant_id = %(tenant_id)s)"
        for table, columns in SEALED_COLUMNS.items()
        for column in columns
    )
    query = f"""
WITH sealed AS ({counted}),
per_key AS (SELECT tenant_id, data_key_id, count(*) AS n FROM sealed GROUP BY tenant_id, data_key_id)
SELECT k.tenant_id, k.version, k.data_key_id, k.encryptions, COALESCE(per_key.n, 0) AS sealed_values,
       COALESCE(p.min_decryption_version, 1) AS min_decryption_version
  FROM vault.data_keys k
  LEFT JOIN per_key ON per_key.tenant_id = k.tenant_id AND per_key.data_key_id = k.data_key_id
  LEFT JOIN vault.data_key_policies p ON p.tenant_id = k.tenant_id
 WHERE CAST(%(tenant_id)s AS text) IS NULL OR k.tenant_id = %(tenant_id)s
 ORDER BY k.tenant_id, k.version
"""  # noqa: S608 - composed of this module's constants only
    with conn.cursor(row_factory=namedtuple_row) as cursor:
        rows = cursor.execute(query, {"tenant_id": tenant_id}).fetchall()  # type: ignore[arg-type]
    return [VersionUsage(*row) for row in rows]


class MinimumRefused(Exception):
    """Raising the minimum decryption version would strand values still sealed below it."""


def set_min_decryption_version(database_url: str, tenant_id: str, version: int, *, force: bool) -> int:
    """Set the tenant's minimum decryption version; return how many sealed values it strands.

    Refused (MinimumRefused) when the version is not one of the tenant's, or when values are still
    sealed under a lower version and `force` is not given: re-seal first (`grantline keys reseal`).
    """
    with psycopg.connect(libpq_url(database_url), autocommit=True, application_name="grantline-keys") as conn:
        usage = version_usage(conn, tenant_id)
        versions = {u.version for u in usage}
        if version < 1 or version not in versions:
            known = ", ".join(str(v) for v in sorted(versions)) or "none"
            raise MinimumRefused(
                f"tenant {tenant_id!r} has no data key version {version} (versions: {known})"
            )
        stranded = sum(u.sealed_values for u in usage if u.version < version)
        if stranded and not force:
            raise MinimumRefused(
                f"{stranded} sealed value(s) of tenant {tenant_id!r} are under versions below {version}: "
                "run `grantline keys reseal` first, or pass --force to make them unreadable"
            )
        with conn.transaction():
            conn.execute(
                "INSERT INTO vault.data_key_policies (tenant_id, min_decryption_version) VALUES (%s, %s)"
                " ON CONFLICT (tenant_id) DO UPDATE"
                " SET min_decryption_version = EXCLUDED.min_decryption_version, updated_at = now()",
                (tenant_id, version),
            )
            # What resolve reads (one row, no join): each version's side of the minimum.
            conn.execute(
                "UPDATE vault.data_keys SET retired = (version < %s), updated_at = now()"
                " WHERE tenant_id = %s",
                (version, tenant_id),
            )
        return stranded


class SyncDataKeys:
    """Tenants' data keys for a re-seal run: loaded per tenant, unwrapped once, seals counted first."""

    def __init__(self, conn: psycopg.Connection[Any], keyring: Keyring, *, max_encryptions: int) -> None:
        self._conn = conn
        self._max_encryptions = max_encryptions
        self._keyring = keyring
        self._keys: dict[str, TenantDataKeys | DecryptionError] = {}
        self._unwrapped: dict[tuple[str, str], DataKey] = {}

    def reserve(self, tenant_id: str, encryptions: int) -> None:
        """Count `encryptions` on the tenant's newest version (adding one at the limit), then reload."""
        params = {"tenant_id": tenant_id, "n": encryptions, "limit": self._max_encryptions}
        for _ in range(_RESERVE_PASSES):
            if self._conn.execute(RESERVE_SQL, params).fetchone() is not None:  # type: ignore[arg-type]
                self._load(tenant_id)
                return
            newest = self._conn.execute(NEWEST_VERSION_SQL, params).fetchone()  # type: ignore[arg-type]
            after = newest[0] if newest and newest[0] is not None else 0
            add_version(self._conn, self._keyring, tenant_id, after=after)
        raise RuntimeError("could not count seals on a data key: rotation keeps racing")

    def get(self, tenant_id: str) -> TenantDataKeys:
        """The tenant's keys (as loaded by the last `reserve`); raises DecryptionError without any."""
        keys = self._keys.get(tenant_id)
        if keys is None:
            keys = self._load(tenant_id)
        if isinstance(keys, DecryptionError):
            raise keys
        return keys

    def _load(self, tenant_id: str) -> TenantDataKeys | DecryptionError:
        with self._conn.cursor(row_factory=namedtuple_row) as cursor:
            rows = cursor.execute(TENANT_KEYS_SQL, {"tenant_id": tenant_id}).fetchall()  # type: ignore[arg-type]
        keys: TenantDataKeys | DecryptionError
        if not rows:
            keys = DecryptionError("tenant has no data key", reason="no_data_key")
        else:
            keys = TenantDataKeys.from_rows(tenant_id, rows, lambda wrapped: self._unwrap(tenant_id, wrapped))
        self._keys[tenant_id] = keys
        return keys

    def _unwrap(self, tenant_id: str, wrapped: WrappedDataKey) -> DataKey:
        cache_key = (tenant_id, wrapped.data_key_id)
        key = self._unwrapped.get(cache_key)
        if key is None:
            key = self._unwrapped[cache_key] = unwrap_data_key(self._keyring, tenant_id, wrapped)
        return key
