"""The runtime hands the heap that start-up freed back to the system (glibc's malloc_trim)."""

import platform

import pytest

from grantline.runtime.heap import release_freed_heap


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_goes_back_to_the_system():
    # Many small blocks, freed except the last: glibc keeps the pages below it, as after start-up.
    blocks = [bytearray(2048) for _ in range(40_000)]
    keep = blocks[-1]
    del blocks
    before = _rss_kib()
    assert release_freed_heap() is True
    assert _rss_kib() < before - 20_000, "about 80 MB were freed; most of it should have been returned"
    assert keep  # held until here on purpose
