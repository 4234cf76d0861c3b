"""Give the heap that start-up freed back to the operating system.

Start-up (imports, building the catalogue and models, compiling statements) frees a few megabytes of
temporary objects that glibc keeps for reuse instead of returning: its trim threshold only applies at
the top of the heap. A service at rest never reuses most of it, so it only inflates the RSS that
Kubernetes limits and bills (3-4 MB per service, benchmarks/memory). ``malloc_trim(0)`` releases it
once; the allocator's behaviour on the hot paths is left as it is.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # The interpreter's own symbols include its C library's; glibc has malloc_trim, musl does not.
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:  # pragma: no cover - Alpine images
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_freed_heap() -> bool:
    """Return freed heap pages to the system; False where the C library cannot (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
