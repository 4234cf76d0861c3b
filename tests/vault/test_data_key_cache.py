"""DataKeyCache: LRU size bound, lifetime from put, per-tenant invalidation, redacted repr (no sleeps)."""

from __future__ import annotations

import base64
import threading

import pytest

from grantline.vault.domain import DataKeyCache, generate_data_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_get_put(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=10, ttl_seconds=60, clock=clock)
    key = generate_data_key("dk-1")
    assert cache.get("t1", "dk-1") is None
    cache.put("t1", key)
    assert cache.get("t1", "dk-1") is key
    assert cache.get("t2", "dk-1") is None  # keyed by tenant too
    assert (cache.hits, cache.misses) == (1, 2)


def test_size_bound_evicts_least_recently_used(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=3, ttl_seconds=60, clock=clock)
    keys = {f"t{i}": generate_data_key("dk-1") for i in range(4)}
    for tenant in ("t0", "t1", "t2"):
        cache.put(tenant, keys[tenant])
    assert cache.get("t0", "dk-1") is keys["t0"]  # t0 is now the most recently used
    cache.put("t3", keys["t3"])
    assert len(cache) == 3
    assert cache.get("t1", "dk-1") is None  # the least recently used went
    for tenant in ("t0", "t2", "t3"):
        assert cache.get(tenant, "dk-1") is keys[tenant]


def test_many_puts_stay_bounded(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=50, ttl_seconds=60, clock=clock)
    for i in range(500):
        cache.put(f"t{i}", generate_data_key("dk-1"))
    assert len(cache) == 50
    assert cache.get("t499", "dk-1") is not None
    assert cache.get("t449", "dk-1") is None


def test_ttl_counts_from_put(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=10, ttl_seconds=60, clock=clock)
    key = generate_data_key("dk-1")
    cache.put("t1", key)
    clock.now += 59.9
    assert cache.get("t1", "dk-1") is key  # a hit does not extend the lifetime
    clock.now += 0.1
    assert cache.get("t1", "dk-1") is None
    assert len(cache) == 0
    cache.put("t1", key)  # putting again starts a new lifetime
    clock.now += 30
    assert cache.get("t1", "dk-1") is key


def test_replacing_an_entry(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=2, ttl_seconds=60, clock=clock)
    first, second = generate_data_key("dk-1"), generate_data_key("dk-1")
    cache.put("t1", first)
    cache.put("t1", second)
    assert len(cache) == 1
    assert cache.get("t1", "dk-1") is second


def test_invalidate_tenant(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=10, ttl_seconds=60, clock=clock)
    cache.put("t1", generate_data_key("dk-1"))
    cache.put("t1", generate_data_key("dk-2"))
    cache.put("t2", generate_data_key("dk-1"))
    assert cache.invalidate("t1") == 2
    assert cache.get("t1", "dk-1") is None
    assert cache.get("t1", "dk-2") is None
    assert cache.get("t2", "dk-1") is not None
    assert cache.invalidate("t1") == 0
    assert cache.invalidate("never-seen") == 0


def test_invalidate_after_eviction_and_expiry(clock: FakeClock) -> None:
    # The per-tenant index must follow evictions and expiries, or invalidate would fail on missing entries.
    cache = DataKeyCache(max_size=2, ttl_seconds=10, clock=clock)
    cache.put("t1", generate_data_key("dk-1"))
    cache.put("t1", generate_data_key("dk-2"))
    cache.put("t2", generate_data_key("dk-1"))  # evicts (t1, dk-1)
    clock.now += 10
    assert cache.get("t1", "dk-2") is None  # expired and removed
    assert cache.invalidate("t1") == 0
    assert cache.invalidate("t2") == 1
    assert len(cache) == 0


def test_clear(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=10, ttl_seconds=60, clock=clock)
    cache.put("t1", generate_data_key("dk-1"))
    cache.clear()
    assert len(cache) == 0
    assert cache.invalidate("t1") == 0


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        DataKeyCache(max_size=0)
    with pytest.raises(ValueError):
        DataKeyCache(ttl_seconds=0)


def test_repr_never_shows_key_bytes(clock: FakeClock) -> None:
    cache = DataKeyCache(max_size=10, ttl_seconds=60, clock=clock)
    key = generate_data_key("dk-1")
    cache.put("t1", key)
    text = repr(cache) + str(cache)
    for form in (base64.b64encode(key.reveal()).decode(), key.reveal().hex(), repr(key.reveal())):
        assert form not in text
    assert "size=1" in text


def test_concurrent_threads_keep_the_bound() -> None:
    cache = DataKeyCache(max_size=64, ttl_seconds=60)
    keys = [generate_data_key(f"dk-{i}") for i in range(32)]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(2000):
                tenant = f"t{(i + offset) % 40}"
                key = keys[i % 32]
                cache.put(tenant, key)
                cache.get(tenant, key.key_id)
                if i % 97 == 0:
                    cache.invalidate(tenant)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 64
