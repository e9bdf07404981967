"""What the cells' loops over the packed layout of calls with ``lengths=`` share
(bptt.functional._packed; its tables, and the inputs and outputs into and out of it, are
bptt.kernels.fast.packing's).

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

from .common import _INLINE, _columns

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
