"""BLAS thread count control for small problems.

OpenBLAS splits every GEMM above a tiny size across its threads; for the small GEMMs of small
recurrent networks the threads' start and synchronisation cost more than the arithmetic (and
much more when the cores are shared). :func:`blas_threads` switches NumPy's BLAS to ``n``
threads for a block and back (about 2 µs), through threadpoolctl; without threadpoolctl, or a
BLAS it does not know, it does nothing.
"""

from __future__ import annotations

import contextlib

_libs = None


def numpy_blas_libraries() -> list:
    """threadpoolctl's controllers of NumPy's own BLAS (found once; [] without threadpoolctl)."""
    global _libs
    if _libs is None:
        try:
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController().select(user_api="blas").lib_controllers
            # NumPy's own BLAS (SciPy, if loaded, may bring another one that bptt does not call).
            _libs = [lc for lc in found if "numpy" in (lc.filepath or "")] or list(found)
        except Exception:  # pragma: no cover - threadpoolctl missing or failing: leave BLAS alone
            _libs = []
    return _libs


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with NumPy's BLAS limited to ``n`` threads (never raises it above its setting)."""
    libs = numpy_blas_libraries()
    saved = [lc.get_num_threads() for lc in libs]
    changed = [(lc, s) for lc, s in zip(libs, saved) if s > n]
    for lc, _ in changed:
        lc.set_num_threads(n)
    try:
        yield
    finally:
        for lc, s in changed:
            lc.set_num_threads(s)


def single_threaded_if(small: bool):
    """``blas_threads(1)`` when ``small``, else a no-op context."""
    return blas_threads(1) if small else contextlib.nullcontext()
