"""How the fast path runs a call: threads, the per-step product, tiles, thresholds.

Every choice is a rule over the call's sizes and the machine's measured properties, with its
thresholds in :data:`bptt.settings.settings` (the figures behind them: docs/performance.md):

1. **Product per step** (:func:`_driver`): up to ``settings.small_step_fmas`` multiply-adds
   (B·G·H·H) by hand inside the compiled loop; above it NumPy's BLAS GEMM called by address from
   the compiled loop; where no BLAS symbol can be called, a Python loop with ``np.matmul``.
2. **bptt's micro-kernel** (:func:`_own_kernel`, float32, shapes it can tile): by default on
   AVX-512 CPUs; there it takes every product BLAS would run on one thread, and the forward
   shapes where NumPy's OpenBLAS runs kernels narrower than the CPU's. On other CPUs its tile
   reaches OpenBLAS's rate, not more, and it takes the per-step products only where a step's
   product is at most ``settings.narrow_cpu_own_kernel_flops`` (OpenBLAS's per-call costs weigh).
3. **Two threads** (:func:`_loop_split`, :func:`_units_split`): a loop whose work
   T·B·G·H·(2H + ``loop_elementwise``) reaches ``settings.split_loop_work`` runs on two threads,
   over two parts of the batch (the sequences are independent), or, for float32 forward loops
   whose halves of the hidden units both suit the micro-kernel, over two halves of the units.
4. **BLAS threads** (:func:`_blas_for`, :func:`_loop_threads`): GEMMs below
   ``settings.single_thread_flops`` run single-threaded, and below
   ``settings.wakeup_single_thread_flops`` when OpenBLAS's threads sleep at once.
5. **Inputs in the loop** (:func:`_projection_in_loop`): where the loop's product runs on BLAS
   or the micro-kernel, it takes ``[x_t; h_{t-1}]`` at once, and inference then reads a
   time-major array (:func:`_time_major_inference`).
6. **Both directions at once** (:func:`_directions_in_parallel`): on CPUs without AVX-512, a
   bidirectional layer runs its two directions at the same time, each on one core, where one
   direction's loop would run on two threads by rule 3 (its work reaches
   ``settings.split_loop_work``).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from .._threads import (_NO_CHANGE, blas_max_threads, on_second_thread, own_threads, run_in_two_threads,
                        run_in_two_threads_meeting, single_threaded_if)
from ..settings import OwnKernel, settings
from ._backend import _kernel, default_backend

#: OpenBLAS's default timeout is 28 (2^28 cycles of spinning before a thread sleeps); from about
#: 2^18 cycles on, idle threads still spin between the steps of a time loop.
SPINNING_TIMEOUT = 18


@functools.lru_cache(maxsize=1)
def _threads_sleep_at_once() -> bool:
    """Whether ``OPENBLAS_THREAD_TIMEOUT`` is below :data:`SPINNING_TIMEOUT`. Read once, like
    OpenBLAS itself, which reads the variable when it loads."""
    try:
        return int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")) < SPINNING_TIMEOUT
    except ValueError:
        return False


def _single_thread_flops() -> float:
    """GEMMs below this many flops run single-threaded (rule 4)."""
    return max(settings.single_thread_flops, settings.wakeup_single_thread_flops if _threads_sleep_at_once() else 0)


def _blas_for(T: int, B: int, I: int, H: int, G: int):
    """The BLAS threading context for a whole call, whose GEMMs take 2·T·B·(I+H)·G·H flops."""
    return single_threaded_if(2 * T * B * (I + H) * G * H < _single_thread_flops())


def _forward_threads(plan: "_LoopPlan", T: int, B: int, I: int, H: int, G: int, dtype, units: bool = True):
    """The threading context of a padded fast forward call: bptt._threads.own_threads where its
    time loop runs on bptt's two threads, cut by the batch (``plan.split``) or, ``units``
    allowing, by hidden units (:func:`_units_split`, where the loop's products take the inputs),
    else none. Within it NumPy's BLAS runs one thread: OpenBLAS's threads, spinning after a GEMM
    of theirs, took the second core from bptt's worker (the RNN's medium training step 4.5 →
    3.3 ms held so; docs/performance.md, "bptt's second thread"). Where the loop runs on one
    thread its GEMMs may take BLAS's threads, and nothing is held."""
    if plan.blas is None:  # the Python loop, np.matmul on BLAS's threads
        return _NO_CHANGE
    two = plan.split > 0 or (units and _projection_in_loop(plan, I, H, G) and _units_split(T, B, H, G, dtype, plan) > 0)
    return own_threads() if two else _NO_CHANGE


