"""BLAS thread count control for small problems.

OpenBLAS splits every GEMM above a tiny size across its threads; for the small GEMMs of small
recurrent networks the threads' start and synchronisation cost more than the arithmetic (and
much more when the cores are shared). :func:`blas_threads` switches NumPy's BLAS to ``n``
threads for a block and back, through threadpoolctl; without threadpoolctl, or a
BLAS it does not know, it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading

_libs = None
_second = None
_second_lock = threading.Lock()


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


class blas_threads:
    """Run the block with NumPy's BLAS limited to ``n`` threads (never raises it above its setting).

    A plain class rather than a generator context: it is entered up to four times per call of a
    small network (docs/performance.md, "Switching BLAS threads")."""

    __slots__ = ("n", "changed")

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.changed = []
        for lc in numpy_blas_libraries():
            s = lc.get_num_threads()
            if s is not None and s > self.n:
                lc.set_num_threads(self.n)
                self.changed.append((lc, s))
        return self

    def __exit__(self, *exc) -> bool:
        for lc, s in self.changed:
            lc.set_num_threads(s)
        return False


_NO_CHANGE = contextlib.nullcontext()


def single_threaded_if(small: bool):
    """``blas_threads(1)`` when ``small``, else a no-op context."""
    return blas_threads(1) if small else _NO_CHANGE


def blas_max_threads() -> int:
    """The thread count NumPy's BLAS is set to (the CPUs bptt may use; the CPU count without threadpoolctl)."""
    libs = numpy_blas_libraries()
    if libs:
        return min(lc.get_num_threads() for lc in libs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _second_thread():
    """bptt's one worker thread, started on first use (it sleeps while idle)."""
    global _second
    with _second_lock:
        if _second is None:
            from concurrent.futures import ThreadPoolExecutor

            _second = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bptt-loop")
    return _second


def _forget_second_thread():
    """In a forked child the parent's worker thread does not exist: start a new one when needed."""
    global _second, _second_lock
    _second, _second_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_second_thread)


def run_in_two_threads(fn, first: tuple, second: tuple) -> None:
    """``fn(*first)`` in this thread and ``fn(*second)`` on bptt's worker thread at the same time
    (``fn`` must release the GIL: compiled with ``nogil``); returns when both are done and raises
    what either raised."""
    done = _second_thread().submit(fn, *second)
    try:
        fn(*first)
    finally:
        done.result()  # never leave the worker writing into arrays the caller gets back


def run_in_two_threads_meeting(fn, first: tuple, second: tuple, flags) -> None:
    """:func:`run_in_two_threads` for two halves of a loop that wait for each other's step flags
    ``flags`` (bptt.kernels.sync): if either half raises, every flag is set to
    bptt.kernels.sync.ABORT first, so that the other half's waits end and it returns."""
    from .kernels.sync import ABORT

    def guarded(*args):
        try:
            fn(*args)
        except BaseException:
            flags[:] = ABORT
            raise

    run_in_two_threads(guarded, first, second)
