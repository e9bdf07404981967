"""The packed layout of calls with ``lengths=`` (bptt.functional._packed): its tables, the
inputs into it, the outputs out of it, and what the cells' packed loop drivers share.

With ``lengths=`` the fast loops run over the *packed* layout of bptt.functional._packed (as
cuDNN's and PyTorch's packed sequences): the sequences sorted by length, longest first, within
each part of the batch a thread takes, and each step's running columns stored one block after
another, ``(features, N)`` in all. Block s of part p starts at column ``off[s, p]`` and is
``width[s, p]`` columns wide; its first ``n[s, p]`` columns are the sequences running at step s,
whose inputs x_s and states h_{s-1} (c_{s-1}) it holds, and the per-step arrays (gates, dz)
have the same blocks; step s writes h_s into block s + 1. The running arrays ``(·, B)`` (dh,
dc carried back, workspaces) hold part p's sequences from column ``parts[p]``. The products of
step s run over ``pw[s, p]`` columns of the block (the running ones rounded up to the
micro-kernel's tile, within the block), the cells over the running ones: no work on padded
steps at all, and the weight gradients are one product over the ``N_x`` columns of blocks
0 … T − 1, padded steps absent (bar the columns of each block past its running ones, whose
deltas the backward loops set to zero).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .common import _INLINE, _JIT, _columns, _exponent_bits

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "21f13d8f3521d26e"


@nb.njit(**_INLINE)
def _zero_block(a, r0, r1, c0, c1):
    """``a[r, c] = 0`` for the rows ``[r0, r1)`` and the columns ``[c0, c1)`` of a 2-D array."""
    u0, u1 = _columns(c0, c1)
    for r in range(r0, r1):
        for b in range(u0, u1):
            a[r, b] = 0


@nb.njit(**_INLINE)
def _copy_block(dst, src, c0, c1):
    """``dst[:, c] = src[:, c]`` for the columns ``[c0, c1)`` (2-D arrays): the final-state
    gradients of the sequences whose last real step the backward loop has reached."""
    u0, u1 = _columns(c0, c1)
    for r in range(dst.shape[0]):
        for b in range(u0, u1):
            dst[r, b] = src[r, b]


@nb.njit(**_INLINE)
def _add_rows(acc, ab, dh, rows, rb, n):
    """``acc[j, ab + i] += dh[rows[rb + i], j]`` for i < n: the loss gradients of a block's running
    columns read from the caller's ``dh`` as ``(B·T, H)`` rows (``rows``: the caller's row of each
    packed column, bptt.functional._packed), in blocks of 16 rows of acc as :func:`_add_step`."""
    H = acc.shape[0]
    H16 = H - H % 16
    ab = np.uint64(ab)
    u0, u1 = _columns(0, n)
    for j0 in range(0, H16, 16):
        for i in range(u0, u1):
            row = rows[rb + i]
            for r in range(16):
                acc[j0 + r, ab + i] += dh[row, j0 + r]
    for j in range(H16, H):
        for i in range(u0, u1):
            acc[j, ab + i] += dh[rows[rb + i], j]


@nb.njit(**_INLINE)
def _enter_step(dh_rec, dh_fin, rb, started, m, use_dh, dh, rows, o):
    """The start of a packed backward step of m running columns (block at column ``o``, the part's
    running columns from ``rb``): the final state's gradient ``dh_fin`` enters the columns whose
    sequences' last real step this is (those past the ``started`` ones), and the loss's gradients
    of the step join ``dh_rec`` (:func:`_add_rows`). Returns the columns started."""
    if m > started:
        _copy_block(dh_rec, dh_fin, rb + started, rb + m)
    if use_dh:
        _add_rows(dh_rec, rb, dh, rows, o, m)
    return max(started, m)


@nb.njit(**_JIT)
def pack_columns(a, rows, out, r0):
    """``out[r0 + j, i] = a[rows[i], j]`` for every column i < len(rows) (0 where ``rows[i]`` < 0):
    the caller's inputs, ``(B·T, F)`` rows, into the packed layout (bptt.functional._packed). In
    blocks of 16 features as :func:`to_feature_major`, the last ``F mod 16`` in one more."""
    F = a.shape[1]
    F16 = F - F % 16
    for j0 in range(0, F16, 16):
        for i in range(rows.size):
            row = rows[i]
            if row >= 0:
                for r in range(16):
                    out[r0 + j0 + r, i] = a[row, j0 + r]
            else:
                for r in range(16):
                    out[r0 + j0 + r, i] = 0
    if F16 < F:  # the last F mod 16 features in one pass too
        for i in range(rows.size):
            row = rows[i]
            if row >= 0:
                for j in range(F16, F):
                    out[r0 + j, i] = a[row, j]
            else:
                for j in range(F16, F):
                    out[r0 + j, i] = 0


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


@nb.njit(**_JIT)
def pack_states(s0, out, r0, n, width, off, parts):
    """Initial states ``s0 (H, B)`` (running columns, the processing order) into block 0 of the
    rows ``[r0, r0 + H)`` of a packed array, and zeros in those rows of every block past the
    columns the step before writes (the rounding of a block's width) and past the last block."""
    H = s0.shape[0]
    for p in range(parts.size - 1):
        size = parts[p + 1] - parts[p]
        o = off[0, p]
        for j in range(H):
            for i in range(size):
                out[r0 + j, o + i] = s0[j, parts[p] + i]
        _zero_block(out, r0, r0 + H, o + size, o + width[0, p])
        for s in range(1, n.shape[0] + 1):
            _zero_block(out, r0, r0 + H, off[s, p] + n[s - 1, p], off[s, p] + width[s, p])
    _zero_block(out, r0, r0 + H, off[n.shape[0] + 1, 0], out.shape[1])  # past the blocks (bptt.functional._packed.K)


@nb.njit(**_JIT)
def real_columns(cols, src, dst):
    """The real steps of a ``cols`` table of :func:`packed_layout` (the packed column of the
    caller's step ``i = t·B + b``, −1 for padded steps) as pairs ``(src[k], dst[k])``: column
    ``src[k]`` holds the caller's step ``dst[k]``, dst ascending. Returns their number."""
    k = 0
    for i in range(cols.size):
        c = cols[i]
        if c >= 0:
            src[k] = c
            dst[k] = i
            k += 1
    return k


@nb.njit(**_JIT)
def unpack_real(a, r0, src, dst, out, j0, j1):
    """Rows ``[j0, j1)`` of ``out (F, T·B)``: zeros, then ``out[j, dst[k]] = a[r0 + j, src[k]]``
    for the real steps of :func:`real_columns`: a packed array back into the caller's order,
    feature-major (its batch-major view is the caller's ``(B, T, F)``), zeros at the padded steps.
    Zeroing a row and writing its real steps (31.5 % of them on the ragged row) took 0.25 ms for
    an LSTM's h where a pass choosing between a zero and a value for every step took 0.31
    (docs/performance.md, "Ragged batches"); two threads take half the rows each."""
    for j in range(j0, j1):
        row = out[j]
        for i in range(row.size):
            row[i] = 0
        for k in range(src.size):
            row[dst[k]] = a[r0 + j, src[k]]


@nb.njit(**_JIT)
def packed_layout(sorted_lengths, parts, T, reverse, rounding, product_rounding, order, rows, cols_x, cols_h, finals,
                  n, width, off, pw):
    """The tables of the packed layout (bptt.functional._packed) of sequences already in their
    processing order (``sorted_lengths (B,)``, longest first within each part ``[parts[p],
    parts[p + 1])``; ``order``: the caller's sequence in each column): for each step s and part p
    the running columns ``n[s, p]``, the block ``width[s, p]`` and its first column ``off[s, p]``
    (``off`` has T + 2 rows: block T holds the final states, row T + 1 the end), the product's
    columns ``pw[s, p]``; ``rows (N_x,)`` the caller's flat row ``b·T + t`` of each column of blocks
    0 … T − 1 (−1 past the running ones); ``cols_x``, ``cols_h (T·B,)`` the packed column of the
    caller's step t of sequence b (index ``t·B + b``) in the per-step layout and in the states'
    (block s + 1), −1 for padded steps; ``finals (B,)`` the column of each sequence's final state.
    Block widths are the running columns of the step before rounded up to ``rounding``; the
    products' to ``product_rounding`` (a divisor of ``rounding``). Columns: part 0's blocks
    0 … T − 1, part 1's, then the blocks T of both (so ``off[T, 0]`` is where the steps end)."""
    P = parts.size - 1
    B = sorted_lengths.size
    for p in range(P):
        c0, c1 = parts[p], parts[p + 1]
        for s in range(T):
            k = 0
            while c0 + k < c1 and sorted_lengths[c0 + k] > s:
                k += 1
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
    rows[:] = -1
    cols_x[:] = -1
    cols_h[:] = -1
    for p in range(P):
        for r in range(parts[p + 1] - parts[p]):
            k = parts[p] + r
            b, L = order[k], sorted_lengths[k]
            finals[k] = off[L, p] + r
            for s in range(L):
                t = L - 1 - s if reverse else s
                rows[off[s, p] + r] = b * T + t
                cols_x[t * B + b] = off[s, p] + r
                cols_h[t * B + b] = off[s + 1, p] + r