def _backward_threads(plan: "_LoopPlan"):
    """As :func:`_forward_threads` for a padded fast backward call, whose loop is cut by the batch only."""
    return own_threads() if plan.blas is not None and plan.split > 0 else _NO_CHANGE


def _loop_threads(B: int, H: int, G: int):
    """The BLAS threading context for the per-step products of a time loop (``2·B·G·H·H`` flops each)."""
    return single_threaded_if(2 * B * G * H * H < _single_thread_flops())


def _loop_work(T: int, B: int, H: int, G: int) -> float:
    """A time loop's work: the products' flops plus the gate arithmetic, each gate value weighed
    as ``settings.loop_elementwise`` flops."""
    return T * B * G * H * (2 * H + settings.loop_elementwise)


def _directions_in_parallel(T: int, B: int, H: int, G: int) -> bool:
    """Whether a bidirectional layer runs its two directions at the same time, one per core
    (``settings.parallel_directions``; rule 6 in docs/performance.md, "Bidirectional layers: the
    two directions at once")."""
    force = settings.parallel_directions
    if force is not None:
        return bool(force)
    if settings.loop_threads == 1 or on_second_thread() or default_backend() != "fast":
        return False
    if _kernel("microkernel").WIDE:  # see settings.parallel_directions: not measured a gain there
        return False
    return blas_max_threads() >= 2 and _loop_work(T, B, H, G) >= settings.split_loop_work


def _loop_split(T: int, B: int, H: int, G: int, dtype) -> int:
    """Where the batch is cut for a two-thread time loop (columns ``[0, s)`` here, ``[s, B)`` on
    the worker), or 0 for one thread (rule 3). The cut lies on a 64-byte boundary (no cache line
    shared by the two threads), on a multiple of 32 when both parts can then use the
    micro-kernel, and leaves each part at least ``settings.loop_split_min_columns`` wide (16
    where the micro-kernel takes both the forward and the backward products).
    ``settings.loop_threads`` 1 keeps every loop on one thread; 2 splits every loop it can
    (any cut on a 64-byte boundary)."""
    force = settings.loop_threads
    if force == 1 or (force != 2 and _loop_work(T, B, H, G) < settings.split_loop_work):
        return 0
    if blas_max_threads() < 2:  # the user (or the machine) allows one thread
        return 0
    step = 64 // np.dtype(dtype).itemsize
    if B % 64 == 0 and np.dtype(dtype) == np.float32:
        step = 32
    split = (B // 2 + step // 2) // step * step
    if force == 2:
        narrowest = 1
    elif _own_kernel(16, H, G, dtype, one_thread=True, batch=B) and _kernel("microkernel").can_tile(H, 16):
        narrowest = 16
    else:
        narrowest = settings.loop_split_min_columns
    return split if narrowest <= split <= B - narrowest else 0


def _small(B: int, H: int, G: int) -> bool:
    """Whether a step's product is small enough for the hand-written loop (rule 1)."""
    return B * H * G * H <= settings.small_step_fmas


def _driver(B: int, H: int, G: int, dtype, one_thread: bool = False, batch: int | None = None) -> tuple[int | None, int]:
    """How the recurrent product runs: ``(blas, own)`` (rules 1 and 2). ``blas`` is 0 for the
    hand-written product inside the compiled loop (small sizes), the address of NumPy's BLAS GEMM
    to call from the compiled loop, or None for the Python loop with ``np.matmul`` (no callable
    BLAS symbol). ``own``: an :class:`~bptt.settings.OwnKernel` value, where bptt's float32
    micro-kernel does the products. ``one_thread``: BLAS will run single-threaded (each of a
    two-thread loop's parts; ``batch``: then the loop's whole batch, B the parts' width). Small
    products never run on BLAS's threads, so the micro-kernel takes them wherever it may run at all."""
    if _small(B, H, G):
        return 0, _own_kernel(B, H, G, dtype, one_thread=True, batch=batch)
    own = _own_kernel(B, H, G, dtype, one_thread, batch=batch)
    return _kernel("blas").gemm_address(dtype) or None, own


@dataclass(frozen=True)
class _LoopPlan:
    """How a time loop runs (:func:`_loop_plan`): over the whole batch (``split`` 0) or over the
    columns ``[0, split)`` and ``[split, B)`` on two threads, with the product ``(blas, own)`` of
    :func:`_driver` (``blas`` None: no BLAS symbol can be called, the caller's Python loop runs)."""

    B: int
    split: int
    blas: int | None
    own: int

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.split, self.B - self.split) if self.split else (self.B,)


