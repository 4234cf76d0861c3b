"""An in-memory LRU cache of unwrapped data keys with a lifetime.

Unwrapping costs a database read and a master-key decryption, so resolve keeps recent tenants'
data keys here. The lifetime is counted from `put` (not from the last hit) so that a key dropped
or re-wrapped elsewhere stops being used from memory within a bounded time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from grantline.vault.domain.key_material import DataKey

_CacheKey = tuple[str, str]


class DataKeyCache:
    """LRU cache of `DataKey`s by `(tenant_id, data_key_id)`, bounded in size and lifetime.

    No method awaits, so each call is atomic on one event loop; a lock makes it safe across threads too.
    """

    __slots__ = ("_by_tenant", "_clock", "_entries", "_lock", "hits", "max_size", "misses", "ttl_seconds")

    def __init__(
        self,
        *,
        max_size: int = 10_000,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self.max_size = max_size
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[_CacheKey, tuple[DataKey, float]] = OrderedDict()
        # tenant -> its cached data key ids, so invalidate(tenant) does not scan the whole cache.
        self._by_tenant: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, tenant_id: str, data_key_id: str) -> DataKey | None:
        """Return the cached data key, or None when absent or expired."""
        cache_key = (tenant_id, data_key_id)
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is None:
                self.misses += 1
                return None
            data_key, expires_at = entry
            if self._clock() >= expires_at:
                self._remove(cache_key)
                self.misses += 1
                return None
            self._entries.move_to_end(cache_key)
            self.hits += 1
            return data_key

    def put(self, tenant_id: str, data_key: DataKey) -> None:
        """Cache `data_key` for `tenant_id` (replacing its id's entry); evict the least recently used."""
        cache_key = (tenant_id, data_key.key_id)
        with self._lock:
            self._entries[cache_key] = (data_key, self._clock() + self.ttl_seconds)
            self._entries.move_to_end(cache_key)
            self._by_tenant.setdefault(tenant_id, set()).add(data_key.key_id)
            while len(self._entries) > self.max_size:
                oldest = next(iter(self._entries))
                self._remove(oldest)

    def invalidate(self, tenant_id: str) -> int:
        """Drop every cached data key of `tenant_id`; return how many were dropped."""
        with self._lock:
            key_ids = self._by_tenant.pop(tenant_id, set())
            for key_id in key_ids:
                del self._entries[(tenant_id, key_id)]
            return len(key_ids)

    def clear(self) -> None:
        """Drop everything (e.g. after a master-key incident)."""
        with self._lock:
            self._entries.clear()
            self._by_tenant.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"DataKeyCache(size={len(self._entries)}, max_size={self.max_size}, "
            f"ttl_seconds={self.ttl_seconds}, hits={self.hits}, misses={self.misses})"
        )

    def _remove(self, cache_key: _CacheKey) -> None:
        # Caller holds the lock.
        del self._entries[cache_key]
        tenant_id, key_id = cache_key
        tenant_keys = self._by_tenant.get(tenant_id)
        if tenant_keys is not None:
            tenant_keys.discard(key_id)
            if not tenant_keys:
                del self._by_tenant[tenant_id]
