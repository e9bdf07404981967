"""BLAS thread control: small problems run single-threaded, and the setting is always restored."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from bptt import _threads, functional as F
from bptt.settings import settings
from bptt.functional import _plan

pytestmark = pytest.mark.usefixtures("each_worker")  # tests/kernels/conftest.py: both workers


def numpy_blas_threads() -> int:
    infos = [i for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in (i.get("filepath") or "")]
    return infos[0]["num_threads"] if infos else -1


def test_blas_threads_sets_and_restores():
    before = numpy_blas_threads()
    with _threads.blas_threads(1):
        assert numpy_blas_threads() in (1, -1)
    assert numpy_blas_threads() == before
    with pytest.raises(RuntimeError):
        with _threads.blas_threads(1):
            raise RuntimeError("boom")
    assert numpy_blas_threads() == before


def test_functional_restores_threads_after_small_and_large_calls(monkeypatch):
    before = numpy_blas_threads()
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    W, U, b = np.ones((2, 8)) * 0.1, np.eye(2, 8) * 0.1, np.zeros(8)
    for threshold in (10**12, 0):  # every call "small", then every call "large"
        monkeypatch.setattr(settings, "single_thread_flops", threshold)
        h, cache = F.lstm_forward(x, W, U, b)
        F.lstm_backward(np.ones_like(h), cache)
        assert numpy_blas_threads() == before


@pytest.mark.parametrize("timeout, expected", [(None, 0), ("28", 0), ("18", 0), ("17", 20e6), ("4", 20e6), ("x", 0)])
def test_gemms_below_20_mflop_run_single_threaded_when_blas_threads_sleep_at_once(monkeypatch, request, timeout, expected):
    monkeypatch.setattr(settings, "single_thread_flops", 0)
    if timeout is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", timeout)
    _plan._threads_sleep_at_once.cache_clear()  # read once per process, like OpenBLAS
    request.addfinalizer(_plan._threads_sleep_at_once.cache_clear)  # so later tests read the real setting
    assert _plan._single_thread_flops() == expected
    seen = []
    real = _plan.single_threaded_if
    monkeypatch.setattr(_plan, "single_threaded_if", lambda small: seen.append(small) or real(small))
    rng = np.random.default_rng(1)
    B, T, I, H = 64, 3, 5, 64  # above the hand-written product: a BLAS GEMM per step, 2.1 MFLOP each
    x, W, U, b = (rng.normal(size=s).astype(np.float32) for s in ((B, T, I), (I, 4 * H), (H, 4 * H), (4 * H,)))
    before = numpy_blas_threads()
    h, cache = F.lstm_forward(x, W, U, b)
    F.lstm_backward(np.ones_like(h), cache)
    assert numpy_blas_threads() == before
    # forward: the call, then its loop; backward: the same
    assert seen == [expected > 0] * 4


# ─────────────────────────────────────────────── bptt's second thread and own_threads


def _wait_until(condition, seconds: float = 5.0) -> bool:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.001)
    return condition()


def test_own_threads_holds_blas_to_one_thread_and_still_reports_the_users_count():
    before = users = numpy_blas_threads()  # from threadpoolctl itself: what blas_max_threads must give back
    assert _threads.blas_max_threads() == users
    if users < 2:  # one BLAS thread already (as within blas_threads(1) below): nothing to hold
        with _threads.own_threads():
            assert numpy_blas_threads() == users and _threads.blas_max_threads() == users
        return
    with _threads.own_threads():
        assert numpy_blas_threads() == 1
        assert _threads.blas_max_threads() == users  # the rules inside choose as outside
        with _threads.own_threads():  # nested: left to the outermost
            assert numpy_blas_threads() == 1
        assert numpy_blas_threads() == 1 and _threads.blas_max_threads() == users
    assert numpy_blas_threads() == before and _threads.blas_max_threads() == users
    with pytest.raises(RuntimeError, match="boom"):
        with _threads.own_threads():
            raise RuntimeError("boom")
    assert numpy_blas_threads() == before and _threads.blas_max_threads() == users
    with _threads.blas_threads(1), _threads.own_threads():  # one thread already: nothing to do
        assert _threads.blas_max_threads() == 1


def test_the_worker_spins_only_within_own_threads(monkeypatch):
    """Within own_threads the worker spins between tasks (up to settings.worker_spin_seconds, here
    far longer than the test) and sleeps as soon as the block ends; outside, it sleeps after each
    task. A worker spinning beside OpenBLAS's threads slowed a training step 1.7×."""
    monkeypatch.setattr(_threads, "blas_max_threads", lambda: 2)  # own_threads as on a machine of two cores or more
    monkeypatch.setattr(settings, "worker_spin_seconds", 60.0)
    seen = []
    worker = _threads._second_thread()
    assert worker.thread.name == "bptt-loop" and worker.thread.daemon  # named for profilers; never blocks exit
    _threads.run_in_two_threads(lambda x: seen.append(x), (1,), (2,))
    assert _wait_until(lambda: worker.sleeping), "the worker spins outside own_threads"
    with _threads.own_threads():
        assert _wait_until(lambda: not worker.sleeping), "own_threads did not wake the worker"
        for i in range(3):
            _threads.run_in_two_threads(lambda x: seen.append(x), (10 * i,), (10 * i + 1,))
        import time

        time.sleep(0.05)
        assert not worker.sleeping, "the worker slept within own_threads"
    assert _wait_until(lambda: worker.sleeping), "the worker still spins after own_threads"
    assert sorted(seen) == [0, 1, 1, 2, 10, 11, 20, 21]


