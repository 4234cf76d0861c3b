"""Tenants' versioned data keys: created on first use, rotated, counted, unwrapped, cached in memory.

Sealing reserves its encryptions on the newest version first, in one UPDATE that only succeeds while
the version stays within `data_key_max_encryptions`; when it does not, the next version is created
and the reservation made there (automatic rotation). The counter therefore never undercounts: a
rolled-back seal leaves its reservation counted, which errs on the side of rotating early. The
resolve path never seals, so it never touches the counter.

Statements run on psycopg directly, on the caller's connection: a use case's transaction
(``runtime.driver_transaction``), or the refresh path's autocommit connection.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import namedtuple_row

from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters.keyring_source import KeyringSource
from grantline.vault.domain import (
    DataKey,
    DataKeyCache,
    DecryptionError,
    WrappedDataKey,
    generate_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from grantline.vault.domain.data_key_versions import TenantDataKeys


def sealed_key_id_sql(sealed: str) -> str:
    """SQL for the data key id a sealed value names in its header (version byte, id length, id);
    null for a null or too short value. `sealed` is a trusted SQL expression (a column name)."""
    return (
        f"CASE WHEN octet_length({sealed}) > 2"
        f" THEN encode(substring({sealed} FROM 3 FOR get_byte({sealed}, 1)), 'escape') END"
    )


# The tenant's versions and its minimum decryption version (1 without a policy row).
TENANT_KEYS_SQL = """
SELECT k.version, k.data_key_id, k.master_key_id, k.wrapped,
       COALESCE(p.min_decryption_version, 1) AS min_decryption_version
  FROM vault.data_keys k
  LEFT JOIN vault.data_key_policies p ON p.tenant_id = k.tenant_id
 WHERE k.tenant_id = %(tenant_id)s
"""

# Count `n` encryptions on the newest version if it stays within the limit. Under concurrency the
# limit is re-checked on the row's latest version after its lock (READ COMMITTED re-evaluation),
# so no version ever exceeds it.
RESERVE_SQL = """
UPDATE vault.data_keys SET encryptions = encryptions + %(n)s, updated_at = now()
 WHERE tenant_id = %(tenant_id)s
   AND version = (SELECT max(version) FROM vault.data_keys WHERE tenant_id = %(tenant_id)s)
   AND encryptions + %(n)s <= %(limit)s
RETURNING version
"""

# The tenant's next version, only while `after` is its newest (0: it has none; null: whatever it is),
# so replicas rotating at once add one version, not one each (the others insert nothing).
ADD_VERSION_SQL = """
INSERT INTO vault.data_keys (tenant_id, version, data_key_id, master_key_id, wrapped)
SELECT %(tenant_id)s, n.newest + 1, %(data_key_id)s, %(master_key_id)s, %(wrapped)s
  FROM (SELECT COALESCE(max(version), 0) AS newest FROM vault.data_keys WHERE tenant_id = %(tenant_id)s) n
 WHERE CAST(%(after)s AS integer) IS NULL OR n.newest = CAST(%(after)s AS integer)
ON CONFLICT DO NOTHING
RETURNING version
"""

# The reservation and the keys in one round trip (the common case). The outer query reads the
# snapshot from before the UPDATE, which is all it needs: the keys, not the new count.
_RESERVE_AND_LOAD = f"""
WITH reserved AS ({RESERVE_SQL})
SELECT k.version, k.data_key_id, k.master_key_id, k.wrapped,
       COALESCE(p.min_decryption_version, 1) AS min_decryption_version,
       (SELECT max(version) FROM reserved) AS reserved_version
  FROM vault.data_keys k
  LEFT JOIN vault.data_key_policies p ON p.tenant_id = k.tenant_id
 WHERE k.tenant_id = %(tenant_id)s
