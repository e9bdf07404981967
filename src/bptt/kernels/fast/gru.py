"""The GRU's fused kernels: the step kernels (forward and backward, the stages (1)–(3) of
bptt.kernels.reference.gru in the same order; reset-before splits each in two around its second
product) and the loop drivers. Layout and drivers: see bptt.kernels.fast.
"""

from __future__ import annotations

import numba as nb

from ..sync import publish, wait_for
from .common import (_INLINE, _JIT, _add_step, _columns, _copy_columns, _dx_step, _dz_array, _part, _product,
                     _product_packed, _step_slot, _zero_columns, sigmoid_, tanh_)

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "a4aeff12211a2aa5"


# ─────────────────────────────────────────────────────────────────────── step kernels


@nb.njit(**_INLINE)
def _gru_rz(gates, tg, hu, rz_in_gates, bx, bu, j, H, u0, u1):
    """(1) r = σ(a_r), u = σ(a_z) of unit j into ``gates[:2H, tg]``, which holds x_t W_rz, and
    ``hu`` h_{t-1} U_rz, or (``rz_in_gates``) the two already summed."""
    br, bz = bx[j] + bu[j], bx[H + j] + bu[H + j]
    if rz_in_gates:
        for b in range(u0, u1):
            gates[j, tg, b] = sigmoid_(gates[j, tg, b] + br)
        for b in range(u0, u1):
            gates[H + j, tg, b] = sigmoid_(gates[H + j, tg, b] + bz)
    else:
        for b in range(u0, u1):
            gates[j, tg, b] = sigmoid_(gates[j, tg, b] + hu[j, b] + br)
        for b in range(u0, u1):
            gates[H + j, tg, b] = sigmoid_(gates[H + j, tg, b] + hu[H + j, b] + bz)


@nb.njit(**_INLINE)
def gru_cell_forward_after(gates, tg, hu, rz_in_gates, bx, bu, aux, ta, h, t, j0, j1, b0, b1):
    """One GRU step for the hidden units ``[j0, j1)``, reset after the recurrent product:
    ``gates[:, tg]`` holds x_t W (the r and z blocks summed with h_{t-1} U_rz when
    ``rz_in_gates``), ``hu`` h_{t-1} U (its n block at least).

        (1) r = σ(xw_r + b_r + hu_r + bu_r)   u = σ(xw_z + b_z + hu_z + bu_z)
        (2) n = tanh(xw_n + b_n + r ⊙ (hu_n + bu_n))      aux[:, ta] keeps hu_n + bu_n
        (3) h_t = n + u ⊙ (h_{t-1} − n)
    """
    u0, u1 = _columns(b0, b1)
    H, B = h.shape[0], h.shape[2]
    for j in range(j0, j1):
        _gru_rz(gates, tg, hu, rz_in_gates, bx, bu, j, H, u0, u1)  # (1)
        bn, bun = bx[2 * H + j], bu[2 * H + j]
        for b in range(u0, u1):  # (2)
            aux[j, ta, b] = hu[2 * H + j, b] + bun
        for b in range(u0, u1):
            gates[2 * H + j, tg, b] = tanh_(gates[2 * H + j, tg, b] + bn + gates[j, tg, b] * aux[j, ta, b])
        for b in range(u0, u1):  # (3)
            n = gates[2 * H + j, tg, b]
            h[j, t + 1, b] = n + gates[H + j, tg, b] * (h[j, t, b] - n)


@nb.njit(**_INLINE)
def gru_cell_forward_before_rz(gates, tg, hu, rz_in_gates, bx, bu, aux, h, t, b0, b1):
    """Reset-before GRU, first half: r, u as in :func:`gru_cell_forward_after`; aux[:, t] = r ⊙ h_{t-1}."""
    u0, u1 = _columns(b0, b1)
    H, B = h.shape[0], h.shape[2]
    for j in range(H):
        _gru_rz(gates, tg, hu, rz_in_gates, bx, bu, j, H, u0, u1)
        for b in range(u0, u1):
            aux[j, t, b] = gates[j, tg, b] * h[j, t, b]


