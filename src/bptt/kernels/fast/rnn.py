"""The simple RNN's fused kernels: the step pair (forward and backward, the stages (1)–(2) of
bptt.kernels.reference.rnn) and the loop drivers. Layout and drivers: see bptt.kernels.fast.
"""

from __future__ import annotations

import numba as nb

from ..sync import publish, wait_for
from .common import (_INLINE, _JIT, _add_step, _columns, _copy_columns, _part, _product, _product_packed, _step_slot,
                     _zero_columns, sigmoid_, tanh_)

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "a4aeff12211a2aa5"


# ─────────────────────────────────────────────────────────────────────── step kernels


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
def rnn_forward_loop(blas, own, A, k0, xh, a, bias, code, h, ends, b0, b1):
    """The whole forward loop, as :func:`.lstm.lstm_forward_loop`: step t's product (1),
    ``A @ xh[k0:, t]``, goes into the step's slot of ``a``: one ``(H, 1, B)`` slot when it takes
    the inputs too (``k0`` 0), else ``a (H, T, B)`` holds x W of all steps (``k0`` I, A = Uᵀ).
    ``ends``: the running sequences' columns per step (bptt.kernels.fast.common, "variable
    lengths"); a padded step's slots of h are zeros."""
    H = h.shape[0]
    q = _part(b0)
    for t in range(h.shape[1] - 1):
        ce, pe = ends[t, q], ends[t, q + 1]
        ta = _step_slot(a, h, t)
        if pe > b0:
            _product(blas, own, A, 0, 0, H, A.shape[1], xh, k0, t, a, 0, ta, 1.0 if k0 else 0.0, b0, pe)
        rnn_cell_forward(a, ta, bias, code, h, t, 0, H, b0, ce)
        if ce < b1:
            _zero_columns(h, 0, H, t + 1, max(ce, b0), b1)


@nb.njit(**_JIT)
def rnn_backward_loop(blas, own, dh, use_dh, U, Up, h, code, dh_rec, dh_fin, dz, ends, b0, b1):
    """The whole backward loop; ``dh_rec`` holds dh0 on exit, ``dh_fin`` the final state's
    gradient, entering each column at its sequence's last real step (as
    :func:`.lstm.lstm_backward_loop`). A padded step's slots of dz are zeros."""
    H, B = dh_rec.shape
    dh_rec3 = dh_rec.reshape((H, 1, B))
    q = _part(b0)
    started = b0
    for t in range(h.shape[1] - 2, -1, -1):
        ce, pe = ends[t, q], ends[t, q + 1]
        if ce > started:
            _copy_columns(dh_rec, dh_fin, started, ce)
            started = ce
        if use_dh:
            _add_step(dh_rec, dh, t, b0, ce)
        rnn_cell_backward(dh_rec, h, t, code, dz, b0, ce)
        if ce < b1:
            _zero_columns(dz, 0, H, t, max(ce, b0), b1)
        if pe > b0:
            _product_packed(blas, own, U, Up, 0, 0, H, H, dz, 0, t, dh_rec3, 0, 0, 0.0, b0, pe)


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
