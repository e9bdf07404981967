"""The fingerprint of the modules compiled into ``bptt.kernels.fast`` (its ``COMPILED_DEPENDENCIES``).

``python -m bptt.kernels.fingerprint`` prints it; tests/test_kernel_cache.py checks that fast.py
records the current one (see there for why).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The modules whose intrinsics and overloads fast.py's kernels inline.
DEPENDENCIES = ("blas.py", "microkernel.py", "sync.py")


def fingerprint() -> str:
    """First 16 hex digits of the SHA-256 of the dependencies' sources (line endings normalised)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in DEPENDENCIES:
        h.update((here / name).read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()[:16]


if __name__ == "__main__":  # pragma: no cover - a developer's command
    print(fingerprint())
