"""The GRU's fused kernels: the step kernels (forward and backward, the stages (1)–(3) of
bptt.kernels.reference.gru in the same order; reset-before splits each in two around its second
product) and the loop drivers. Layout and drivers: see bptt.kernels.fast.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..sync import publish, wait_for
from .common import (_INLINE, _JIT, _add_columns, _add_step, _columns, _dx_step, _dz_array, _product, _product_at,
                     _product_packed, _product_packed_at, _rows, _step_slot, sigmoid_, tanh_)
from .packed import _enter_step, _zero_block

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "d54539173707ca14"


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
def _gru_rz_at(gates, gb, hu, hub, rz_in_gates, bx, bu, j, H, u0, u1):
    """:func:`_gru_rz` over 2-D arrays from the columns ``gb`` (gates) and ``hub`` (hu)."""
    br, bz = bx[j] + bu[j], bx[H + j] + bu[H + j]
    if rz_in_gates:
        for b in range(u0, u1):
            gates[j, gb + b] = sigmoid_(gates[j, gb + b] + br)
        for b in range(u0, u1):
            gates[H + j, gb + b] = sigmoid_(gates[H + j, gb + b] + bz)
    else:
        for b in range(u0, u1):
            gates[j, gb + b] = sigmoid_(gates[j, gb + b] + hu[j, hub + b] + br)
        for b in range(u0, u1):
            gates[H + j, gb + b] = sigmoid_(gates[H + j, gb + b] + hu[H + j, hub + b] + bz)


@nb.njit(**_INLINE)
def gru_cell_forward_after_at(gates, gb, hu, hub, rz_in_gates, bx, bu, aux, ab, h, hpb, hnb, j0, j1, n0, n1):
    """One GRU step for the hidden units ``[j0, j1)``, reset after the recurrent product, over the
    columns ``[n0, n1)`` of 2-D arrays, each from its own first column: ``gates`` (from ``gb``)
    holds x_t W (the r and z blocks summed with h_{t-1} U_rz when ``rz_in_gates``), ``hu`` (from
    ``hub``) h_{t-1} U (its n block at least); h_{t-1} is read from column ``hpb`` of h, h_t
    written from ``hnb``.

        (1) r = σ(xw_r + b_r + hu_r + bu_r)   u = σ(xw_z + b_z + hu_z + bu_z)
        (2) n = tanh(xw_n + b_n + r ⊙ (hu_n + bu_n))      aux (from ``ab``) keeps hu_n + bu_n
        (3) h_t = n + u ⊙ (h_{t-1} − n)
    """
    u0, u1 = _columns(n0, n1)
    gb, hub, ab, hpb, hnb = np.uint64(gb), np.uint64(hub), np.uint64(ab), np.uint64(hpb), np.uint64(hnb)
    H = h.shape[0]
    for j in range(j0, j1):
        _gru_rz_at(gates, gb, hu, hub, rz_in_gates, bx, bu, j, H, u0, u1)  # (1)
        bn, bun = bx[2 * H + j], bu[2 * H + j]
        for b in range(u0, u1):  # (2)
            aux[j, ab + b] = hu[2 * H + j, hub + b] + bun
        for b in range(u0, u1):
            gates[2 * H + j, gb + b] = tanh_(gates[2 * H + j, gb + b] + bn + gates[j, gb + b] * aux[j, ab + b])
        for b in range(u0, u1):  # (3)
            n = gates[2 * H + j, gb + b]
            h[j, hnb + b] = n + gates[H + j, gb + b] * (h[j, hpb + b] - n)


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
def gru_cell_forward_before_rz_at(gates, gb, hu, hub, rz_in_gates, bx, bu, aux, ab, h, hpb, n0, n1):
    """Reset-before GRU, first half: r, u as in :func:`gru_cell_forward_after_at`; aux = r ⊙ h_{t-1}."""
    u0, u1 = _columns(n0, n1)
    gb, hub, ab, hpb = np.uint64(gb), np.uint64(hub), np.uint64(ab), np.uint64(hpb)
    H = h.shape[0]
    for j in range(H):
        _gru_rz_at(gates, gb, hu, hub, rz_in_gates, bx, bu, j, H, u0, u1)
        for b in range(u0, u1):
            aux[j, ab + b] = gates[j, gb + b] * h[j, hpb + b]


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
def gru_cell_forward_before_n_at(gates, gb, hu, hub, bx, bu, h, hpb, hnb, n0, n1):
    """Reset-before GRU, second half: n = tanh(xw_n + b_n + (r ⊙ h) U_n + bu_n), the product in hu's n block."""
    u0, u1 = _columns(n0, n1)
    gb, hub, hpb, hnb = np.uint64(gb), np.uint64(hub), np.uint64(hpb), np.uint64(hnb)
    H = h.shape[0]
    for j in range(H):
        bn = bx[2 * H + j] + bu[2 * H + j]
        for b in range(u0, u1):
            gates[2 * H + j, gb + b] = tanh_(gates[2 * H + j, gb + b] + hu[2 * H + j, hub + b] + bn)
        for b in range(u0, u1):
            n = gates[2 * H + j, gb + b]
            h[j, hnb + b] = n + gates[H + j, gb + b] * (h[j, hpb + b] - n)


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
def gru_cell_backward_at(dh_rec, rb, gates, gb, aux, h, hpb, reset_after, dz, dhu, dh_prev, row, n0, n1):
    """Backward of one GRU step, stages (3), (2), (1) in reverse, over the columns ``[n0, n1)``;
    ``dh_rec`` is the total dL/dh_t. The running arrays (``dh_rec``, ``dh_prev``, ``row``) from
    column ``rb``, the step's (gates, aux, dz, dhu) from ``gb``, h_{t-1} from ``hpb``.

    Writes dz (dL/d[a_r, a_z, a_n]; for reset-before the r block is finished by
    :func:`gru_cell_backward_before_r_at`), for reset_after also ``dhu``, the n block of
    dL/d(h U + b_u), ``da_n ⊙ r`` (its r and z blocks are dz's), and ``dh_prev`` = the direct
    part u ⊙ dh of dL/dh_{t-1}. ``dz`` None: written over the gate values, as
    :func:`.lstm.lstm_cell_backward_at` does (no gate value is read after its gradient is written).
    ``row``: a scratch row of B values.
    """
    out = _dz_array(dz, gates)
    u0, u1 = _columns(n0, n1)
    rb, gb, hpb = np.uint64(rb), np.uint64(gb), np.uint64(hpb)
    H = dh_rec.shape[0]
    for j in range(H):
        # (3) h_t = n + u ⊙ (h_{t-1} − n), then (2) n = tanh(a_n)
        for b in range(u0, u1):
            dh_prev[j, rb + b] = dh_rec[j, rb + b] * gates[H + j, gb + b]
        for b in range(u0, u1):
            row[rb + b] = gates[H + j, gb + b]
        for b in range(u0, u1):
            u = row[rb + b]
            out[H + j, gb + b] = dh_rec[j, rb + b] * (h[j, hpb + b] - gates[2 * H + j, gb + b]) * u * (1 - u)
        for b in range(u0, u1):
            n = gates[2 * H + j, gb + b]
            out[2 * H + j, gb + b] = dh_rec[j, rb + b] * (1 - row[rb + b]) * (1 - n * n)
        if reset_after:  # a_n = xw_n + b_n + r ⊙ aux: dr = da_n ⊙ aux, then (1) r = σ(a_r)
            for b in range(u0, u1):
                dhu[j, gb + b] = out[2 * H + j, gb + b] * gates[j, gb + b]
            for b in range(u0, u1):
                r = gates[j, gb + b]
                out[j, gb + b] = out[2 * H + j, gb + b] * aux[j, gb + b] * r * (1 - r)


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
def gru_cell_backward_before_r_at(drh, rb, gates, gb, h, hpb, dz, dh_prev, n0, n1):
    """Reset-before: with d(r ⊙ h) = da_n U_nᵀ in ``drh``, dz_r = d(rh) ⊙ h ⊙ σ′ and dh_prev += d(rh) ⊙ r
    (``dz`` None: over the gate values, as for :func:`gru_cell_backward_at`)."""
    out = _dz_array(dz, gates)
    u0, u1 = _columns(n0, n1)
    rb, gb, hpb = np.uint64(rb), np.uint64(gb), np.uint64(hpb)
    H = drh.shape[0]
    for j in range(H):
        for b in range(u0, u1):
            dh_prev[j, rb + b] += drh[j, rb + b] * gates[j, gb + b]
        for b in range(u0, u1):
            r = gates[j, gb + b]
            out[j, gb + b] = drh[j, rb + b] * h[j, hpb + b] * r * (1 - r)


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
def gru_forward_loop(blas, own, A, k0, xh, gates, bx, bu, reset_after, aux, keep, h, hu, b0, b1):
    """The whole GRU forward loop over ``xh (I + H, T + 1, B)``, the stacked inputs and states
    (``h`` its state rows, h0 in slot 0), as :func:`.lstm.lstm_forward_loop`:

    * ``k0`` 0, ``A = [W; U]ᵀ (3H, I + H)``: the step's products write ``[W; U]_rzᵀ [x_t; h_{t-1}]``
      and ``W_nᵀ x_t`` into the step's slot of ``gates`` (``(3H, T, B)``, or one slot for
      inference), and the n block's ``U_nᵀ h_{t-1}`` (reset-after) into ``hu (3H, B)``;
    * ``k0`` I, ``A = Uᵀ``: ``gates (3H, T, B)`` holds x W of all steps on entry, ``hu`` gets
      ``h_{t-1} U``.

    Without ``keep`` a reset-after ``aux`` is one ``(H, 1, B)`` slot. (Reset-before: the n
    block's product, ``(r ⊙ h_{t-1}) U_n``, waits for r in either form.)"""
    H = h.shape[0]
    I = xh.shape[0] - H
    cu = A.shape[1] - H  # the column of A where U's part starts: I, or 0 when A is Uᵀ
    hu3 = hu.reshape((hu.shape[0], 1, hu.shape[1]))
    fused = k0 == 0
    for t in range(h.shape[1] - 1):
        tg, ta = _step_slot(gates, h, t), _step_slot(aux, h, t)
        if fused:
            _product(blas, own, A, 0, 0, 2 * H, I + H, xh, 0, t, gates, 0, tg, 0.0, b0, b1)
            _product(blas, own, A, 2 * H, 0, H, I, xh, 0, t, gates, 2 * H, tg, 0.0, b0, b1)
        if reset_after:
            if fused:
                _product(blas, own, A, 2 * H, cu, H, H, xh, I, t, hu3, 2 * H, 0, 0.0, b0, b1)
            else:
                _product(blas, own, A, 0, 0, 3 * H, H, xh, I, t, hu3, 0, 0, 0.0, b0, b1)
            gru_cell_forward_after(gates, tg, hu, fused, bx, bu, aux, ta, h, t, 0, H, b0, b1)
        else:
            if not fused:
                _product(blas, own, A, 0, 0, 2 * H, H, xh, I, t, hu3, 0, 0, 0.0, b0, b1)
            gru_cell_forward_before_rz(gates, tg, hu, fused, bx, bu, aux, h, t, b0, b1)
            _product(blas, own, A, 2 * H, cu, H, H, aux, 0, t, hu3, 2 * H, 0, 0.0, b0, b1)
            gru_cell_forward_before_n(gates, tg, hu, bx, bu, h, t, b0, b1)