def _loop_plan(T: int, B: int, H: int, G: int, dtype) -> _LoopPlan:
    """The threading :func:`_loop_split` chooses and the product :func:`_driver` chooses for it."""
    split = _loop_split(T, B, H, G, dtype)
    if not split:
        return _LoopPlan(B, 0, *_driver(B, H, G, dtype))
    return _LoopPlan(B, split, *_driver(math.gcd(split, B - split), H, G, dtype, one_thread=True, batch=B))


def _compiled_loop(driver, T: int, B: int, H: int, G: int, dtype, *args, plan: _LoopPlan | None = None) -> bool:
    """Run ``driver(blas, own, *args, b0, b1)``, a compiled time loop of bptt.kernels.fast over
    the batch columns ``[b0, b1)``, as ``plan`` (default: :func:`_loop_plan`) says: over the whole
    batch (BLAS threaded as :func:`_loop_threads` says), or over two parts on two threads. False
    (nothing run) when no BLAS symbol can be called: the caller then runs its Python loop with
    ``np.matmul``."""
    plan = plan or _loop_plan(T, B, H, G, dtype)
    if plan.blas is None:
        return False
    if not plan.split:
        if plan.blas == 0:  # no BLAS call in the loop: its threading does not matter
            driver(plan.blas, plan.own, *args, 0, B)
            return True
        with _loop_threads(B, H, G):
            driver(plan.blas, plan.own, *args, 0, B)
        return True
    with single_threaded_if(True):
        run_in_two_threads(driver, (plan.blas, plan.own, *args, 0, plan.split),
                           (plan.blas, plan.own, *args, plan.split, B))
    return True


def _projection_in_loop(plan: _LoopPlan, I: int, H: int, G: int) -> bool:
    """Whether the forward loop's per-step product takes the inputs too, ``[W; U]ᵀ [x_t; h_{t-1}]``
    (K = I + H), instead of adding ``h_{t-1} U`` to the input projection of all steps, one product
    before the loop (rule 5): then no ``(G·H, T, B)`` projection is written before the loop and
    read back, cold, by it. Wherever the loop's product is BLAS (or ``np.matmul``) or the
    micro-kernel can tile it; not where the hand-written product runs the loop, an
    output-stationary loop over K that the larger K slows down more than the projection saves."""
    if plan.blas != 0:  # BLAS, or np.matmul in the caller's Python loop
        return True
    can_tile = _kernel("microkernel").can_tile
    M, K = G * H, I + H
    tiles = plan.own == OwnKernel.ALL or (plan.own == OwnKernel.FORWARD_SHAPES and M >= K)
    return tiles and all(can_tile(M, w) for w in plan.widths)


def _time_major_inference(plan: _LoopPlan, I: int, H: int, G: int) -> bool:
    """Whether an inference forward runs over the time-major ``_arrays._tm_stacked`` array: where
    its compiled loop's product takes the inputs too (:func:`_projection_in_loop`). Step t's
    operand ``[x_t; h_{t-1}]`` is then one contiguous block, where in the feature-major layout its
    rows lie ``(T + 1)·B`` values apart, a stride the prefetchers do not follow."""
    return plan.blas is not None and _projection_in_loop(plan, I, H, G)


