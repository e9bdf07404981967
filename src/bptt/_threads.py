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
import time

from .settings import settings

_libs = None
_second = None
_second_lock = threading.Lock()
#: NumPy's BLAS threads as the user set them, while :class:`own_threads` holds BLAS to one (else 0).
_held = 0
#: time.monotonic() of the last call handed to bptt's second thread (-inf: none yet).
_last_two_threads = float("-inf")


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


_local = threading.local()


class one_core:
    """A block whose bptt calls plan for one core: :func:`blas_max_threads` gives 1 in this thread
    (only), whatever NumPy's BLAS is set to meanwhile by other threads. Each half of the two
    directions of a bidirectional layer runs so (bptt.layers.recurrent._both): a half that planned
    for two threads would ask bptt's worker, which the other half holds."""

    __slots__ = ("before",)

    def __enter__(self):
        self.before = getattr(_local, "one_core", False)
        _local.one_core = True
        return self

    def __exit__(self, *exc) -> bool:
        _local.one_core = self.before
        return False


def blas_max_threads() -> int:
    """The thread count NumPy's BLAS is set to (the CPUs bptt may use; the CPU count without
    threadpoolctl); within :class:`own_threads`, the count it was set to before; within
    :class:`one_core`, 1."""
    if getattr(_local, "one_core", False):
        return 1
    if _held:
        return _held
    libs = numpy_blas_libraries()
    if libs:
        return min(lc.get_num_threads() for lc in libs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _second_thread() -> "_Worker":
    """bptt's one worker thread, started on first use."""
    global _second
    with _second_lock:
        if _second is None:
            _second = _Worker()
    return _second


def _forget_second_thread():
    """In a forked child the parent's worker thread does not exist: start a new one when needed."""
    global _second, _second_lock
    _second, _second_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_second_thread)


class own_threads:
    """A block of a call whose parallel work runs on bptt's own two threads (bptt.functional._packed):
    NumPy's BLAS held to one thread meanwhile, and bptt's worker woken at the start and spinning
    between its tasks until the end (its next task then starts in about 3 µs, where waking it
    takes 60-70 µs on the project's 2-core virtual machines), and, where it sleeps on the futex,
    ``settings.worker_linger_seconds`` more for the next block (waking it cost the caller itself
    20-50 µs there).

    The two go together: a spinning worker holds the second core that OpenBLAS's own threads
    would want for a GEMM of theirs (the RNN's ragged training step took 4.0 ms against 2.3 with
    the worker spinning beside two-thread OpenBLAS calls), so the worker spins only where BLAS
    runs one thread. :func:`blas_max_threads` still gives the user's count within the block, so
    that the rules reading it choose as outside. Nothing happens where BLAS runs one thread
    already, and nested blocks leave it to the outermost."""

    __slots__ = ("blas",)

    def __enter__(self):
        global _held
        self.blas = None
        n = blas_max_threads()
        if _held or n < 2:
            return self
        self.blas = blas_threads(1)
        self.blas.__enter__()
        _held = n
        _second_thread().hold(True)
        return self

    def __exit__(self, *exc) -> bool:
        global _held
        if self.blas is not None:
            _second_thread().hold(False)
            _held = 0
            self.blas.__exit__(*exc)
        return False