def test_a_failure_on_the_spinning_worker_reaches_the_caller():
    def part(which, fail):
        if which == fail:
            raise ValueError(f"part {which} failed")

    with _threads.own_threads():
        for fail in (2, 1, 2):
            with pytest.raises(ValueError, match=f"part {fail} failed"):
                _threads.run_in_two_threads(part, (1, fail), (2, fail))
        seen = []
        _threads.run_in_two_threads(lambda x: seen.append(x), ("here",), ("there",))
    assert sorted(seen) == ["here", "there"]


def test_a_half_asking_for_two_threads_again_raises_instead_of_waiting_for_itself():
    """Either half of a two-thread call asking for the worker again would wait forever (the caller's
    half for its own call, the worker's half for itself): both raise, the call reports it, and the
    worker serves the next call."""
    def part(nested):
        if nested:
            _threads.run_in_two_threads(lambda: None, (), ())

    raised = []

    def calls():
        for here, there in ((True, False), (False, True)):
            with pytest.raises(RuntimeError) as raised_here:
                _threads.run_in_two_threads(part, (here,), (there,))
            assert str(raised_here.value) == ("bptt's worker thread was asked for a second task while the caller's "
                                              "half of a two-thread call runs: a half must run on one thread "
                                              "(hold BLAS to one)")
            raised.append((here, there))

    caller = threading.Thread(target=calls, daemon=True)
    caller.start()
    caller.join(30)
    assert not caller.is_alive(), f"a nested call waits for itself (returned: {raised})"
    assert raised == [(True, False), (False, True)]
    seen = []
    _threads.run_in_two_threads(lambda x: seen.append(x), ("here",), ("there",))
    assert sorted(seen) == ["here", "there"]


def test_one_core_gives_one_thread_in_its_thread_only_and_nests():
    n = numpy_blas_threads()
    assert _threads.blas_max_threads() == n
    seen = []
    with _threads.one_core():
        assert _threads.blas_max_threads() == 1
        with _threads.one_core():
            assert _threads.blas_max_threads() == 1
        assert _threads.blas_max_threads() == 1  # the inner block's end leaves the outer one's
        other = threading.Thread(target=lambda: seen.append(_threads.blas_max_threads()))
        other.start()
        other.join()
    assert seen == [n]  # another thread: BLAS's own count
    assert _threads.blas_max_threads() == n


def test_outside_own_threads_the_worker_is_asleep_when_a_call_returns():
    """Outside own_threads the worker marks its half done only as it goes to sleep (holding the
    GIL, which it releases as it sleeps), so the caller never waits for the GIL behind it: a
    two-thread call of no work took 25 µs so, 60-70 before."""
    worker = _threads._second_thread()
    seen = []
    for i in range(50):
        _threads.run_in_two_threads(lambda x: seen.append(x), (2 * i,), (2 * i + 1,))
        assert worker.sleeping, i
    assert sorted(seen) == list(range(100))


def test_a_worker_woken_for_a_block_without_tasks_sleeps_again_and_serves_the_next_call(monkeypatch):
    """own_threads wakes a sleeping worker to spin; when the block ends before any task came, the
    worker goes back to sleep, and the next two-thread call still runs both halves."""
    import threading

    monkeypatch.setattr(_threads, "blas_max_threads", lambda: 2)  # own_threads as on a machine of two cores or more
    monkeypatch.setattr(settings, "worker_spin_seconds", 60.0)
    worker = _threads._second_thread()
    assert _wait_until(lambda: worker.sleeping)
    for _ in range(3):
        with _threads.own_threads():
            assert _wait_until(lambda: not worker.sleeping), "own_threads did not wake the worker"
        assert _wait_until(lambda: worker.sleeping), "the worker did not sleep again"
    seen = []
    caller = threading.Thread(target=_threads.run_in_two_threads, args=(seen.append, ("here",), ("there",)),
                              daemon=True)
    caller.start()
    caller.join(timeout=30)
    assert not caller.is_alive(), "the worker no longer serves"
    assert sorted(seen) == ["here", "there"] and worker.thread.is_alive()


