"""Numba's disk cache and the kernels' dependencies.

Numba keys a cached function by the contents of the file it is defined in (numba/core/caching.py:
a SHA-256 of the source file), not by the modules whose intrinsics and overloads it inlines. An
edit to bptt/kernels/microkernel.py or blas.py alone therefore left bptt.kernels.fast running the
old code from the cache (found when a new 16 x 16 tile never ran). fast.py records a fingerprint
of those modules, so that changing them means changing fast.py too.
"""

from __future__ import annotations

from bptt.kernels import fast
from bptt.kernels.fingerprint import fingerprint


def test_fast_records_the_fingerprint_of_what_it_compiles_in():
    assert fast.COMPILED_DEPENDENCIES == fingerprint(), (
        "bptt/kernels/blas.py or microkernel.py changed: set COMPILED_DEPENDENCIES in "
        f"bptt/kernels/fast.py to {fingerprint()!r} (python -m bptt.kernels.fingerprint), so that "
        "Numba's cache of fast.py's kernels is rebuilt"
    )


def test_fast_imports_only_those_kernel_modules():
    """A new compiled-in module must join the fingerprint's list."""
    import ast
    from pathlib import Path

    from bptt.kernels import fingerprint as fp

    tree = ast.parse(Path(fast.__file__).read_text(encoding="utf-8"))
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert {m + ".py" for m in relative} == set(fp.DEPENDENCIES)
