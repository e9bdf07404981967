"""Step flags for the two threads of one time loop split by hidden units (bptt.kernels.fast).

Each thread computes its own rows of every step and publishes how many steps it has finished
(:func:`publish`, a release store); before the product of step t, which reads the whole state
h_{t-1}, it waits until the other thread has finished t steps (:func:`wait_for`, acquire loads).
The waits spin with the CPU's pause hint, then give the core away (``sched_yield``) so that a
process held to one core still progresses.
"""

from __future__ import annotations

import platform
import sys

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: int64 slots between two threads' flags: 128 bytes, so no cache line (or adjacent-line
#: prefetch pair) is shared.
STRIDE = 16
#: A flag value every wait accepts: set by the caller when one thread failed, so that the other
#: one does not wait for it forever.
ABORT = 1 << 62
#: Pause hints before a wait starts yielding the core (about 20-40 µs; a step of a loop that is
#: split this way takes 10 µs to 1 ms).
SPINS = 1000

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_POSIX = sys.platform != "win32"


def _slot(context, builder, arrty, arr, i):
    data = cgutils.create_struct_proxy(arrty)(context, builder, value=arr).data
    return builder.gep(data, [builder.mul(i, ir.Constant(ir.IntType(64), STRIDE))])


def _is_flags(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1


@intrinsic
def load_acquire(typingctx, flags, i):
    """Thread ``i``'s flag, an acquire load (what the other thread wrote before its release is visible)."""
    if not _is_flags(flags):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_slot(context, builder, signature.args[0], *args), "acquire", 8)

    return types.int64(flags, types.intp), codegen


@intrinsic
def store_release(typingctx, flags, i, value):
    """Set thread ``i``'s flag, a release store (everything written before it is visible first)."""
    if not _is_flags(flags):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(flags, types.intp, types.int64), codegen


@intrinsic
def pause(typingctx):
    """The spin-wait hint (x86 ``pause``; nothing elsewhere)."""

    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def yield_core(typingctx):
    """Give the core to another runnable thread (POSIX ``sched_yield``; a pause elsewhere)."""

    def codegen(context, builder, signature, args):
        if _POSIX:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
            builder.call(fn, [])
        elif _X86:  # pragma: no cover - Windows
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@nb.njit(inline="always", nogil=True)
def wait_for(flags, i, value):
    """Return once thread ``i``'s flag is at least ``value``."""
    n = 0
    while load_acquire(flags, i) < value:
        if n < SPINS:
            pause()
            n += 1
        else:
            yield_core()


@nb.njit(inline="always", nogil=True)
def publish(flags, i, value):
    """Set thread ``i``'s flag to ``value`` (steps finished)."""
    store_release(flags, i, value)