def test_after_own_threads_the_futex_worker_lingers_then_sleeps(monkeypatch, each_worker):
    """When an own_threads block ends, the worker sleeping on the futex spins on for
    settings.worker_linger_seconds (the next block, a training step's backward, then needs no
    wake-up, which cost the caller 20-50 µs), then sleeps; with 0 it sleeps at once, as the
    Condition's worker always does. The linger is counted in pauses: a loaded machine only
    stretches it."""
    import time

    monkeypatch.setattr(_threads, "blas_max_threads", lambda: 2)  # own_threads as on a machine of two cores or more
    monkeypatch.setattr(settings, "worker_spin_seconds", 60.0)
    worker = each_worker
    seen = []
    for linger in (0.2, 0.0):
        monkeypatch.setattr(settings, "worker_linger_seconds", linger)
        with _threads.own_threads():  # the hold and each post hand the worker the settings' pauses
            _threads.run_in_two_threads(seen.append, (1,), (2,))
            _threads.run_in_two_threads(seen.append, (3,), (4,))
        if worker.futex and linger:
            time.sleep(0.02)
            assert not worker.sleeping, "the worker slept at once after own_threads"
            assert _wait_until(lambda: worker.sleeping, 60), "the worker never slept after its linger"
        else:
            assert _wait_until(lambda: worker.sleeping, 0.05), "the worker did not sleep at once"
    assert sorted(seen) == [1, 1, 2, 2, 3, 3, 4, 4]


def test_outside_own_threads_the_futex_worker_does_not_linger(monkeypatch, each_worker):
    """A task outside own_threads (BLAS may then run on two threads) leaves the worker asleep
    however long the linger: it lingers only after a hold it saw."""
    monkeypatch.setattr(settings, "worker_linger_seconds", 60.0)
    for i in range(20):
        _threads.run_in_two_threads(lambda x: None, (i,), (i,))
        assert each_worker.sleeping, i


def test_no_post_or_hold_is_missed(monkeypatch, each_worker):
    """Tasks posted and holds set as the worker goes to sleep, in every order the timing allows
    (no spin, no linger: every wait ends asleep), all run, and none is found only when a futex
    wait timed out (a wake missed: the worker would then start a second late)."""
    import random
    import time

    from bptt.kernels import sync, worker

    monkeypatch.setattr(_threads, "blas_max_threads", lambda: 2)
    t = worker.TIMEOUT * sync.STRIDE
    each_worker.flags[t: t + 2] = (0, 20_000_000)  # a missed wake costs 20 ms, not a second
    rnd = random.Random(0)
    seen = []
    for spin, linger in ((0.0, 0.0), (2e-5, 0.0), (0.0, 2e-5), (5e-4, 1e-3)):
        monkeypatch.setattr(settings, "worker_spin_seconds", spin)
        monkeypatch.setattr(settings, "worker_linger_seconds", linger)
        for i in range(300):
            if rnd.random() < 0.5:
                with _threads.own_threads():
                    for _ in range(rnd.randrange(3)):
                        _threads.run_in_two_threads(seen.append, (1,), (1,))
            else:
                _threads.run_in_two_threads(seen.append, (1,), (1,))
            if rnd.random() < 0.2:
                time.sleep(rnd.random() * 1e-4)
    assert len(seen) == 2 * each_worker.posted
    assert each_worker.lost_wakeups == 0


