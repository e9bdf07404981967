"""The waits of bptt's second thread (bptt._threads), compiled so that they hold no GIL.

A two-thread call hands one half of its work to bptt's worker thread and does the other half
itself. Woken from sleep through the operating system, the worker took 60-70 µs to start on this
project's 2-core virtual machines (an idle virtual CPU is woken by the host), more than many of
the halves take. So while the caller holds it (:data:`HOLD`, bptt._threads.own_threads), the
worker spins between tasks (:func:`done_and_wait`) on the caller's task counter instead of
sleeping: a task posted meanwhile starts in about 3 µs. The spins pause the core and give it
away every :data:`YIELD_EVERY` of them (``sched_yield``), so that another process wanting that
core gets it.

Each flag is an int64 slot of an array of ``sync.STRIDE``-spaced slots: :data:`POSTED` counts the
tasks the caller has posted, :data:`DONE` those the worker has finished, :data:`HOLD` is 1 while
the worker may spin.
"""

from __future__ import annotations

import numba as nb

from .sync import load_acquire, pause, store_release, yield_core

#: The fingerprint of the modules compiled into this module's functions (see bptt.kernels.fingerprint).
COMPILED_DEPENDENCIES = "0f596678f4ddcd03"

#: The flag slots.
POSTED = 0
DONE = 1
HOLD = 2
#: A spinning wait gives its core away once every this many pauses.
YIELD_EVERY = 64


@nb.njit(nogil=True, cache=True)
def spin(flags, i, value, spins):
    """Wait up to ``spins`` pauses for flag ``i`` to reach ``value`` while :data:`HOLD` is set;
    whether it did."""
    for n in range(spins):
        if load_acquire(flags, i) >= value:
            return True
        if load_acquire(flags, HOLD) == 0:
            break
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            yield_core()
        else:
            pause()
    return load_acquire(flags, i) >= value


@nb.njit(nogil=True, cache=True)
def wait_for_task(flags, task, spins, grace):
    """The worker: wait up to ``spins`` pauses for task ``task`` to be posted; when it is, pause
    ``grace`` more before returning (the caller still holds the GIL the worker's return takes,
    until its own half starts: waiting for it inside the GIL's lock would put the worker to sleep
    and cost a wake-up again). Whether the task came."""
    if not spin(flags, POSTED, task, spins):
        return False
    for _ in range(grace):
        pause()
    return True


@nb.njit(nogil=True, cache=True)
def done_and_wait(flags, task, spins, grace):
    """The worker: mark task ``task`` done, then :func:`wait_for_task` ``task + 1``. One call, so
    that the worker holds no GIL between the two (the caller takes it back on seeing the task done)."""
    store_release(flags, DONE, task)
    return wait_for_task(flags, task + 1, spins, grace)


# The stores and the look below keep the GIL (compiled without ``nogil``): a call releasing it
# would let the other thread take it in between, and taking it back when that thread holds it
# puts the caller to sleep, which costs a wake-up again.


@nb.njit(cache=True)
def set_hold(flags, on):
    """The caller: let the worker spin between tasks (``on``), or stop it."""
    store_release(flags, HOLD, 1 if on else 0)


@nb.njit(cache=True)
def held(flags):
    """The worker: whether it may spin."""
    return load_acquire(flags, HOLD) != 0


@nb.njit(cache=True)
def post(flags, task):
    """The caller: post task ``task``."""
    store_release(flags, POSTED, task)


@nb.njit(cache=True)
def mark_done(flags, task):
    """The worker: mark task ``task`` done (holding the GIL, just before it sleeps)."""
    store_release(flags, DONE, task)


@nb.njit(nogil=True, cache=True)
def wait_done(flags, task, grace):
    """The caller: return once the worker has finished task ``task`` (spinning, then yielding the
    core between looks, as bptt.kernels.sync.wait_for), then pause ``grace`` more (a worker going
    to sleep marks its task done holding the GIL, which it releases as it starts to sleep)."""
    n = 0
    while load_acquire(flags, DONE) < task:
        if n < 1000:
            pause()
            n += 1
        else:
            yield_core()
    for _ in range(grace):
        pause()
