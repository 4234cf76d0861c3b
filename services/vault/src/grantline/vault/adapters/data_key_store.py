"""Tenants' data keys: created on first use, unwrapped with the keyring, cached in memory."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.vault.adapters.keyring_source import KeyringSource
from grantline.vault.adapters.tables import data_keys
from grantline.vault.domain import (
    DataKey,
    DataKeyCache,
    DecryptionError,
    WrappedDataKey,
    generate_data_key,
    unwrap_data_key,
    wrap_data_key,
)


class DataKeyStore:
    """Finds (or creates) a tenant's data key; the unwrapped key is cached by (tenant, key id)."""

    def __init__(self, keyring: KeyringSource, cache: DataKeyCache) -> None:
        self.keyring = keyring
        self.cache = cache

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

    async def find(self, session: AsyncSession, tenant_id: str) -> DataKey | None:
        """The tenant's data key, or None when it has none yet."""
        row = (
            await session.execute(
                select(data_keys.c.data_key_id, data_keys.c.master_key_id, data_keys.c.wrapped).where(
                    data_keys.c.tenant_id == tenant_id
                )
            )
        ).first()
        if row is None:
            return None
        return self.unwrap(tenant_id, WrappedDataKey(row.master_key_id, row.data_key_id, bytes(row.wrapped)))

    async def get_or_create(self, session: AsyncSession, tenant_id: str) -> DataKey:
        """The tenant's data key, creating and wrapping a new one on first use."""
        existing = await self.find(session, tenant_id)
        if existing is not None:
            return existing
        # A new key is wrapped by the newest keyring: pick up a rotation done since start-up.
        self.keyring.reload_if_changed()
        wrapped = wrap_data_key(self.keyring.keyring, tenant_id, generate_data_key())
        await session.execute(
            insert(data_keys)
            .values(
                tenant_id=tenant_id,
                data_key_id=wrapped.data_key_id,
                master_key_id=wrapped.master_key_id,
                wrapped=wrapped.ciphertext,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        created = await self.find(session, tenant_id)
        assert created is not None
        return created
