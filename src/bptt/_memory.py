"""Keep freed memory for reuse (glibc): training steps allocate and free large arrays each time.

A training step allocates its caches and gradients afresh (tens of MB for mid-size networks) and
frees them when the next step replaces them. glibc serves blocks above its mmap threshold with
fresh mappings and gives freed heap memory back to the system above its trim threshold, so every
step page-faults its arrays in again, a large share of a mid-size training step
(docs/performance.md, "Freed memory kept"). :func:`keep_freed_memory` raises both thresholds once (the mmap one to glibc's 32 MiB
maximum, so larger arrays are still mapped, with transparent huge pages where NumPy asks for them):
freed memory is reused by the next step instead of being returned. The peak is unchanged; the
process keeps its high-water mark. It is applied when bptt's fast kernels are first used; set
``BPTT_KEEP_FREED_MEMORY=0`` to leave glibc's defaults alone (other C libraries: nothing happens).
"""

from __future__ import annotations

import platform

from .settings import settings

_done = False

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Apply the setting once per process; True when glibc accepted it."""
    global _done
    if _done:
        return _done is True
    _done = False
    if not settings.keep_freed_memory or platform.libc_ver()[0] != "glibc":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):  # pragma: no cover - not glibc after all
        return False
    _done = True if ok else False
    return ok