def _units_split(T: int, B: int, H: int, G: int, dtype, plan: _LoopPlan | None = None) -> int:
    """Where the hidden units are cut for a two-thread forward loop split by units (units
    ``[0, cut)`` here, ``[cut, H)`` on the worker; :func:`_run_units_split`), or 0 for the loop of
    :func:`_compiled_loop` (rule 3). Both parts' products, G blocks of rows over the whole batch,
    must suit bptt's micro-kernel (float32, its tiles); each thread then reads half of the
    weights. Work below ``settings.split_loop_work`` stays on one thread, as for
    :func:`_loop_split`; ``settings.loop_threads`` 1 keeps every loop on one thread, 2 splits every
    loop whose parts suit the micro-kernel; ``settings.units_split`` False leaves the choice to
    :func:`_loop_split`. ``plan``: the loop's :func:`_loop_plan`, when the caller has it.

    Forward loops only: the backward's product ``dz_t Uᵀ`` needs all of dz_t, so its threads
    would meet between cell and product. The GRU splits so in its reset-after form only (the
    reset-before n block's product needs r ⊙ h_{t-1} of every unit first, the callers' rule). The
    simple RNN (``G`` 1), whose steps are the cheapest, splits by units only where the batch cut
    leaves parts narrower than the micro-kernel's main tile (``NC`` columns)."""
    force = settings.loop_threads
    if _loop_work(T, B, H, G) < settings.split_loop_work and force != 2:
        return 0  # first: the small rows' calls take tens of µs, the tests below several
    mk = _kernel("microkernel")
    if (np.dtype(dtype) != np.float32 or not _own_kernel_on(B, H, G) or not settings.units_split
            or force == 1 or blas_max_threads() < 2):
        return 0
    if G == 1 and force != 2 and min((plan or _loop_plan(T, B, H, G, dtype)).widths) >= mk.NC:
        return 0
    cut = (H // 2 + mk.MR // 2) // mk.MR * mk.MR
    return cut if 0 < cut < H and mk.can_tile(cut, B) and mk.can_tile(H - cut, B) else 0


def _run_units_split(driver, blas, args: tuple, cut: int, H: int) -> None:
    """``driver(blas, OwnKernel.ALL, *args, flags, p, j0, j1)`` on two threads meeting after every
    step: this one over the units ``[0, cut)``, bptt's worker over ``[cut, H)``, both on the
    micro-kernel. Calls from several threads at once stay correct: bptt has one worker, so a
    second caller's half waits (spinning, then yielding its core) until the worker has finished
    the first call's."""
    flags = np.zeros(2 * _kernel("sync").STRIDE, np.int64)
    own = int(OwnKernel.ALL)
    with single_threaded_if(True):
        run_in_two_threads_meeting(driver, (blas, own, *args, flags, 0, 0, cut), (blas, own, *args, flags, 1, cut, H),
                                   flags)


def _own_kernel_by_default(B: int | None = None, H: int | None = None, G: int | None = None) -> bool:
    """Whether the micro-kernel may be used with ``settings.own_kernel`` AUTO: on AVX-512 CPUs.
    Elsewhere it reaches OpenBLAS's rate, not more: only in the per-step products of a loop whose
    step product ``2·B·G·H²`` (given) is at most ``settings.narrow_cpu_own_kernel_flops``, where
    OpenBLAS's per-call costs weigh (or everywhere with ``settings.narrow_cpu_own_kernel``). The
    other products (the input projection, the weight gradients' dot tiles) stay on OpenBLAS there:
    the dot tiles made the ragged RNN row's training step 10 % slower (2-core AMD EPYC Zen 3)."""
    if _kernel("microkernel").WIDE or settings.narrow_cpu_own_kernel:
        return True
    return B is not None and 2 * B * G * H * H <= settings.narrow_cpu_own_kernel_flops


def _own_kernel_on(B: int | None = None, H: int | None = None, G: int | None = None) -> bool:
    """Whether the micro-kernel may run at all: ``settings.own_kernel`` ALL, or AUTO on a CPU
    where it runs by default (for a loop of batch B, H units and G gate blocks, when given: see
    :func:`_own_kernel_by_default`); never with OFF."""
    mode = settings.own_kernel
    return mode != OwnKernel.OFF and (mode == OwnKernel.ALL or _own_kernel_by_default(B, H, G))


def _own_kernel(B: int, H: int, G: int, dtype, one_thread: bool = False, batch: int | None = None) -> int:
    """Where bptt's own float32 micro-kernel does the per-step products (rule 2), as an
    :class:`~bptt.settings.OwnKernel` value: ALL (every product it can tile) when BLAS would do
    them on one thread (``one_thread``, or see :func:`_loop_threads`); FORWARD_SHAPES when NumPy's
    OpenBLAS runs kernels narrower than the CPU's; else OFF (OpenBLAS's own AVX-512 kernels on
    two threads). ``settings.own_kernel`` OFF or ALL decides instead of these rules. B: the
    product's columns; ``batch``: the loop's whole batch where B is a part of it (a CPU without
    AVX-512 weighs the whole step's product, :func:`_own_kernel_by_default`)."""
    can_tile = _kernel("microkernel").can_tile
    if np.dtype(dtype) != np.float32 or not (can_tile(G * H, B) or can_tile(H, B)):
        return int(OwnKernel.OFF)
    mode = settings.own_kernel
    if mode != OwnKernel.AUTO:
        return int(mode)
    if not _own_kernel_by_default(batch or B, H, G):
        return int(OwnKernel.OFF)
    if one_thread or 2 * B * G * H * H < _single_thread_flops():
        return int(OwnKernel.ALL)
    narrower = _kernel("blas").blas_kernels()["narrower_than_cpu"]
    return int(OwnKernel.FORWARD_SHAPES if narrower else OwnKernel.OFF)
