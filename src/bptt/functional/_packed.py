"""The fast path's layout for ``lengths=`` and ``reverse=``: packed sequences.

As cuDNN's and PyTorch's packed sequences, only the real steps are stored, and each step's are
contiguous. The sequences are sorted by length, longest first, within each part of the batch a
thread takes (the two parts of a two-thread loop take them alternately, longest first, so that
both have about the same work); every per-step array of a call is ``(features, N)``, and block s
of part p (columns ``off[s, p]`` to ``off[s, p] + width[s, p]``) holds that part's sequences still
running at step s, ``n[s, p]`` of them, longest first: their inputs x_s and states h_{s-1} in the
stacked ``xh`` (rows ``[0, I)`` and ``[I, I + H)``, block 0's states the initial ones), and the
gates and deltas of step s. Part 0's blocks 0 … T − 1 come first, one after another, then
part 1's, then the blocks T (the final states) of both: each thread's columns are one run of
memory. (With the two threads' blocks interleaved step by step, the LSTM forward loop of the
ragged row took 1.45 ms on two threads; laid out so, 1.09 ms; each part alone 0.87-0.96:
docs/performance.md, "Two threads over packed sequences".) A sequence's step s reads the
caller's step s, or ``lengths − 1 − s`` with ``reverse``. The layout's tables come from
bptt.kernels.fast.packing.packed_layout (one compiled call, as each step into and out of the
layout is: bptt.kernels.fast.packing), the loops that read it are the cells'
``*_forward_packed`` / ``*_backward_packed`` (bptt.kernels.fast).

So the loops do no work on padded steps (no zeroing of padded slots either), the products around
the loops (the input projection, the weight gradients, dx) run over the real steps only, as one
product each, and the inputs and outputs are gathered to and from the caller's ``(B, T, ·)`` in
one pass each (:meth:`_Packed.pack_inputs`, :meth:`_Packed.unpack`): the outputs as feature-major
arrays in the caller's order, zeros at the padded steps, returned as batch-major views (as the
padded path returns its own arrays).

Each block is as wide as the running columns of the step before (those hold the states the step
reads; the sequences that ended there keep their final states in it), rounded up to the
micro-kernel's tile where it runs (its products cover whole tiles; a block's columns past its
running ones hold zeros where a product or the weight gradients read them).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .._threads import own_threads, run_in_two_threads, single_threaded_if
from ..settings import settings
from ._arrays import _batch_major, _empty
from ._backend import _fast
from ._plan import _loop_threads

#: The columns of the products after the loops are a multiple of this (the dot tiles' lanes:
#: a remainder would run scalar, 10-20 % of the weight gradients' time on the ragged row).
K_MULTIPLE = 16


def _new(shape, dtype) -> np.ndarray:
    """A new packed array, aligned to a cache line when large (bptt.functional._arrays._empty's
    threshold; the small ones cost more to align than they gain)."""
    dtype = np.dtype(dtype)
    return _empty(shape, dtype, always=shape[0] * shape[1] * dtype.itemsize >= settings.align_min_bytes)


@dataclass(frozen=True, eq=False)
class _Packed:
    """The packed layout of one call (see the module docstring). ``order (B,)``: the caller's
    sequence in each column of the running ``(·, B)`` arrays (part p from ``parts[p]``); ``n``,
    ``width``, ``off``, ``pw``, ``rows``, ``finals`` and the real steps' columns ``src_x``,
    ``src_h``, ``dst``: the tables of bptt.kernels.fast.packing.packed_layout; ``plan``: the
    loops' plan (bptt.functional._plan),
    the backward pass runs with the same; ``Bp``: the columns of every running array, B and the
    last part's rounded up to a block's rounding (the products over a block's columns write as
    many running ones)."""

    lengths: np.ndarray
    reverse: bool
    T: int
    order: np.ndarray
    parts: np.ndarray
    n: np.ndarray
    width: np.ndarray
    off: np.ndarray
    pw: np.ndarray
    rows: np.ndarray
    finals: np.ndarray
    src_x: np.ndarray
    src_h: np.ndarray
    dst: np.ndarray
    plan: object
    Bp: int

    @property
    def B(self) -> int:
        return self.order.shape[0]

    @property
    def cols_x(self) -> np.ndarray:
        """``(T·B,)``: the packed column of the caller's step ``t·B + b`` in the per-step blocks, −1
        for padded steps (from the real steps' pairs; for tests and inspection)."""
        return self._columns(self.src_x)

    @property
    def cols_h(self) -> np.ndarray:
        """As :attr:`cols_x`, in the states' blocks (block s + 1)."""
        return self._columns(self.src_h)

    def _columns(self, src: np.ndarray) -> np.ndarray:
        out = np.full(self.T * self.B, -1, np.int64)
        out[self.dst] = src
        return out

    @property
    def N(self) -> int:
        """The columns of every packed array: blocks 0 … T, and at least :attr:`K`."""
        return max(int(self.off[-1, 0]), self.K)

    @property
    def N_x(self) -> int:
        """The columns of blocks 0 … T − 1, those of the steps (block T holds final states only)."""
        return int(self.off[-2, 0])

    @property
    def K(self) -> int:
        """The columns the products after the loops run over: :attr:`N_x` rounded up to
        :data:`K_MULTIPLE` (the inputs and deltas past N_x are zeros, :meth:`zero_tail`)."""
        return -(-int(self.off[-2, 0]) // K_MULTIPLE) * K_MULTIPLE

    def zero_tail(self, *arrays) -> None:
        """Zeros in the columns ``[N_x, K)`` of packed per-step arrays (deltas the backward loops
        leave unwritten there), so that the products over K columns add nothing from them."""
        for a in arrays:
            a[:, self.N_x: self.K] = 0

    # ─────────────────────────────────────────────────────────────── into the layout

    def pack_inputs(self, x: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """The caller's ``x (B, T, I)`` and ``h0 (B, H)`` as the stacked ``xh (I + H, N)``: x_s of
        the running sequences in each block (zeros past them), h0 in block 0's state rows (and
        zeros in the state rows past the columns a step writes)."""
        B, T, I = x.shape
        H = h0.shape[1]
        xh = _new((I + H, self.N), x.dtype)
        _fast().pack_inputs(_batch_major(x).reshape(B * T, I), self.rows, np.ascontiguousarray(h0), self.order, xh,
                            self.n, self.width, self.off, self.parts)
        return xh

    def states(self, s0: np.ndarray) -> np.ndarray:
        """A packed ``(H, N)`` state array (the LSTM's cell states) with the caller's initial states
        ``s0 (B, H)`` in block 0 (zeros in its rows past the columns the steps write)."""
        out = _new((s0.shape[1], self.N), s0.dtype)
        _fast().pack_states(np.ascontiguousarray(s0), self.order, out, 0, self.n, self.width, self.off, self.parts)
        return out

    def empty(self, rows: int, dtype) -> np.ndarray:
        """A new packed ``(rows, N)`` array."""
        return _new((rows, self.N), dtype)

    def running(self, a: np.ndarray) -> np.ndarray:
        """A caller's ``(B, H)`` array as a new running ``(H, Bp)`` one in the processing order."""
        out = self.empty_running(a.shape[1], a.dtype)
        _fast().to_running(np.ascontiguousarray(a), self.order, out)
        return out

    def empty_running(self, rows: int, dtype) -> np.ndarray:
        """A new running ``(rows, Bp)`` array, on a cache line whatever its size: the two threads'
        parts of a row then share no cache line (the cut between them lies on a line's boundary
        when the row starts on one; otherwise both threads would write the line across the cut at
        every step)."""
        return _empty((rows, self.Bp), dtype, always=True)

    # ─────────────────────────────────────────────────────────────── out of the layout

    def unpack(self, a: np.ndarray, r0: int, F: int, states: bool) -> np.ndarray:
        """Rows ``[r0, r0 + F)`` of a packed array as the caller's ``(B, T, F)``: a batch-major view
        of a new feature-major array, zeros at the padded steps. ``states``: the array holds step
        s's result in block s + 1 (h, c); else in block s (gates, deltas, dx). Where the loops run
        on two threads, each unpacks half the rows."""
        out = np.empty((F, self.T, self.B), a.dtype)
        args, flat = (a, r0, self.src_h if states else self.src_x, self.dst), out.reshape(F, -1)
        if len(self.parts) == 3 and F > 1:
            run_in_two_threads(_fast().unpack_real, (*args, flat, 0, F // 2), (*args, flat, F // 2, F))
        else:
            _fast().unpack_real(*args, flat, 0, F)
        return out.transpose(2, 1, 0)

    def finals_of(self, a: np.ndarray, r0: int, F: int) -> np.ndarray:
        """Each sequence's final state ``(F, B)`` from rows ``[r0, r0 + F)`` of a packed state
        array, in the processing order."""
        return a[r0: r0 + F, self.finals]

    def caller_rows(self, a: np.ndarray) -> np.ndarray:
        """A running ``(H, Bp)`` array (dh0, dc0) as the caller's ``(B, H)``."""
        out = np.empty((self.B, a.shape[0]), a.dtype)
        _fast().from_running(a, self.order, out)
        return out

    # ─────────────────────────────────────────────────────────────── the loops

    def threads(self):
        """The context of a forward or backward call over this layout: where its loops run on two
        threads, bptt._threads.own_threads (NumPy's BLAS on one thread, bptt's worker spinning
        between its tasks)."""
        return own_threads() if len(self.parts) == 3 else contextlib.nullcontext()

    def run(self, driver, H: int, G: int, *args) -> None:
        """``driver(blas, own, *args, n…, parts, p)`` for each part p, on two threads when the plan
        cuts the batch: the packed drivers of bptt.kernels.fast. ``args`` end with the tables the
        driver reads (see :meth:`tables`)."""
        plan = self.plan
        if len(self.parts) == 2:
            with _loop_threads(self.B, H, G):
                driver(plan.blas, plan.own, *args, 0)
            return
        with single_threaded_if(True):
            run_in_two_threads(driver, (plan.blas, plan.own, *args, 0), (plan.blas, plan.own, *args, 1))


def packed(seq, plan, rounding: int, dtype) -> _Packed:
    """The packed layout of the validated sequences ``seq`` (bptt.functional._lengths._Sequences)
    for the loops of ``plan``; the products round the running columns up to ``rounding``."""
    split = plan.split
    block = rounding
    if split and block == 1:  # the two threads' columns never share a cache line
        block = 64 // np.dtype(dtype).itemsize
    order, parts, n, width, off, pw, rows, finals, src_x, src_h, dst = _fast().packed_layout(
        seq.lengths, split, seq.T, bool(seq.reverse), block, rounding, K_MULTIPLE)
    Bp = int(parts[-2] + width[0, -1])
    return _Packed(seq.lengths, bool(seq.reverse), seq.T, order, parts, n, width, off, pw, rows, finals, src_x, src_h,
                   dst, plan, Bp)
