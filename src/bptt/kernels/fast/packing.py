"""Into and out of the packed layout of calls with ``lengths=`` (bptt.functional._packed): its
tables, the inputs and initial states packed into it, the running states' order, the outputs
unpacked from it, the finite check of ``dh`` at the real steps.

Each is one compiled call, so that a call with lengths costs few more Python steps than one
without: at the TMVA tutorial's size (B 100, T 10, H 10) the layout's tables, the packing and the
states' reordering, as NumPy and several compiled calls, took about 0.15 ms of a 0.6 ms training
step (docs/performance.md, "Ragged batches"). The loops' helpers that read the layout are in
bptt.kernels.fast.packed, compiled into the cells' kernels; this module is compiled into none,
so a change here recompiles nothing else.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .common import _JIT, _exponent_bits

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "21f13d8f3521d26e"


@nb.njit(**_JIT)
def packed_layout(L, split, T, reverse, rounding, product_rounding, k_multiple):
    """The tables of the packed layout (bptt.functional._packed) of sequences of lengths ``L (B,)``
    (int64, the caller's order, 1 ≤ L ≤ T), over one part of the batch (``split`` 0) or two (the
    first ``split`` columns, then the rest). Returns, as a tuple:

    * ``order (B,)``: the caller's sequence in each running column: by length, longest first,
      ties in the caller's order; with two parts, dealt to them alternately while both have room;
    * ``parts``: the first running column of each part, and B;
    * ``n (T, P)``: the running columns of each step and part; ``width (T + 1, P)``: each block's
      columns, those running at the step before rounded up to ``rounding``; ``off (T + 2, P)``:
      each block's first column (part 0's blocks 0 … T − 1, part 1's, then the blocks T of the
      final states, row T + 1 the end: ``off[T, 0]`` is where the steps end); ``pw (T, P)``: a
      step's product columns, the running ones rounded up to ``product_rounding`` (a divisor of
      ``rounding``) within the block;
    * ``rows (K,)``: the caller's flat row ``b·T + t`` of each column of blocks 0 … T − 1 (−1 past
      the running ones and up to K, ``off[T, 0]`` rounded up to ``k_multiple``);
    * ``finals (B,)``: the column of each running sequence's final state;
    * ``src_x``, ``src_h``, ``dst`` (one per real step, ``dst`` ascending): the caller's step
      ``dst = t·B + b`` is in packed column ``src_x`` of the per-step arrays and ``src_h`` of the
      states' (block s + 1), as :func:`unpack_real` reads them.

    ``reverse``: sequence b's processing step s reads the caller's step ``L[b] − 1 − s``."""
    B = L.size
    ranked = np.argsort(-L, kind="mergesort")  # stable: ties in the caller's order
    order = np.empty(B, np.int64)
    if split == 0:
        order[:] = ranked
        parts = np.array([0, B], np.int64)
    else:
        first = min(split, B - split)
        k = 0
        for i in range(0, 2 * first, 2):  # part 0: every other of the longest 2·first
            order[k] = ranked[i]
            k += 1
        if split > first:  # the rest to the part with room
            for i in range(2 * first, B):
                order[k] = ranked[i]
                k += 1
        for i in range(1, 2 * first, 2):
            order[k] = ranked[i]
            k += 1
        if split <= first:
            for i in range(2 * first, B):
                order[k] = ranked[i]
                k += 1
        parts = np.array([0, split, B], np.int64)
    P = parts.size - 1
    sorted_lengths = np.empty(B, np.int64)
    for k in range(B):
        sorted_lengths[k] = L[order[k]]
    n = np.empty((T, P), np.int64)
    width = np.empty((T + 1, P), np.int64)
    off = np.zeros((T + 2, P), np.int64)
    pw = np.empty((T, P), np.int64)
    for p in range(P):
        c0, c1 = parts[p], parts[p + 1]
        k = c1 - c0
        for s in range(T):  # the running columns only shrink: count down from the step before's
            while k > 0 and sorted_lengths[c0 + k - 1] <= s:
                k -= 1
            n[s, p] = k
    col = 0
    for p in range(P):  # each part's step blocks in one run of columns: the threads' never interleave
        for s in range(T):
            prev = parts[p + 1] - parts[p] if s == 0 else n[s - 1, p]
            w = -(-prev // rounding) * rounding
            width[s, p] = w
            off[s, p] = col
            pw[s, p] = min(w, -(-n[s, p] // product_rounding) * product_rounding)
            col += w
    for p in range(P):  # then the final states' blocks T: columns [0, off[T, 0]) are the steps'
        w = -(-n[T - 1, p] // rounding) * rounding
        width[T, p] = w
        off[T, p] = col
        col += w
    off[T + 1, 0] = col
    K = -(-off[T, 0] // k_multiple) * k_multiple
    rows = np.full(K, -1, np.int64)
    finals = np.empty(B, np.int64)
    where = np.empty(B, np.int64)  # the running column of each caller's sequence
    for p in range(P):
        for r in range(parts[p + 1] - parts[p]):
            k = parts[p] + r
            b, Lk = order[k], sorted_lengths[k]
            where[b] = k
            finals[k] = off[Lk, p] + r
            for s in range(Lk):
                t = Lk - 1 - s if reverse else s
                rows[off[s, p] + r] = b * T + t
    real = 0
    for b in range(B):
        real += L[b]
    src_x = np.empty(real, np.int64)
    src_h = np.empty(real, np.int64)
    dst = np.empty(real, np.int64)
    i = 0
    for t in range(T):  # the caller's steps in their order: dst ascending
        for b in range(B):
            Lb = L[b]
            if t < Lb:
                k = where[b]
                p = 1 if P == 2 and k >= parts[1] else 0
                r = k - parts[p]
                s = Lb - 1 - t if reverse else t
                src_x[i] = off[s, p] + r
                src_h[i] = off[s + 1, p] + r
                dst[i] = t * B + b
                i += 1
    return order, parts, n, width, off, pw, rows, finals, src_x, src_h, dst


@nb.njit(**_JIT)
def pack_inputs(x2, rows, s0, order, out, n, width, off, parts):
    """The caller's inputs ``x2 (B·T, I)`` (rows ``b·T + t``) and initial states ``s0 (B, H)`` into
    the stacked packed ``out (I + H, N)``: x_s of the running sequences in each column ``i <
    len(rows)`` of rows ``[0, I)`` (0 where ``rows[i]`` < 0), s0 as :func:`pack_states` in rows
    ``[I, I + H)``. The inputs in blocks of 16 features, as bptt.kernels.fast.to_feature_major,
    the last ``I mod 16`` in one more pass."""
    F = x2.shape[1]
    F16 = F - F % 16
    for j0 in range(0, F16, 16):
        for i in range(rows.size):
            row = rows[i]
            if row >= 0:
                for r in range(16):
                    out[j0 + r, i] = x2[row, j0 + r]
            else:
                for r in range(16):
                    out[j0 + r, i] = 0
    if F16 < F:
        for i in range(rows.size):
            row = rows[i]
            if row >= 0:
                for j in range(F16, F):
                    out[j, i] = x2[row, j]
            else:
                for j in range(F16, F):
                    out[j, i] = 0
    pack_states(s0, order, out, F, n, width, off, parts)


@nb.njit(**_JIT)
def pack_states(s0, order, out, r0, n, width, off, parts):
    """Initial states ``s0 (B, H)`` (the caller's order) into block 0 of the rows ``[r0, r0 + H)``
    of a packed array, in the running order ``order``, and zeros in those rows of every block past
    the columns the step before writes (the rounding of a block's width) and past the last block."""
    H = s0.shape[1]
    T = n.shape[0]
    for p in range(parts.size - 1):
        o = off[0, p]
        for i in range(parts[p + 1] - parts[p]):
            b = order[parts[p] + i]
            for j in range(H):
                out[r0 + j, o + i] = s0[b, j]
        for s in range(T + 1):
            c0 = off[s, p] + (parts[p + 1] - parts[p] if s == 0 else n[s - 1, p])
            for j in range(r0, r0 + H):
                for c in range(c0, off[s, p] + width[s, p]):
                    out[j, c] = 0
    for j in range(r0, r0 + H):  # past the blocks (bptt.functional._packed.K)
        for c in range(off[T + 1, 0], out.shape[1]):
            out[j, c] = 0


@nb.njit(**_JIT)
def to_running(a, order, out):
    """A caller's ``a (B, H)`` as the running ``out (H, Bp)``: ``out[j, k] = a[order[k], j]`` for
    k < B, zeros in the columns past B."""
    B = order.size
    for k in range(B):
        b = order[k]
        for j in range(a.shape[1]):
            out[j, k] = a[b, j]
    for j in range(out.shape[0]):
        for k in range(B, out.shape[1]):
            out[j, k] = 0


@nb.njit(**_JIT)
def from_running(a, order, out):
    """A running ``a (H, ≥ B)`` as the caller's ``out (B, H)``: ``out[order[k], j] = a[j, k]``."""
    for k in range(order.size):
        b = order[k]
        for j in range(a.shape[0]):
            out[b, j] = a[j, k]


@nb.njit(**_JIT)
def unpack_real(a, r0, src, dst, out, j0, j1):
    """Rows ``[j0, j1)`` of ``out (F, T·B)``: zeros, then ``out[j, dst[k]] = a[r0 + j, src[k]]``
    for the real steps (:func:`packed_layout`'s pairs): a packed array back into the caller's
    order, feature-major (its batch-major view is the caller's ``(B, T, F)``), zeros at the padded
    steps. Zeroing a row and writing its real steps (31.5 % of them on the ragged row) took 0.25 ms
    for an LSTM's h where a pass choosing between a zero and a value for every step took 0.31
    (docs/performance.md, "Ragged batches"); two threads take half the rows each."""
    for j in range(j0, j1):
        row = out[j]
        for i in range(row.size):
            row[i] = 0
        for k in range(src.size):
            row[dst[k]] = a[r0 + j, src[k]]


@nb.njit(**_JIT)
def rows_finite(a, rows):
    """Whether the rows ``a[rows[i]]`` (``rows[i]`` ≥ 0) of a C-contiguous 2-D float32 or float64
    array hold no NaN and no Inf, by the exponent test of bptt.kernels.fast.common.all_finite: the
    caller's ``dh`` as ``(B·T, H)`` rows checked at the real steps only (a packed backward reads no
    other)."""
    u, field = _exponent_bits(a)
    F = a.shape[1]
    found = False
    for i in range(rows.size):
        r = rows[i]
        if r >= 0:
            base = r * F
            for j in range(F):
                found |= (u[base + j] & field) == field
    return not found