@nb.njit(**_INLINE)
def gru_cell_forward_before_n(gates, tg, hu, bx, bu, h, t, b0, b1):
    """Reset-before GRU, second half: n = tanh(xw_n + b_n + (r ⊙ h) U_n + bu_n), the product in hu[2H:]."""
    u0, u1 = _columns(b0, b1)
    H, B = h.shape[0], h.shape[2]
    for j in range(H):
        bn = bx[2 * H + j] + bu[2 * H + j]
        for b in range(u0, u1):
            gates[2 * H + j, tg, b] = tanh_(gates[2 * H + j, tg, b] + hu[2 * H + j, b] + bn)
        for b in range(u0, u1):
            n = gates[2 * H + j, tg, b]
            h[j, t + 1, b] = n + gates[H + j, tg, b] * (h[j, t, b] - n)


@nb.njit(**_INLINE)
def gru_cell_backward(dh_rec, gates, t, aux, h, reset_after, dz, dhu, dh_prev, row, b0, b1):
    """Backward of one GRU step, stages (3), (2), (1) in reverse; ``dh_rec`` is the total dL/dh_t.

    Writes ``dz[:, t]`` (dL/d[a_r, a_z, a_n]; for reset-before the r block is finished by
    :func:`gru_cell_backward_before_r`), for reset_after also ``dhu[:, t]``, the n block of
    dL/d(h U + b_u), ``da_n ⊙ r`` (its r and z blocks are dz's), and ``dh_prev`` = the direct
    part u ⊙ dh of dL/dh_{t-1}. ``dz`` None: written over the gate values, as
    :func:`.lstm.lstm_cell_backward` does (no gate value is read after its gradient is written).
    ``row``: a scratch row of B values.
    """
    out = _dz_array(dz, gates)
    u0, u1 = _columns(b0, b1)
    H, B = dh_rec.shape
    for j in range(H):
        # (3) h_t = n + u ⊙ (h_{t-1} − n), then (2) n = tanh(a_n)
        for b in range(u0, u1):
            dh_prev[j, b] = dh_rec[j, b] * gates[H + j, t, b]
        for b in range(u0, u1):
            row[b] = gates[H + j, t, b]
        for b in range(u0, u1):
            u = row[b]
            out[H + j, t, b] = dh_rec[j, b] * (h[j, t, b] - gates[2 * H + j, t, b]) * u * (1 - u)
        for b in range(u0, u1):
            n = gates[2 * H + j, t, b]
            out[2 * H + j, t, b] = dh_rec[j, b] * (1 - row[b]) * (1 - n * n)
        if reset_after:  # a_n = xw_n + b_n + r ⊙ aux: dr = da_n ⊙ aux, then (1) r = σ(a_r)
            for b in range(u0, u1):
                dhu[j, t, b] = out[2 * H + j, t, b] * gates[j, t, b]
            for b in range(u0, u1):
                r = gates[j, t, b]
                out[j, t, b] = out[2 * H + j, t, b] * aux[j, t, b] * r * (1 - r)


@nb.njit(**_INLINE)
def gru_cell_backward_before_r(drh, gates, t, h, dz, dh_prev, b0, b1):
    """Reset-before: with d(r ⊙ h) = da_n U_nᵀ in ``drh``, dz_r = d(rh) ⊙ h ⊙ σ′ and dh_prev += d(rh) ⊙ r
    (``dz`` None: over the gate values, as for :func:`gru_cell_backward`)."""
    out = _dz_array(dz, gates)
    u0, u1 = _columns(b0, b1)
    H, B = drh.shape
    for j in range(H):
        for b in range(u0, u1):
            dh_prev[j, b] += drh[j, b] * gates[j, t, b]
        for b in range(u0, u1):
            r = gates[j, t, b]
            out[j, t, b] = drh[j, b] * h[j, t, b] * r * (1 - r)


# ─────────────────────────────────────────────────────────────────────── loop drivers


