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

**Sleeping without the GIL (Linux).** Where the kernel's futex can be called (:data:`FUTEX`), the
worker also sleeps inside compiled code (:func:`done_and_await`, :func:`await_task`): it says so
in :data:`SLEEPING` and waits on the futex word :data:`WAKE`, which the caller's :func:`post` and
:func:`set_hold` bump and wake when they find it asleep. Going to sleep through Python instead (a
``threading.Condition``, the path kept for other systems) needs the GIL, and the worker asked for
it just as the caller's next call ran: own_threads' entry and exit then cost the caller about
0.2 ms per training step in wake-ups of its own. And when a hold ends, the worker spins
:data:`LINGER` pauses more before it sleeps: a wake through the futex cost the caller 20-50 µs
on the project's virtual machines, where a training step's backward, and the next step's
forward, now find it awake (docs/performance.md, "bptt's second thread").

The protocol: the worker reads :data:`WAKE`, sets :data:`SLEEPING`, and looks for a task (or the
hold) once more after a full fence before it sleeps; the caller stores :data:`POSTED` (or
:data:`HOLD`), fences, and wakes the worker if it sees :data:`SLEEPING`. One of the two always
sees the other's store, so no post is missed; a wake that finds the worker not yet asleep only
makes its futex wait return at once. The waits time out after :data:`TIMEOUT_SECONDS` all the
same, and a task found after such a timeout is counted in :data:`LOST` (the tests require none).
"""

from __future__ import annotations

import platform
import sys

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .sync import _is_flags, _slot, load_acquire, pause, store_release, yield_core

#: The fingerprint of the modules compiled into this module's functions (see bptt.kernels.fingerprint).
COMPILED_DEPENDENCIES = "0f596678f4ddcd03"

#: The flag slots (:data:`TIMEOUT` two int64 values: a ``struct timespec``; :data:`SPINS` and
#: :data:`LINGER`, the futex path's pauses, written by the caller with each post and hold).
POSTED = 0
DONE = 1
HOLD = 2
SLEEPING = 3
WAKE = 4
LOST = 5
TIMEOUT = 6
SPINS = 7
LINGER = 8
N_SLOTS = 9
#: The futex system call's number where bptt calls it (64-bit little-endian Linux: the futex word
#: is the low half of :data:`WAKE`'s int64), else None: the worker then sleeps through Python.
_FUTEX_CALLS = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}
FUTEX_CALL = (_FUTEX_CALLS.get(platform.machine().lower()) if sys.platform.startswith("linux")
              and sys.byteorder == "little" and sys.maxsize > 2 ** 32 else None)
FUTEX = FUTEX_CALL is not None
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129
#: A futex wait's timeout, seconds.
TIMEOUT_SECONDS = 1
#: A spinning wait gives its core away once every this many pauses.
YIELD_EVERY = 64


def new_flags():
    """A new flags array: every slot 0, the futex waits' timeout set."""
    import numpy as np

    from .sync import STRIDE

    flags = np.zeros(N_SLOTS * STRIDE, np.int64)
    flags[TIMEOUT * STRIDE] = TIMEOUT_SECONDS
    return flags


