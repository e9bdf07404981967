"""The simple RNN's fused kernels: the step pair (forward and backward, the stages (1)–(2) of
bptt.kernels.reference.rnn) and the loop drivers. Layout and drivers: see bptt.kernels.fast.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..sync import publish, wait_for
from .common import (_INLINE, _JIT, _add_step, _columns, _product, _product_at, _product_packed, _product_packed_at,
                     _step_slot, sigmoid_, tanh_)
from .packed import _enter_step, _zero_block

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "d54539173707ca14"


# ─────────────────────────────────────────────────────────────────────── step kernels


@nb.njit(**_INLINE)
def rnn_cell_forward_at(a, ab, bias, code, h, hb, j0, j1, n0, n1):
    """(2) h_t = act(a_t) for the hidden units ``[j0, j1)`` over the columns ``[n0, n1)`` of 2-D
    arrays: ``a`` (from column ``ab``) holds a_t − b = x_t W + h_{t-1} U, h_t is written from
    column ``hb`` of h."""
    u0, u1 = _columns(n0, n1)
    ab, hb = np.uint64(ab), np.uint64(hb)
    for j in range(j0, j1):
        bj = bias[j]
        if code == 0:
            for b in range(u0, u1):
                h[j, hb + b] = tanh_(a[j, ab + b] + bj)
        elif code == 1:
            for b in range(u0, u1):
                y = a[j, ab + b] + bj
                h[j, hb + b] = max(y, y * 0)
        elif code == 2:
            for b in range(u0, u1):
                h[j, hb + b] = sigmoid_(a[j, ab + b] + bj)
        else:
            for b in range(u0, u1):
                h[j, hb + b] = a[j, ab + b] + bj


@nb.njit(**_INLINE)
def rnn_cell_forward(a, ta, bias, code, h, t, j0, j1, b0, b1):
    """(2) h_t = act(a_t) for the hidden units ``[j0, j1)``, written to slot t + 1 of h: ``a[:, ta]``
    holds a_t − b = x_t W + h_{t-1} U."""
    u0, u1 = _columns(b0, b1)
    for j in range(j0, j1):
        bj = bias[j]
        if code == 0:
            for b in range(u0, u1):
                h[j, t + 1, b] = tanh_(a[j, ta, b] + bj)
        elif code == 1:
            for b in range(u0, u1):
                y = a[j, ta, b] + bj
                h[j, t + 1, b] = max(y, y * 0)
        elif code == 2:
            for b in range(u0, u1):
                h[j, t + 1, b] = sigmoid_(a[j, ta, b] + bj)
        else:
            for b in range(u0, u1):
                h[j, t + 1, b] = a[j, ta, b] + bj


@nb.njit(**_INLINE)
def rnn_cell_backward_at(dh_rec, rb, h, hb, code, dz, zb, n0, n1):
    """(2) backward: dz_t = dh_t ⊙ act′ (into ``dz`` from column ``zb``), written through the output
    h_t (from column ``hb`` of h); ``dh_rec`` from column ``rb``; columns ``[n0, n1)``."""
    u0, u1 = _columns(n0, n1)
    rb, hb, zb = np.uint64(rb), np.uint64(hb), np.uint64(zb)
    H = dh_rec.shape[0]
    for j in range(H):
        if code == 0:
            for b in range(u0, u1):
                y = h[j, hb + b]
                dz[j, zb + b] = dh_rec[j, rb + b] * (1 - y * y)
        elif code == 1:
            for b in range(u0, u1):
                dz[j, zb + b] = dh_rec[j, rb + b] if h[j, hb + b] > 0 else dh_rec[j, rb + b] * 0
        elif code == 2:
            for b in range(u0, u1):
                y = h[j, hb + b]
                dz[j, zb + b] = dh_rec[j, rb + b] * y * (1 - y)
        else:
            for b in range(u0, u1):
                dz[j, zb + b] = dh_rec[j, rb + b]


@nb.njit(**_INLINE)
def rnn_cell_backward(dh_rec, h, t, code, dz, b0, b1):
    """(2) backward: dz_t = dh_t ⊙ act′, written through the output h_t (slot t + 1)."""
    u0, u1 = _columns(b0, b1)
    H, B = dh_rec.shape
    for j in range(H):
        if code == 0:
            for b in range(u0, u1):
                y = h[j, t + 1, b]
                dz[j, t, b] = dh_rec[j, b] * (1 - y * y)
        elif code == 1:
            for b in range(u0, u1):
                dz[j, t, b] = dh_rec[j, b] if h[j, t + 1, b] > 0 else dh_rec[j, b] * 0
        elif code == 2:
            for b in range(u0, u1):
                y = h[j, t + 1, b]
                dz[j, t, b] = dh_rec[j, b] * y * (1 - y)
        else:
            for b in range(u0, u1):
                dz[j, t, b] = dh_rec[j, b]


# ─────────────────────────────────────────────────────────────────────── loop drivers


@nb.njit(**_JIT)
def rnn_forward_loop(blas, own, A, k0, xh, a, bias, code, h, b0, b1):
    """The whole forward loop, as :func:`.lstm.lstm_forward_loop`: step t's product (1),
    ``A @ xh[k0:, t]``, goes into the step's slot of ``a``: one ``(H, 1, B)`` slot when it takes
    the inputs too (``k0`` 0), else ``a (H, T, B)`` holds x W of all steps (``k0`` I, A = Uᵀ)."""
    H = h.shape[0]
    for t in range(h.shape[1] - 1):
        ta = _step_slot(a, h, t)
        _product(blas, own, A, 0, 0, H, A.shape[1], xh, k0, t, a, 0, ta, 1.0 if k0 else 0.0, b0, b1)
        rnn_cell_forward(a, ta, bias, code, h, t, 0, H, b0, b1)


@nb.njit(**_JIT)
def rnn_backward_loop(blas, own, dh, use_dh, U, Up, h, code, dh_rec, dz, b0, b1):
    """The whole backward loop; ``dh_rec`` holds the final state's gradient on entry, dh0 on exit."""
    H, B = dh_rec.shape
    dh_rec3 = dh_rec.reshape((H, 1, B))
    for t in range(h.shape[1] - 2, -1, -1):
        if use_dh:
            _add_step(dh_rec, dh, t, b0, b1)
        rnn_cell_backward(dh_rec, h, t, code, dz, b0, b1)
        _product_packed(blas, own, U, Up, 0, 0, H, H, dz, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)