@nb.njit(**_JIT)
def gru_forward_loop(blas, own, A, k0, xh, gates, bx, bu, reset_after, aux, keep, h, hu, ends, b0, b1):
    """The whole GRU forward loop over ``xh (I + H, T + 1, B)``, the stacked inputs and states
    (``h`` its state rows, h0 in slot 0), as :func:`.lstm.lstm_forward_loop`:

    * ``k0`` 0, ``A = [W; U]ᵀ (3H, I + H)``: the step's products write ``[W; U]_rzᵀ [x_t; h_{t-1}]``
      and ``W_nᵀ x_t`` into the step's slot of ``gates`` (``(3H, T, B)``, or one slot for
      inference), and the n block's ``U_nᵀ h_{t-1}`` (reset-after) into ``hu (3H, B)``;
    * ``k0`` I, ``A = Uᵀ``: ``gates (3H, T, B)`` holds x W of all steps on entry, ``hu`` gets
      ``h_{t-1} U``.

    Without ``keep`` a reset-after ``aux`` is one ``(H, 1, B)`` slot. (Reset-before: the n
    block's product, ``(r ⊙ h_{t-1}) U_n``, waits for r in either form.) ``ends``: the running
    sequences' columns per step (see bptt.kernels.fast.common, "variable lengths"); a padded
    step's slots of h and aux are zeros."""
    H = h.shape[0]
    I = xh.shape[0] - H
    cu = A.shape[1] - H  # the column of A where U's part starts: I, or 0 when A is Uᵀ
    hu3 = hu.reshape((hu.shape[0], 1, hu.shape[1]))
    fused = k0 == 0
    q = _part(b0)
    for t in range(h.shape[1] - 1):
        ce, pe = ends[t, q], ends[t, q + 1]
        tg, ta = _step_slot(gates, h, t), _step_slot(aux, h, t)
        if fused and pe > b0:
            _product(blas, own, A, 0, 0, 2 * H, I + H, xh, 0, t, gates, 0, tg, 0.0, b0, pe)
            _product(blas, own, A, 2 * H, 0, H, I, xh, 0, t, gates, 2 * H, tg, 0.0, b0, pe)
        if reset_after:
            if pe > b0:
                if fused:
                    _product(blas, own, A, 2 * H, cu, H, H, xh, I, t, hu3, 2 * H, 0, 0.0, b0, pe)
                else:
                    _product(blas, own, A, 0, 0, 3 * H, H, xh, I, t, hu3, 0, 0, 0.0, b0, pe)
            gru_cell_forward_after(gates, tg, hu, fused, bx, bu, aux, ta, h, t, 0, H, b0, ce)
        else:
            if not fused and pe > b0:
                _product(blas, own, A, 0, 0, 2 * H, H, xh, I, t, hu3, 0, 0, 0.0, b0, pe)
            gru_cell_forward_before_rz(gates, tg, hu, fused, bx, bu, aux, h, t, b0, ce)
            if ce < b1:  # before the product reads them
                _zero_columns(aux, 0, H, t, max(ce, b0), b1)
            if pe > b0:
                _product(blas, own, A, 2 * H, cu, H, H, aux, 0, t, hu3, 2 * H, 0, 0.0, b0, pe)
            gru_cell_forward_before_n(gates, tg, hu, bx, bu, h, t, b0, ce)
        if ce < b1:
            _zero_columns(h, 0, H, t + 1, max(ce, b0), b1)
            if reset_after and aux.shape[1] == h.shape[1] - 1:
                _zero_columns(aux, 0, H, ta, max(ce, b0), b1)