def test_a_post_without_a_wake_is_counted_lost():
    """The futex wait's timeout and the count the test above reads: a task stored without the wake
    :func:`post` gives is found when the wait times out, and counted."""
    import threading
    import time

    from bptt.kernels import sync, worker

    if not worker.FUTEX:
        assert not _threads._Worker(futex=True).futex  # nothing to count: the worker sleeps on a Condition
        return
    flags = worker.new_flags()
    assert flags[worker.TIMEOUT * sync.STRIDE] == worker.TIMEOUT_SECONDS
    flags[worker.TIMEOUT * sync.STRIDE: worker.TIMEOUT * sync.STRIDE + 2] = (0, 50_000_000)  # 50 ms
    waiter = threading.Thread(target=worker.await_task, args=(flags, 1, 0), daemon=True)
    waiter.start()
    assert _wait_until(lambda: flags[worker.SLEEPING * sync.STRIDE] == 1)
    time.sleep(0.01)
    flags[worker.POSTED * sync.STRIDE] = 1  # no wake
    waiter.join(10)
    assert not waiter.is_alive()
    assert flags[worker.LOST * sync.STRIDE] == 1 and flags[worker.SLEEPING * sync.STRIDE] == 0
    flags[worker.TIMEOUT * sync.STRIDE: worker.TIMEOUT * sync.STRIDE + 2] = (60, 0)  # a wake, not the timeout, now
    waiter = threading.Thread(target=worker.await_task, args=(flags, 2, 0), daemon=True)
    waiter.start()
    assert _wait_until(lambda: flags[worker.SLEEPING * sync.STRIDE] == 1)
    worker.post(flags, 2, 0, 0)
    waiter.join(10)
    assert not waiter.is_alive() and flags[worker.LOST * sync.STRIDE] == 1


# ─────────────────────────── the layers' own products beside loops on two threads (Dense)


def test_a_task_on_the_second_thread_marks_it_recent_for_the_settings_window(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(_threads.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(_threads, "_last_two_threads", float("-inf"))
    monkeypatch.setattr(settings, "second_thread_recent_seconds", 1.0)
    assert not _threads.second_thread_recent()  # never used
    _threads.run_in_two_threads(lambda: None, (), ())
    assert _threads._last_two_threads == 1000.0 and _threads.second_thread_recent()
    now[0] = 1000.999
    assert _threads.second_thread_recent()
    now[0] = 1001.0
    assert not _threads.second_thread_recent()  # the window has passed
    now[0] = 1000.5
    monkeypatch.setattr(settings, "second_thread_recent_seconds", 0.0)
    assert not _threads.second_thread_recent()  # 0 turns the rule off


@pytest.mark.parametrize("recent", [True, False])
def test_dense_products_run_on_one_blas_thread_beside_loops_on_two(monkeypatch, recent):
    """Where bptt's second thread has just run (a recurrent layer's loops), Dense's products run with
    NumPy's BLAS at one thread; in a network without such loops they keep BLAS's threads."""
    from bptt.layers import Dense, dense

    libs = _threads.numpy_blas_libraries()
    if not libs:  # threadpoolctl sees no BLAS: nothing is switched, and no count can be read
        assert _threads.one_blas_thread_beside_loops() is _threads._NO_CHANGE
        return
    before = [lc.get_num_threads() for lc in libs]
    for lc in libs:  # two BLAS threads whatever the machine has: the hold must show
        lc.set_num_threads(2)
    try:
        monkeypatch.setattr(_threads, "_last_two_threads", float("-inf"))
        if recent:
            _threads.run_in_two_threads(lambda: None, (), ())
        seen = []
        real = dense.one_blas_thread_beside_loops

        class Spy:
            def __enter__(self):
                self.ctx = real()
                self.ctx.__enter__()
                seen.append(numpy_blas_threads())

            def __exit__(self, *exc):
                return self.ctx.__exit__(*exc)

        monkeypatch.setattr(dense, "one_blas_thread_beside_loops", Spy)
        layer = Dense(3, 2, seed=0)
        y = layer.forward(np.ones((4, 5, 3), np.float32))
        layer.backward(np.ones_like(y))
        assert seen == ([1, 1] if recent else [2, 2])  # forward's product, then backward's three
        assert numpy_blas_threads() == 2
    finally:
        for lc, n in zip(libs, before):
            lc.set_num_threads(n)


@pytest.mark.parametrize("futex", [None, True, False])
def test_the_worker_sleeps_on_the_futex_where_asked_and_the_system_has_one(futex):
    """``_Worker(futex=None)`` (the system's worker) sleeps on the futex on 64-bit little-endian
    Linux on x86-64 or ARM64, and on a ``threading.Condition`` elsewhere; ``futex=True`` asks for
    the futex where there is one, ``False`` never takes it (the worker tests' ``each_worker`` runs
    both paths through these arguments)."""
    import platform
    import sys

    has_futex = (sys.platform.startswith("linux") and sys.byteorder == "little" and sys.maxsize > 2**32
                 and platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"))
    w = _threads._Worker(futex=futex)
    assert w.futex is (has_futex if futex is not False else False)
    w.run(lambda out, i: out.__setitem__(i, i + 1), (got := [0, 0], 0), (got, 1))
    assert got == [1, 2]