@nb.njit(**_JIT)
def rnn_forward_packed(blas, own, A, k0, xh, h, a, per_step, bias, code, n, off, pw, parts, p):
    """The forward loop of part p over the packed layout (bptt.kernels.fast.packed), as
    :func:`rnn_forward_loop` with 2-D arrays: ``xh (I + H, N)``, ``h`` its state rows; ``a``
    ``(H, N)`` (``per_step``: the input projection of all steps, ``k0`` I) or the part's columns
    of a running ``(H, B)`` slot."""
    H = h.shape[0]
    rb = parts[p]
    for s in range(n.shape[0]):
        m = n[s, p]
        if m == 0:
            break
        o, o1 = off[s, p], off[s + 1, p]
        ab = o if per_step else rb
        _product_at(blas, own, A, 0, 0, H, A.shape[1], xh, k0, o, a, 0, ab, 1.0 if k0 else 0.0, pw[s, p])
        rnn_cell_forward_at(a, ab, bias, code, h, o1, 0, H, 0, m)


@nb.njit(**_JIT)
def rnn_backward_packed(blas, own, dh, rows, use_dh, U, Up, h, code, dh_rec, dh_fin, dz, n, width, off, pw, parts, p):
    """The backward loop of part p over the packed layout (:func:`rnn_forward_packed`), as
    :func:`.lstm.lstm_backward_packed`."""
    H, B = dh_rec.shape
    rb = parts[p]
    started = 0
    for s in range(n.shape[0] - 1, -1, -1):
        m, o = n[s, p], off[s, p]
        _zero_block(dz, 0, H, o + m, o + width[s, p])
        if m == 0:  # a block of final states only
            continue
        started = _enter_step(dh_rec, dh_fin, rb, started, m, use_dh, dh, rows, o)
        rnn_cell_backward_at(dh_rec, rb, h, off[s + 1, p], code, dz, o, 0, m)
        _product_packed_at(blas, own, U, Up, 0, 0, H, H, dz, 0, o, dh_rec, 0, rb, 0.0, pw[s, p])


@nb.njit(**_JIT)
def rnn_forward_loop_units(blas, own, A, xh, a, bias, code, h, flags, p, j0, j1):
    """:func:`rnn_forward_loop` with the product over ``[x_t; h_{t-1}]`` (``k0`` 0) as thread ``p``
    of two that split the hidden units, as :func:`.lstm.lstm_inference_loop_units` does."""
    B = h.shape[2]
    for t in range(h.shape[1] - 1):
        wait_for(flags, 1 - p, t)
        _product(blas, own, A, j0, 0, j1 - j0, A.shape[1], xh, 0, t, a, j0, 0, 0.0, 0, B)
        rnn_cell_forward(a, 0, bias, code, h, t, j0, j1, 0, B)
        publish(flags, p, t + 1)


# ────────────────────────────────────────────────────────── steps for the Python loop
# One step over the whole batch each: bptt.functional's loop with one np.matmul per step, where
# no BLAS symbol can be called from compiled code.


@nb.njit(**_JIT)
def rnn_step_forward(a, ta, bias, code, h, t):
    rnn_cell_forward(a, ta, bias, code, h, t, 0, h.shape[0], 0, h.shape[2])


@nb.njit(**_JIT)
def rnn_step_backward(dh, t, use_dh, dh_rec, h, code, dz):
    if use_dh:
        _add_step(dh_rec, dh, t, 0, dh_rec.shape[1])
    rnn_cell_backward(dh_rec, h, t, code, dz, 0, dh_rec.shape[1])