@nb.njit(**_JIT)
def gru_backward_loop(blas, own, dh, use_dh, U, Up, gates, aux, h, reset_after, dh_rec, dh_prev, drh, dz, dhu, row, Wp,
                      dx, b0, b1):
    """The whole GRU backward loop; ``dh_rec`` holds the final state's gradient on entry and dh0
    on exit. ``dhu (H, T, B)``: the n block of dL/d(h U + b_u), written only when
    ``reset_after`` (its r and z blocks are dz's, not written twice); otherwise pass any 3-D
    array. ``Wp``, ``dx``: as for :func:`.lstm.lstm_backward_loop`, ``dx_t = W dz_t`` at each
    step. ``dz`` None: dz is written over ``gates`` (see :func:`gru_cell_backward_at`); ``row``: a
    scratch row of B values."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    dh_rec3, drh3 = dh_rec.reshape((H, 1, B)), drh.reshape((H, 1, B))
    for t in range(gates.shape[1] - 1, -1, -1):
        if use_dh:
            _add_step(dh_rec, dh, t, b0, b1)
        gru_cell_backward(dh_rec, gates, t, aux, h, reset_after, dz, dhu, dh_prev, row, b0, b1)
        if reset_after:  # dh_{t-1} = U_rz dz_rz + U_n dhu_n
            _product_packed(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)
            _product_packed(blas, own, U, Up, 0, 2 * H, H, H, dhu, 0, t, dh_rec3, 0, 0, 1.0, b0, b1)
        else:
            _product_packed(blas, own, U, Up, 0, 2 * H, H, H, out, 2 * H, t, drh3, 0, 0, 0.0, b0, b1)
            gru_cell_backward_before_r(drh, gates, t, h, dz, dh_prev, b0, b1)
            _product_packed(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)
        _dx_step(blas, own, Wp, _rows(out), t * B + b0, _rows(dx), b1 - b0)
        _add_columns(dh_rec, 0, dh_prev, 0, b0, b1)


@nb.njit(**_JIT)
def gru_forward_packed(blas, own, A, k0, xh, h, gates, per_step, bx, bu, reset_after, aux, aux_step, hu, n, width, off,
                       pw, parts, p):
    """The forward loop of part p over the packed layout (bptt.kernels.fast.packed), as
    :func:`gru_forward_loop` with 2-D arrays: ``xh (I + H, N)``, ``h`` its state rows; ``gates``
    (``per_step``) and ``aux`` (``aux_step``) ``(·, N)``, else the part's columns of running
    ``(·, B)`` slots; ``hu (3H, B)`` running. Reset-before: the columns of an aux block past its
    running ones hold zeros (the n block's product and dU read them)."""
    H = h.shape[0]
    I = xh.shape[0] - H
    cu = A.shape[1] - H
    fused = k0 == 0
    rb = parts[p]
    for s in range(n.shape[0]):
        m, o, o1, w = n[s, p], off[s, p], off[s + 1, p], pw[s, p]
        if m == 0:  # a block of final states only (and none after it)
            if aux_step and not reset_after:
                _zero_block(aux, 0, H, o, o + width[s, p])
            break
        gb = o if per_step else rb
        ab = o if aux_step else rb
        if fused:
            _product_at(blas, own, A, 0, 0, 2 * H, I + H, xh, 0, o, gates, 0, gb, 0.0, w)
            _product_at(blas, own, A, 2 * H, 0, H, I, xh, 0, o, gates, 2 * H, gb, 0.0, w)
        if reset_after:
            if fused:
                _product_at(blas, own, A, 2 * H, cu, H, H, xh, I, o, hu, 2 * H, rb, 0.0, w)
            else:
                _product_at(blas, own, A, 0, 0, 3 * H, H, xh, I, o, hu, 0, rb, 0.0, w)
            gru_cell_forward_after_at(gates, gb, hu, rb, fused, bx, bu, aux, ab, h, o, o1, 0, H, 0, m)
        else:
            if not fused:
                _product_at(blas, own, A, 0, 0, 2 * H, H, xh, I, o, hu, 0, rb, 0.0, w)
            gru_cell_forward_before_rz_at(gates, gb, hu, rb, fused, bx, bu, aux, ab, h, o, 0, m)
            _zero_block(aux, 0, H, ab + m, ab + (width[s, p] if aux_step else w))
            _product_at(blas, own, A, 2 * H, cu, H, H, aux, 0, ab, hu, 2 * H, rb, 0.0, w)
            gru_cell_forward_before_n_at(gates, gb, hu, rb, bx, bu, h, o, o1, 0, m)


@nb.njit(**_JIT)
def gru_backward_packed(blas, own, dh, rows, use_dh, U, Up, gates, aux, h, reset_after, dh_rec, dh_fin, dh_prev, drh,
                        dz, dhu, row, Wp, dx, n, width, off, pw, parts, p):
    """The backward loop of part p over the packed layout (:func:`gru_forward_packed`), as
    :func:`.lstm.lstm_backward_packed`: ``dh`` the caller's ``(B·T, H)`` rows read through ``rows``,
    ``dh_fin`` the final state's gradient entering each column at its sequence's last real step,
    dh0 in ``dh_rec`` on exit; zeros in each block's columns of dz (and dhu) past its running
    ones."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    rb = parts[p]
    started = 0
    for s in range(n.shape[0] - 1, -1, -1):
        m, o, wd, w = n[s, p], off[s, p], width[s, p], pw[s, p]
        _zero_block(out, 0, 3 * H, o + m, o + wd)
        if reset_after:
            _zero_block(dhu, 0, H, o + m, o + wd)
        if m == 0:  # a block of final states only
            continue
        started = _enter_step(dh_rec, dh_fin, rb, started, m, use_dh, dh, rows, o)
        gru_cell_backward_at(dh_rec, rb, gates, o, aux, h, o, reset_after, dz, dhu, dh_prev, row, 0, m)
        if reset_after:  # dh_{t-1} = U_rz dz_rz + U_n dhu_n
            _product_packed_at(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, o, dh_rec, 0, rb, 0.0, w)
            _product_packed_at(blas, own, U, Up, 0, 2 * H, H, H, dhu, 0, o, dh_rec, 0, rb, 1.0, w)
        else:
            _product_packed_at(blas, own, U, Up, 0, 2 * H, H, H, out, 2 * H, o, drh, 0, rb, 0.0, w)
            gru_cell_backward_before_r_at(drh, rb, gates, o, h, o, dz, dh_prev, 0, m)
            _product_packed_at(blas, own, U, Up, 0, 0, H, 2 * H, out, 0, o, dh_rec, 0, rb, 0.0, w)
        _dx_step(blas, own, Wp, out, o, dx, w)
        _add_columns(dh_rec, rb, dh_prev, rb, 0, m)


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