@nb.njit(**_JIT)
def gru_backward_loop(blas, own, dh, use_dh, U, Up, gates, aux, h, reset_after, dh_rec, dh_fin, dh_prev, drh, dz, dhu,
                      row, Wp, dx, ends, b0, b1):
    """The whole GRU backward loop; ``dh_rec`` holds dh0 on exit, ``dh_fin`` the gradient of the
    final state, which enters each sequence's column at its last real step (as
    :func:`.lstm.lstm_backward_loop`: ``ends``; without lengths it may be ``dh_rec`` itself).
    ``dhu (H, T, B)``: the n block of dL/d(h U + b_u), written only when ``reset_after`` (its r
    and z blocks are dz's, not written twice); otherwise pass any 3-D array.
    ``Wp``, ``dx``: as for :func:`.lstm.lstm_backward_loop`, ``dx_t = W dz_t`` at each step. ``dz``
    None: dz is written over ``gates`` (see :func:`gru_cell_backward`); ``row``: a scratch row of
    B values. A padded step's slots of dz (and dhu) are zeros."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    dh_rec3, drh3 = dh_rec.reshape((H, 1, B)), drh.reshape((H, 1, B))
    q = _part(b0)
    started = b0  # the columns [b0, started) have reached their last real step
    for t in range(gates.shape[1] - 1, -1, -1):
        ce, pe = ends[t, q], ends[t, q + 1]
        if ce > started:
            _copy_columns(dh_rec, dh_fin, started, ce)
            started = ce
        if use_dh:
            _add_step(dh_rec, dh, t, b0, ce)
        gru_cell_backward(dh_rec, gates, t, aux, h, reset_after, dz, dhu, dh_prev, row, b0, ce)
        if ce < b1:
            _zero_columns(out, 0, 3 * H, t, max(ce, b0), b1)
            if reset_after:
                _zero_columns(dhu, 0, H, t, max(ce, b0), b1)
        if reset_after:  # dh_{t-1} = U_rz dz_rz + U_n dhu_n
            if pe > b0:
                _product_packed(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, pe)
                _product_packed(blas, own, U, Up, 0, 2 * H, H, H, dhu, 0, t, dh_rec3, 0, 0, 1.0, b0, pe)
        else:
            if pe > b0:
                _product_packed(blas, own, U, Up, 0, 2 * H, H, H, out, 2 * H, t, drh3, 0, 0, 0.0, b0, pe)
            gru_cell_backward_before_r(drh, gates, t, h, dz, dh_prev, b0, ce)
            if pe > b0:
                _product_packed(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, pe)
        if pe > b0:
            _dx_step(blas, own, Wp, out, t, dx, b0, pe)
        if Wp.shape[0] != 0 and pe < b1:
            _zero_columns(dx, 0, dx.shape[0], t, max(pe, b0), b1)
        u0, u1 = _columns(b0, ce)
        for j in range(H):
            for b in range(u0, u1):
                dh_rec[j, b] += dh_prev[j, b]


@nb.njit(**_JIT)
def gru_forward_loop_units(blas, own, A, xh, gates, bx, bu, aux, h, hu, flags, p, j0, j1):
    """:func:`gru_forward_loop` reset-after with the products over ``[x_t; h_{t-1}]`` (``k0`` 0) as
    thread ``p`` of two that split the hidden units ``[j0, j1)``, as :func:`.lstm.lstm_inference_loop_units`
    does: the rows of its units in the r and z blocks over ``[x_t; h_{t-1}]``, in ``W_nᵀ x_t`` and
    in ``U_nᵀ h_{t-1}``, then its units' cells."""
    H, B = h.shape[0], h.shape[2]
    I = xh.shape[0] - H
    M = j1 - j0
    hu3 = hu.reshape((hu.shape[0], 1, hu.shape[1]))
    for t in range(h.shape[1] - 1):
        tg, ta = _step_slot(gates, h, t), _step_slot(aux, h, t)
        wait_for(flags, 1 - p, t)
        _product(blas, own, A, j0, 0, M, I + H, xh, 0, t, gates, j0, tg, 0.0, 0, B)
        _product(blas, own, A, H + j0, 0, M, I + H, xh, 0, t, gates, H + j0, tg, 0.0, 0, B)
        _product(blas, own, A, 2 * H + j0, 0, M, I, xh, 0, t, gates, 2 * H + j0, tg, 0.0, 0, B)
        _product(blas, own, A, 2 * H + j0, I, M, H, xh, I, t, hu3, 2 * H + j0, 0, 0.0, 0, B)
        gru_cell_forward_after(gates, tg, hu, True, bx, bu, aux, ta, h, t, j0, j1, 0, B)
        publish(flags, p, t + 1)


# ────────────────────────────────────────────────────────── steps for the Python loop
# One step over the whole batch each: bptt.functional's loop with one np.matmul per step, where
# no BLAS symbol can be called from compiled code.


@nb.njit(**_JIT)
def gru_step_forward_after(gates, tg, hu, rz_in_gates, bx, bu, aux, ta, h, t):
    gru_cell_forward_after(gates, tg, hu, rz_in_gates, bx, bu, aux, ta, h, t, 0, h.shape[0], 0, h.shape[2])


@nb.njit(**_JIT)
def gru_step_forward_before_rz(gates, tg, hu, rz_in_gates, bx, bu, aux, h, t):
    gru_cell_forward_before_rz(gates, tg, hu, rz_in_gates, bx, bu, aux, h, t, 0, h.shape[2])


@nb.njit(**_JIT)
def gru_step_forward_before_n(gates, tg, hu, bx, bu, h, t):
    gru_cell_forward_before_n(gates, tg, hu, bx, bu, h, t, 0, h.shape[2])


@nb.njit(**_JIT)
def gru_step_backward(dh, t, use_dh, dh_rec, gates, aux, h, reset_after, dz, dhu, dh_prev, row):
    if use_dh:
        _add_step(dh_rec, dh, t, 0, dh_rec.shape[1])
    gru_cell_backward(dh_rec, gates, t, aux, h, reset_after, dz, dhu, dh_prev, row, 0, dh_rec.shape[1])


@nb.njit(**_JIT)
def gru_step_backward_before_r(drh, gates, t, h, dz, dh_prev):
    gru_cell_backward_before_r(drh, gates, t, h, dz, dh_prev, 0, drh.shape[1])