class _Worker:
    """bptt's second thread (see bptt.kernels.worker): it takes one half of a two-thread call; then,
    within :class:`own_threads`, it spins up to ``settings.worker_spin_seconds`` for the next
    call's half, and elsewhere sleeps at once (docs/performance.md, "bptt's second thread").
    ``futex`` (default: where bptt.kernels.worker.FUTEX): it sleeps on the futex inside compiled
    code, never taking the GIL between tasks, and spins ``settings.worker_linger_seconds`` more
    after an own_threads block before it sleeps; else it sleeps on a ``threading.Condition``."""

    def __init__(self, futex: bool | None = None):
        from .kernels import sync, worker

        self._kw = worker
        self.futex = worker.FUTEX if futex is None else bool(futex and worker.FUTEX)
        self._posted = worker.POSTED * sync.STRIDE
        self._sleeping_slot = worker.SLEEPING * sync.STRIDE
        self._lost_slot = worker.LOST * sync.STRIDE
        self.flags = worker.new_flags()
        self.posted = 0
        self.task = None
        self.error = None
        self._sleeping = False  # the Condition's path
        self.held = False
        self._spin_asked = False
        self._wake = threading.Condition()
        self._busy = threading.Lock()
        self._owner = None  # the thread whose call has the worker
        self.pause_seconds = _pause_seconds(worker)
        self._grace = max(1, int(5e-6 / self.pause_seconds))  # the caller's, see bptt.kernels.worker.wait_done
        self._start_pauses = max(1, int(2e-6 / self.pause_seconds))
        serve = self._serve_futex if self.futex else self._serve
        self.thread = threading.Thread(target=serve, name="bptt-loop", daemon=True)
        self.thread.start()

    @property
    def sleeping(self) -> bool:
        """Whether the worker sleeps (or is about to): woken only by a post or a hold."""
        return bool(self.flags[self._sleeping_slot]) if self.futex else self._sleeping

    @property
    def lost_wakeups(self) -> int:
        """Tasks the futex path found only when a wait timed out (bptt.kernels.worker.LOST): 0 unless
        its protocol is broken."""
        return int(self.flags[self._lost_slot])

    def _spins(self) -> tuple[int, int]:
        """The pauses the worker spins for the next task, and those it leaves the caller to start
        its own half (about 2 µs): read at every wait, so that settings.override applies."""
        return self._pauses()[0], self._start_pauses

    def _pauses(self) -> tuple[int, int]:
        """The futex path's pauses, handed to the worker with each post and hold (so that
        settings.override applies from the next): the spins for the next task while held, and
        those it spins on after a hold ends (``settings.worker_linger_seconds``)."""
        return (int(settings.worker_spin_seconds / self.pause_seconds),
                int(settings.worker_linger_seconds / self.pause_seconds))

    def _run_task(self) -> None:
        fn, args = self.task
        self.task = None  # before the task is marked done: the caller may post the next at once
        try:
            fn(*args)
        except BaseException as e:  # the caller raises it
            self.error = e

    def _serve_futex(self) -> None:
        kw, flags, done, grace = self._kw, self.flags, 0, self._start_pauses
        kw.await_task(flags, 1, grace)
        while True:
            self._run_task()
            done += 1
            kw.done_and_await(flags, done, grace)

    def _serve(self) -> None:
        kw, flags, done, came = self._kw, self.flags, 0, False
        while True:
            if not came:
                with self._wake:
                    self._sleeping = True
                    # the last task is marked done only now, holding the GIL: the caller, seeing it,
                    # then finds the GIL free once wait() releases it (not taken by this thread later)
                    kw.mark_done(flags, done)
                    while flags[self._posted] <= done and not self._spin_asked:
                        self._wake.wait()
                    self._sleeping = self._spin_asked = False
                came = kw.wait_for_task(flags, done + 1, *self._spins())
                if not came:
                    continue
            self._run_task()
            done += 1
            # within own_threads: marked done and the next task awaited without the GIL; else (or
            # when that wait ends) marked done at the top of the loop, as the worker goes to sleep
            came = kw.held(flags) and kw.done_and_wait(flags, done, *self._spins())

    def hold(self, on: bool) -> None:
        """Let the worker spin between tasks (woken now if asleep), or stop it spinning."""
        self.held = on
        self._kw.set_hold(self.flags, on, *self._pauses())  # on the futex path, wakes it too
        if on and not self.futex:
            with self._wake:
                if self._sleeping:
                    self._spin_asked = True
                    self._wake.notify()

    def run(self, fn, first: tuple, second: tuple) -> None:
        """``fn(*first)`` here and ``fn(*second)`` on the worker, at the same time (the halves of a
        loop split by units wait for each other's steps); a caller waits while another caller's
        half has the worker (threads of the user's calling bptt at once). A half that calls this
        again (its own work on two threads) would wait for itself: that raises instead."""
        me = threading.get_ident()
        if me == self._owner or self.thread.ident == me:
            raise RuntimeError("bptt's worker thread was asked for a second task while the caller's half of a "
                               "two-thread call runs: a half must run on one thread (hold BLAS to one)")
        self._busy.acquire()
        self._owner = me
        try:
            self.error = None
            self.task = (fn, second)
            self.posted += 1
            task = self.posted
            self._kw.post(self.flags, task, *self._pauses())  # on the futex path, wakes it too
            if not self.futex:
                with self._wake:
                    if self._sleeping:
                        self._wake.notify()
            try:
                fn(*first)
            finally:
                # never leave the worker writing into arrays the caller gets back
                self._kw.wait_done(self.flags, task, 0 if self.held or self.futex else self._grace)
            if self.error is not None:
                error, self.error = self.error, None
                raise error
        finally:
            self._owner = None
            self._busy.release()


def _pause_seconds(worker) -> float:
    """The seconds one spin of bptt.kernels.worker.spin takes on this CPU (a pause lasts from
    about 10 to 140 cycles, by vendor and generation), timed once over 20,000 of them."""
    import time

    from .kernels.sync import STRIDE

    never = worker.new_flags()  # no task ever posted, the hold on
    never[worker.HOLD * STRIDE] = 1
    worker.spin(never, 0, 1, 10)  # compiled (or loaded from the cache) before the timing
    t0 = time.perf_counter()
    worker.spin(never, 0, 1, 20000)
    return max((time.perf_counter() - t0) / 20000, 1e-9)


def run_in_two_threads(fn, first: tuple, second: tuple) -> None:
    """``fn(*first)`` in this thread and ``fn(*second)`` on bptt's worker thread at the same time
    (``fn`` must release the GIL: compiled with ``nogil``); returns when both are done and raises
    what either raised."""
    global _last_two_threads
    _last_two_threads = time.monotonic()
    _second_thread().run(fn, first, second)


def on_second_thread() -> bool:
    """Whether the calling thread is bptt's worker (a task of :func:`run_in_two_threads`): it cannot
    hand work to itself."""
    return _second is not None and threading.current_thread() is _second.thread


def second_thread_recent() -> bool:
    """Whether bptt's second thread has run a task within ``settings.second_thread_recent_seconds``:
    then recurrent loops on two threads are in use, and the NumPy products around them (Dense
    layers) run on one BLAS thread rather than wake OpenBLAS's threads, which then spin beside the
    loops (see that setting)."""
    window = settings.second_thread_recent_seconds
    return time.monotonic() - _last_two_threads < window


def one_blas_thread_beside_loops():
    """:func:`blas_threads` (1) while :func:`second_thread_recent`, else a no-op context: for the
    layers' own NumPy products."""
    return single_threaded_if(second_thread_recent())


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