"""  # noqa: S608 - composed of this module's constants only

NEWEST_VERSION_SQL = "SELECT max(version) FROM vault.data_keys WHERE tenant_id = %(tenant_id)s"


class DataKeyStore:
    """Finds, creates and rotates tenants' data keys; unwrapped keys are cached by (tenant, key id)."""

    def __init__(self, keyring: KeyringSource, cache: DataKeyCache, *, max_encryptions: int) -> None:
        if max_encryptions < 16:
            raise ValueError("max_encryptions must be at least 16")
        self.keyring = keyring
        self.cache = cache
        self.max_encryptions = max_encryptions

    def unwrap(self, tenant_id: str, wrapped: WrappedDataKey) -> DataKey:
        """The unwrapped key, from the cache or by decrypting `wrapped` (re-reading a rotated keyring)."""
        cached = self.cache.get(tenant_id, wrapped.data_key_id)
        if cached is not None:
            return cached
        try:
            key = unwrap_data_key(self.keyring.keyring, tenant_id, wrapped)
        except DecryptionError as error:
            # Another process re-wrapped the key under a master key this process has not loaded yet.
            if error.reason != "unknown_master_key" or not self.keyring.reload_if_changed():
                raise
            key = unwrap_data_key(self.keyring.keyring, tenant_id, wrapped)
        self.cache.put(tenant_id, key)
        return key

    async def for_opening(self, conn: DriverConnection, tenant_id: str) -> TenantDataKeys:
        """The tenant's keys to open values with (created on first use, nothing counted)."""
        keys = await self.load(conn, tenant_id)
        if keys is not None:
            return keys
        await self.add_version(conn, tenant_id, after=0)
        return await self._loaded(conn, tenant_id)

    async def load(self, conn: DriverConnection, tenant_id: str) -> TenantDataKeys | None:
        """The tenant's keys as stored (None: it has none yet)."""
        async with conn.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(TENANT_KEYS_SQL, {"tenant_id": tenant_id}, prepare=True)
            rows = await cursor.fetchall()
        if not rows:
            return None
        return TenantDataKeys.from_rows(tenant_id, rows, lambda wrapped: self.unwrap(tenant_id, wrapped))

    async def reserve(self, conn: DriverConnection, tenant_id: str, encryptions: int) -> TenantDataKeys:
        """The tenant's keys to seal with, `encryptions` counted on the newest version (in `conn`'s
        transaction); rotates first when that version would pass its limit."""
        if not 1 <= encryptions <= self.max_encryptions:
            raise ValueError("encryptions must be between 1 and the per-version limit")
        params = {"tenant_id": tenant_id, "n": encryptions, "limit": self.max_encryptions}
        # Each pass either reserves, or adds a version (ours or a concurrent rotation's): it ends.
        for _ in range(8):
            async with conn.cursor(row_factory=namedtuple_row) as cursor:
                await cursor.execute(_RESERVE_AND_LOAD, params, prepare=True)
                rows: list[Any] = await cursor.fetchall()
            newest = max((row.version for row in rows), default=0)
            if rows and rows[0].reserved_version == newest:
                return TenantDataKeys.from_rows(
                    tenant_id, rows, lambda wrapped: self.unwrap(tenant_id, wrapped)
                )
            # The newest version is full (or the tenant has none): add the next, ours or a racer's.
            await self.add_version(conn, tenant_id, after=newest)
        raise RuntimeError("could not reserve encryptions on a data key: rotation keeps racing")

    async def add_version(self, conn: DriverConnection, tenant_id: str, *, after: int | None) -> int | None:
        """Create the tenant's next version; None when `after` is no longer its newest (0: it has none;
        None: add whatever the newest is) because another process rotated meanwhile."""
        # A new key is wrapped by the newest keyring: pick up a master rotation done since start-up.
        self.keyring.reload_if_changed()
        wrapped = wrap_data_key(self.keyring.keyring, tenant_id, generate_data_key())
        params = {
            "tenant_id": tenant_id,
            "after": after,
            "data_key_id": wrapped.data_key_id,
            "master_key_id": wrapped.master_key_id,
            "wrapped": wrapped.ciphertext,
        }
        async with conn.cursor() as cursor:
            await cursor.execute(ADD_VERSION_SQL, params)
            row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def _loaded(self, conn: DriverConnection, tenant_id: str) -> TenantDataKeys:
        keys = await self.load(conn, tenant_id)
        if keys is None:
            raise RuntimeError(f"tenant {tenant_id!r} has no data key after creating one")
        return keys