@intrinsic
def _fence(typingctx):
    """A full (sequentially consistent) fence: no load after it is done before a store before it."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _bump(typingctx, flags, i):
    """Add 1 to flag ``i`` (an atomic read-modify-write)."""
    if not _is_flags(flags):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], *args)
        builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "seq_cst")
        return context.get_dummy_value()

    return types.void(flags, types.intp), codegen


def _futex(builder, context, signature, args, op):
    """``syscall(SYS_futex, &low half of flag i, op, value, timeout)``; nothing without :data:`FUTEX`."""
    if not FUTEX:
        return
    i64 = ir.IntType(64)
    flags, i, value = args
    word = builder.ptrtoint(_slot(context, builder, signature.args[0], flags, i), i64)
    timeout = builder.ptrtoint(_slot(context, builder, signature.args[0], flags, ir.Constant(i64, TIMEOUT)), i64)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    builder.call(fn, [ir.Constant(i64, FUTEX_CALL), word, ir.Constant(i64, op), value,
                      timeout if op == _FUTEX_WAIT_PRIVATE else ir.Constant(i64, 0)])


@intrinsic
def _futex_wait(typingctx, flags, i, value):
    """Sleep while the low 32 bits of flag ``i`` equal those of ``value`` (until a wake, or the
    :data:`TIMEOUT`)."""
    if not _is_flags(flags):
        return None

    def codegen(context, builder, signature, args):
        _futex(builder, context, signature, args, _FUTEX_WAIT_PRIVATE)
        return context.get_dummy_value()

    return types.void(flags, types.intp, types.int64), codegen


@intrinsic
def _futex_wake(typingctx, flags, i):
    """Wake one thread waiting on flag ``i``."""
    if not _is_flags(flags):
        return None

    def codegen(context, builder, signature, args):
        _futex(builder, context, signature, (args[0], args[1], ir.Constant(ir.IntType(64), 1)), _FUTEX_WAKE_PRIVATE)
        return context.get_dummy_value()

    return types.void(flags, types.intp), codegen


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


@nb.njit(inline="always")
def _wake_if_sleeping(flags):
    """The caller, after a store the worker waits for: wake the worker if it sleeps on :data:`WAKE`."""
    _fence()
    if load_acquire(flags, SLEEPING) != 0:
        _bump(flags, WAKE)
        _futex_wake(flags, WAKE)


@nb.njit(cache=True)
def set_hold(flags, on, spins, linger):
    """The caller: let the worker spin between tasks (``on``; woken to do so if it sleeps on the
    futex), or stop it. ``spins``, ``linger``: the pauses of the futex path's waits from now on
    (:func:`_await`)."""
    _set_pauses(flags, spins, linger)
    store_release(flags, HOLD, 1 if on else 0)
    if on:
        _wake_if_sleeping(flags)


@nb.njit(cache=True)
def held(flags):
    """The worker: whether it may spin."""
    return load_acquire(flags, HOLD) != 0


@nb.njit(inline="always")
def _set_pauses(flags, spins, linger):
    store_release(flags, SPINS, spins)
    store_release(flags, LINGER, linger)


@nb.njit(cache=True)
def post(flags, task, spins, linger):
    """The caller: post task ``task`` (and wake the worker if it sleeps on the futex); ``spins``,
    ``linger`` as for :func:`set_hold`."""
    _set_pauses(flags, spins, linger)
    store_release(flags, POSTED, task)
    _wake_if_sleeping(flags)


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


# ───────────────────────────────────────── sleeping on the futex, without the GIL (:data:`FUTEX`)


@nb.njit(inline="always", nogil=True)
def _await(flags, task, seq):
    """The worker: return once task ``task`` is posted, spinning while :data:`HOLD` is set (up to
    :data:`SPINS` pauses) and :data:`LINGER` pauses more once a hold it saw ends, else asleep on
    :data:`WAKE`. ``seq`` ≥ 0: :data:`SLEEPING` already set, with :data:`WAKE` read as ``seq``
    before. The pauses are read at every look: the caller's last post or hold set them."""
    while True:
        n = 0
        if seq < 0:
            held, m = False, 0
            while load_acquire(flags, POSTED) < task:
                if load_acquire(flags, HOLD) != 0:
                    if n >= load_acquire(flags, SPINS):
                        break
                    held, m = True, 0
                    n += 1
                elif held and m < load_acquire(flags, LINGER):
                    m += 1
                else:
                    break
                if (n + m) % YIELD_EVERY == YIELD_EVERY - 1:
                    yield_core()
                else:
                    pause()
            if load_acquire(flags, POSTED) >= task:
                return
            seq = load_acquire(flags, WAKE)
            store_release(flags, SLEEPING, 1)
        _fence()  # the caller's stores before its fence are seen here, or it sees SLEEPING
        if load_acquire(flags, POSTED) >= task:
            store_release(flags, SLEEPING, 0)
            return
        if n < load_acquire(flags, SPINS) and load_acquire(flags, HOLD) != 0:  # held meanwhile: spin
            store_release(flags, SLEEPING, 0)
            seq = -1
            continue
        _futex_wait(flags, WAKE, seq)
        store_release(flags, SLEEPING, 0)
        if load_acquire(flags, POSTED) >= task and load_acquire(flags, WAKE) == seq:
            _bump(flags, LOST)  # posted, but never woken: the wait timed out
        seq = -1


@nb.njit(nogil=True, cache=True)
def await_task(flags, task, grace):
    """The worker: return once task ``task`` is posted (:func:`_await`), then pause ``grace`` (as
    :func:`wait_for_task`)."""
    _await(flags, task, -1)
    for _ in range(grace):
        pause()


@nb.njit(nogil=True, cache=True)
def done_and_await(flags, task, grace):
    """The worker: mark task ``task`` done, then :func:`await_task` ``task + 1``, without the GIL
    throughout. Not held, it says it sleeps before it marks the task done: the caller, seeing the
    task done, finds it asleep (and its next post wakes it)."""
    seq = -1
    if load_acquire(flags, HOLD) == 0:
        seq = load_acquire(flags, WAKE)
        store_release(flags, SLEEPING, 1)
    store_release(flags, DONE, task)
    _await(flags, task + 1, seq)
    for _ in range(grace):
        pause()
