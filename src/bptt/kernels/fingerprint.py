"""Fingerprints of the modules compiled into each module of ``bptt.kernels.fast``.

Numba keys a cached function by the contents of the file it is defined in (numba/core/caching.py:
a SHA-256 of the source file), not by the modules whose functions, intrinsics and overloads it
compiles in. An edit to bptt/kernels/microkernel.py alone once left the fast kernels running the
old code from the cache (a new 16 x 16 tile that never ran); since the kernels were split by cell,
an edit to fast/common.py alone would do the same to lstm.py, gru.py and rnn.py.

So each compiled module records, as ``COMPILED_DEPENDENCIES``, the fingerprint of every module
compiled into its kernels, directly or through another (:data:`DEPENDENCIES`): a change there
means a change to the module itself, and Numba compiles its kernels afresh.
tests/kernels/test_kernel_cache.py fails until the recorded values are current;
``python -m bptt.kernels.fingerprint`` writes the current ones into the modules (``--check`` only
lists the stale ones).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

#: The directory of bptt.kernels; the paths below are relative to it.
KERNELS = Path(__file__).parent

#: Each compiled module → the kernel modules it imports code from, which Numba compiles into its
#: kernels (inlined or linked).
DEPENDENCIES = {
    "fast/common.py": ("blas.py", "microkernel.py"),
    "fast/packed.py": ("fast/common.py",),
    "fast/packing.py": ("fast/common.py",),
    "fast/lstm.py": ("fast/common.py", "fast/packed.py", "sync.py"),
    "fast/gru.py": ("fast/common.py", "fast/packed.py", "sync.py"),
    "fast/rnn.py": ("fast/common.py", "fast/packed.py", "sync.py"),
    "worker.py": ("sync.py",),
}

#: The line that records a module's fingerprint; left out of the fingerprints themselves, so that
#: recording one changes no other (the values do not depend on the order they are written in).
RECORD = re.compile(r'^COMPILED_DEPENDENCIES = "([0-9a-f]*)"$', re.MULTILINE)


def compiled_in(module: str) -> list[str]:
    """Every module compiled into ``module``'s kernels, directly or through another, sorted."""
    seen: set[str] = set()
    todo = list(DEPENDENCIES[module])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(DEPENDENCIES.get(name, ()))
    return sorted(seen)


def _source(name: str) -> bytes:
    text = (KERNELS / name).read_bytes().replace(b"\r\n", b"\n").decode("utf-8")
    return RECORD.sub("", text).encode("utf-8")


def fingerprint(module: str) -> str:
    """First 16 hex digits of the SHA-256 of the sources compiled into ``module`` (a key of
    :data:`DEPENDENCIES`), each with its name, line endings normalised, record lines left out."""
    h = hashlib.sha256()
    for name in compiled_in(module):
        h.update(name.encode() + b"\0" + _source(name) + b"\0")
    return h.hexdigest()[:16]


def recorded(module: str) -> str | None:
    """The fingerprint ``module`` records (None when it records none)."""
    m = RECORD.search((KERNELS / module).read_text(encoding="utf-8"))
    return m.group(1) if m else None


def stale() -> dict[str, str]:
    """The modules whose recorded fingerprint is not the current one → the current one."""
    return {m: fp for m in DEPENDENCIES if recorded(m) != (fp := fingerprint(m))}


def update() -> dict[str, str]:
    """Write the current fingerprint into every module that records another; returns those."""
    changed = stale()
    for module, value in changed.items():
        path = KERNELS / module
        text = path.read_text(encoding="utf-8")
        new, n = RECORD.subn(f'COMPILED_DEPENDENCIES = "{value}"', text)
        if n != 1:
            raise RuntimeError(f"{path}: expected one line COMPILED_DEPENDENCIES = \"...\", found {n}")
        path.write_text(new, encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:  # pragma: no cover - a developer's command
    if argv not in ([], ["--check"]):
        print("usage: python -m bptt.kernels.fingerprint [--check]", file=sys.stderr)
        return 2
    changed = stale() if argv else update()
    for module in DEPENDENCIES:
        state = ("stale" if argv else "updated") if module in changed else "current"
        print(f"{module}: {fingerprint(module)} ({state})")
    return 1 if argv and changed else 0


if __name__ == "__main__":  # pragma: no cover - a developer's command
    sys.exit(main(sys.argv[1:]))
