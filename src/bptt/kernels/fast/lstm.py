"""The LSTM's fused kernels: the step pair (forward and backward, the stages (1)–(4) of
bptt.kernels.reference.lstm in the same order) and the loop drivers. Layout and drivers: see
bptt.kernels.fast.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from ..sync import publish, wait_for
from .common import (_INLINE, _JIT, _add_step, _columns, _dx_step, _dz_array, _product, _product_at, _product_packed,
                     _product_packed_at, _rows, _step_slot, sigmoid_, tanh_)
from .packed import _copy_block, _enter_step, _zero_block

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "d54539173707ca14"


# ─────────────────────────────────────────────────────────────────────── step kernels


@nb.njit(**_INLINE)
def lstm_cell_forward_at(gates, gb, bias, c, cpb, ccb, h, hr, hb, j0, j1, n0, n1):
    """One LSTM step for the hidden units ``[j0, j1)`` over the columns ``i`` in ``[n0, n1)`` of
    2-D arrays, each from its own first column: ``gates[:, gb + i]`` holds x_t W + h_{t-1} U on
    entry and the gate values on exit; reads c_{t-1} from column ``cpb + i`` of c, writes c_t into
    column ``ccb + i`` and h_t into rows ``hr + j`` of column ``hb + i`` of h.

        (1) z_t = x_t W  +  h_{t-1} U  +  b        gates holds the first two terms
        (2) i, f, o = σ(z_i, z_f, z_o)   g = tanh(z_g)
        (3) c_t = f ⊙ c_{t-1} + i ⊙ g
        (4) h_t = o ⊙ tanh(c_t)
    """
    u0, u1 = _columns(n0, n1)
    gb, cpb, ccb, hb = np.uint64(gb), np.uint64(cpb), np.uint64(ccb), np.uint64(hb)
    H = c.shape[0]
    for j in range(j0, j1):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(u0, u1):  # (1), (2)
            gates[j, gb + b] = sigmoid_(gates[j, gb + b] + bi)
        for b in range(u0, u1):
            gates[H + j, gb + b] = sigmoid_(gates[H + j, gb + b] + bf)
        for b in range(u0, u1):
            gates[2 * H + j, gb + b] = tanh_(gates[2 * H + j, gb + b] + bg)
        for b in range(u0, u1):
            gates[3 * H + j, gb + b] = sigmoid_(gates[3 * H + j, gb + b] + bo)
        for b in range(u0, u1):  # (3)
            c[j, ccb + b] = gates[H + j, gb + b] * c[j, cpb + b] + gates[j, gb + b] * gates[2 * H + j, gb + b]
        for b in range(u0, u1):  # (4)
            h[hr + j, hb + b] = gates[3 * H + j, gb + b] * tanh_(c[j, ccb + b])


@nb.njit(**_INLINE)
def lstm_cell_forward(gates, tg, bias, c, cp, cc, h, hr, ht, j0, j1, b0, b1):
    """One LSTM step for the hidden units ``[j0, j1)``: ``gates[:, tg]`` holds x_t W + h_{t-1} U on
    entry and the gate values on exit; reads slot ``cp`` of c, writes slot ``cc`` of c and h_t into
    rows ``hr + j`` of slot ``ht`` of h.

        (1) z_t = x_t W  +  h_{t-1} U  +  b        gates holds the first two terms
        (2) i, f, o = σ(z_i, z_f, z_o)   g = tanh(z_g)
        (3) c_t = f ⊙ c_{t-1} + i ⊙ g
        (4) h_t = o ⊙ tanh(c_t)
    """
    u0, u1 = _columns(b0, b1)
    H, B = c.shape[0], c.shape[2]
    for j in range(j0, j1):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(u0, u1):  # (1), (2)
            gates[j, tg, b] = sigmoid_(gates[j, tg, b] + bi)
        for b in range(u0, u1):
            gates[H + j, tg, b] = sigmoid_(gates[H + j, tg, b] + bf)
        for b in range(u0, u1):
            gates[2 * H + j, tg, b] = tanh_(gates[2 * H + j, tg, b] + bg)
        for b in range(u0, u1):
            gates[3 * H + j, tg, b] = sigmoid_(gates[3 * H + j, tg, b] + bo)
        for b in range(u0, u1):  # (3)
            c[j, cc, b] = gates[H + j, tg, b] * c[j, cp, b] + gates[j, tg, b] * gates[2 * H + j, tg, b]
        for b in range(u0, u1):  # (4)
            h[hr + j, ht, b] = gates[3 * H + j, tg, b] * tanh_(c[j, cc, b])


@nb.njit(**_INLINE)
def _dc_at(dc, dcb, c, ccb):
    """``(array, first column)`` the LSTM backward writes dc_t into: ``(dc, dcb)``, or ``(c, ccb)``
    when ``dc`` is None, over c_t, which the cell reads first (as :func:`.common._dz_array`)."""
    if dc is None:
        return c, ccb
    return dc, dcb


@nb.njit(**_INLINE)
def lstm_cell_backward_at(dh_rec, rb, gates, gb, c, cpb, ccb, dc_next, dz, dc, dcb, row, n0, n1):
    """Backward of :func:`lstm_cell_forward_at`, stages in reverse, over the columns ``[n0, n1)``.

    ``dh_rec``: on entry the total dL/dh_t; ``dc_next``: on entry dL/dc_t through step t+1, on
    exit dL/dc_{t-1} through step t; both, and the scratch ``row``, from column ``rb``. Writes
    dL/dz_t into ``dz`` from column ``gb`` (the gates' columns) and the total dL/dc_t into ``dc``
    from column ``dcb``. c holds c_{t-1} from column ``cpb`` and c_t from ``ccb``.

    ``dz`` and ``dc`` None (a cache the backward may spend, ``keep_cache=False``): dz_t is written
    over the gate values and dc_t over c_t, in cache lines the step has just read, instead of into
    fresh arrays: two arrays of 4H·T·B and H·T·B values less to hold and to fetch for writing. No
    value is read after its gradient is written over it (c_t only through tanh(c_t), read first),
    so the passes are the same either way. In place, the kernels index one array for both
    (:func:`.common._dz_array`, :func:`_dc_at`): two arguments pointing at the same memory would
    leave LLVM to check at run time whether they overlap, which they then do, and the loops would
    run scalar. Same-process A/B of the training step: see ``bptt.functional.lstm_backward``.
    """
    out = _dz_array(dz, gates)
    dcs, sb = _dc_at(dc, dcb, c, ccb)
    u0, u1 = _columns(n0, n1)
    rb, gb, cpb, ccb, sb = np.uint64(rb), np.uint64(gb), np.uint64(cpb), np.uint64(ccb), np.uint64(sb)
    H = dh_rec.shape[0]
    for j in range(H):
        # (4) h_t = o ⊙ tanh(c_t):  do = dh ⊙ tanh(c_t),  dc_t += dh ⊙ o ⊙ (1 − tanh²(c_t))
        for b in range(u0, u1):
            row[rb + b] = tanh_(c[j, ccb + b])
        for b in range(u0, u1):
            tc = row[rb + b]
            dcs[j, sb + b] = dc_next[j, rb + b] + dh_rec[j, rb + b] * gates[3 * H + j, gb + b] * (1 - tc * tc)
        for b in range(u0, u1):  # (2) through o = σ(z_o)
            o = gates[3 * H + j, gb + b]
            out[3 * H + j, gb + b] = dh_rec[j, rb + b] * row[rb + b] * o * (1 - o)
        # (3) c_t = f ⊙ c_{t-1} + i ⊙ g, then (2) through i, f, g
        for b in range(u0, u1):  # before f's gradient is written
            dc_next[j, rb + b] = dcs[j, sb + b] * gates[H + j, gb + b]
        for b in range(u0, u1):
            f = gates[H + j, gb + b]
            out[H + j, gb + b] = dcs[j, sb + b] * c[j, cpb + b] * f * (1 - f)
        for b in range(u0, u1):
            row[rb + b] = gates[j, gb + b]
        for b in range(u0, u1):
            i = row[rb + b]
            out[j, gb + b] = dcs[j, sb + b] * gates[2 * H + j, gb + b] * i * (1 - i)
        for b in range(u0, u1):
            g = gates[2 * H + j, gb + b]
            out[2 * H + j, gb + b] = dcs[j, sb + b] * row[rb + b] * (1 - g * g)
        # (1) is the caller's: dh_{t-1} = dz_t Uᵀ, and the weight GEMMs after the loop


@nb.njit(**_INLINE)
def _dc_array(dc, c):
    """``(array, s)``: the LSTM backward writes dc_t into slot ``t + s`` of ``array``: ``(dc, 0)``,
    or ``(c, 1)`` when ``dc`` is None, over c_t, which the cell reads first (as :func:`.common._dz_array`)."""
    if dc is None:
        return c, 1
    return dc, 0


@nb.njit(**_INLINE)
def lstm_cell_backward(dh_rec, gates, t, c, dc_next, dz, dc, row, b0, b1):
    """Backward of :func:`lstm_cell_forward`, stages in reverse.

    ``dh_rec``: on entry the total dL/dh_t; ``dc_next``: on entry dL/dc_t through step t+1, on
    exit dL/dc_{t-1} through step t. Writes ``dz[:, t]`` (dL/dz_t) and ``dc[:, t]`` (total dL/dc_t).
    c holds c_{t-1} in slot t and c_t in slot t + 1. ``row``: a scratch row of B values.

    ``dz`` and ``dc`` None (a cache the backward may spend, ``keep_cache=False``): dz_t is written
    over the gate values of ``gates[:, t]`` and dc_t over c_t in slot t + 1 of c, in cache lines
    the step has just read, instead of into fresh arrays: two arrays of 4H·T·B and H·T·B values
    less to hold and to fetch for writing. No value is read after its gradient is written over
    it (c_t only through tanh(c_t), read first), so the passes are the same either way. In place,
    the kernels index one array for both (:func:`.common._dz_array`, :func:`_dc_array`): two arguments
    pointing at the same memory would leave LLVM to check at run time whether they overlap, which
    they then do, and the loops would run scalar. Same-process A/B of the training step: see
    ``bptt.functional.lstm_backward``.
    """
    out = _dz_array(dz, gates)
    dcs, s = _dc_array(dc, c)
    u0, u1 = _columns(b0, b1)
    H, B = dh_rec.shape
    for j in range(H):
        # (4) h_t = o ⊙ tanh(c_t):  do = dh ⊙ tanh(c_t),  dc_t += dh ⊙ o ⊙ (1 − tanh²(c_t))
        for b in range(u0, u1):
            row[b] = tanh_(c[j, t + 1, b])
        for b in range(u0, u1):
            tc = row[b]
            dcs[j, t + s, b] = dc_next[j, b] + dh_rec[j, b] * gates[3 * H + j, t, b] * (1 - tc * tc)
        for b in range(u0, u1):  # (2) through o = σ(z_o)
            o = gates[3 * H + j, t, b]
            out[3 * H + j, t, b] = dh_rec[j, b] * row[b] * o * (1 - o)
        # (3) c_t = f ⊙ c_{t-1} + i ⊙ g, then (2) through i, f, g
        for b in range(u0, u1):  # before f's gradient is written
            dc_next[j, b] = dcs[j, t + s, b] * gates[H + j, t, b]
        for b in range(u0, u1):
            f = gates[H + j, t, b]
            out[H + j, t, b] = dcs[j, t + s, b] * c[j, t, b] * f * (1 - f)
        for b in range(u0, u1):
            row[b] = gates[j, t, b]
        for b in range(u0, u1):
            i = row[b]
            out[j, t, b] = dcs[j, t + s, b] * gates[2 * H + j, t, b] * i * (1 - i)
        for b in range(u0, u1):
            g = gates[2 * H + j, t, b]
            out[2 * H + j, t, b] = dcs[j, t + s, b] * row[b] * (1 - g * g)
        # (1) is the caller's: dh_{t-1} = dz_t Uᵀ, and the weight GEMMs after the loop


def _is_float32(a):  # pragma: no cover - replaced by the overload inside compiled code
    return a.dtype == np.float32


@overload(_is_float32, inline="always")
def _ol_is_float32(a):
    result = a.dtype == types.float32
    return lambda a: result


@nb.njit(**_INLINE)
def lstm_cell_forward_inference_at(gates, gb, bias, c, cb, h, hr, hb, j0, j1, n0, n1):
    """:func:`lstm_cell_forward_at` when nothing is kept for a backward pass, in float32: stages
    (2)-(4) in one pass over the batch, the gate values in registers only (``gates`` is read,
    not written), c_t over c_{t-1} in the same columns of ``c`` (from ``cb``): faster than the
    staged passes on the medium to large rows, the same on the small ones (docs/performance.md,
    "One-pass LSTM inference cell"); with its stores kept, LLVM stops vectorising it. Not for
    float64, the verification path: there the inference forward gives the bits of the cached one,
    while fastmath contracts this expression differently (float32: within a few ulps of it).
    Hidden units ``[j0, j1)``, columns ``[n0, n1)``."""
    u0, u1 = _columns(n0, n1)
    gb, cb, hb = np.uint64(gb), np.uint64(cb), np.uint64(hb)
    H = c.shape[0]
    for j in range(j0, j1):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(u0, u1):
            i = sigmoid_(gates[j, gb + b] + bi)
            f = sigmoid_(gates[H + j, gb + b] + bf)
            g = tanh_(gates[2 * H + j, gb + b] + bg)
            o = sigmoid_(gates[3 * H + j, gb + b] + bo)
            c_t = f * c[j, cb + b] + i * g
            c[j, cb + b] = c_t
            h[hr + j, hb + b] = o * tanh_(c_t)


@nb.njit(**_INLINE)
def lstm_cell_forward_inference(gates, tg, bias, c, h, hr, ht, j0, j1, b0, b1):
    """:func:`lstm_cell_forward` when nothing is kept for a backward pass, in float32: stages
    (2)-(4) in one pass over the batch, the gate values in registers only (``gates[:, tg]`` is read,
    not written), c_t over c_{t-1} in the one slot of ``c``: faster than the staged passes on the
    medium to large rows, the same on the small ones (docs/performance.md, "One-pass LSTM
    inference cell"); with its stores kept, LLVM stops vectorising it. Not for float64, the verification path:
    there the inference forward gives the bits of the cached one, while fastmath contracts this
    expression differently (float32: within a few ulps of it). Hidden units ``[j0, j1)``."""
    u0, u1 = _columns(b0, b1)
    H = c.shape[0]
    for j in range(j0, j1):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(u0, u1):
            i = sigmoid_(gates[j, tg, b] + bi)
            f = sigmoid_(gates[H + j, tg, b] + bf)
            g = tanh_(gates[2 * H + j, tg, b] + bg)
            o = sigmoid_(gates[3 * H + j, tg, b] + bo)
            c_t = f * c[j, 0, b] + i * g
            c[j, 0, b] = c_t
            h[hr + j, ht, b] = o * tanh_(c_t)


# ─────────────────────────────────────────────────────────────────────── loop drivers


@nb.njit(**_JIT)
def lstm_forward_loop(blas, own, A, k0, xh, gates, bias, c, h, keep, b0, b1):
    """The whole forward loop over the batch columns ``[b0, b1)``. ``xh (I + H, T + 1, B)`` holds
    the stacked inputs and states of ``bptt.functional._fm_stacked`` and ``h`` is its state rows
    (slot 0 the initial state); ``c`` is ``(H, T + 1, B)`` like h when ``keep``, else (inference)
    one ``(H, 1, B)`` slot updated in place. Step t's product (1) is ``A @ xh[k0:, t]``:

    * ``k0`` 0, ``A = [W; U]ᵀ (4H, I + H)``: the whole ``z_t − b = [W; U]ᵀ [x_t; h_{t-1}]``, written
      into the step's slot of ``gates``: ``(4H, T, B)``, or one ``(4H, 1, B)`` slot for inference;
    * ``k0`` I, ``A = Uᵀ``: the recurrent part only, added to ``gates (4H, T, B)``, which holds x W
      of all steps on entry (the input projection as one product before the loop).

    ``gates`` holds the gate values on exit when it has a slot per step."""
    H = h.shape[0]
    for t in range(h.shape[1] - 1):
        tg = _step_slot(gates, h, t)
        _product(blas, own, A, 0, 0, 4 * H, A.shape[1], xh, k0, t, gates, 0, tg, 1.0 if k0 else 0.0, b0, b1)
        if keep:
            lstm_cell_forward(gates, tg, bias, c, t, t + 1, h, 0, t + 1, 0, H, b0, b1)
        elif _is_float32(gates):
            lstm_cell_forward_inference(gates, tg, bias, c, h, 0, t + 1, 0, H, b0, b1)
        else:
            lstm_cell_forward(gates, tg, bias, c, 0, 0, h, 0, t + 1, 0, H, b0, b1)


@nb.njit(**_JIT)
def lstm_backward_loop(blas, own, dh, use_dh, U, Up, gates, c, dh_rec, dc_next, dz, dc, row, Wp, dx, b0, b1):
    """The whole backward loop over the batch columns ``[b0, b1)``; ``dh_rec``/``dc_next`` hold the
    final states' gradients on entry and dh0/dc0 on exit. With ``Wp`` (W's rows padded to a
    multiple of the tile's, ``(Ip, 4H)``; else an empty array) each step also writes
    ``dx_t = Wp dz_t`` into slot t of ``dx (Ip, T, B)``, while dz_t is in cache. ``dz`` and ``dc``
    None: dz is written over ``gates`` and dc over c (see :func:`lstm_cell_backward_at`). ``row``:
    a scratch row of B values (each thread uses its own columns of it)."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    dh_rec3 = dh_rec.reshape((H, 1, B))
    for t in range(gates.shape[1] - 1, -1, -1):
        if use_dh:
            _add_step(dh_rec, dh, t, b0, b1)
        lstm_cell_backward(dh_rec, gates, t, c, dc_next, dz, dc, row, b0, b1)
        _product_packed(blas, own, U, Up, 0, 0, H, 4 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)  # (1) dh_{t-1} = dz_t Uᵀ
        _dx_step(blas, own, Wp, _rows(out), t * B + b0, _rows(dx), b1 - b0)


@nb.njit(**_JIT)
def lstm_forward_packed(blas, own, A, k0, xh, gates, per_step, bias, c, keep, n, off, pw, parts, p):
    """The forward loop of part p over the packed layout (bptt.kernels.fast.packed), 2-D arrays: ``xh
    (I + H, N)`` the inputs and states, block 0's state rows the initial states; step s's
    product ``A @ xh[k0:]`` over block s (as :func:`lstm_forward_loop`) into block s of ``gates
    (4H, N_x)`` (``per_step``; else the part's columns of one running ``(4H, B)`` slot), the
    cell from block s into block s + 1: h_s into xh's state rows, c_s into ``c (H, N)``
    (``keep``; else c is the running ``(H, B)`` states, updated in place)."""
    H = c.shape[0]
    I = xh.shape[0] - H
    rb = parts[p]
    for s in range(n.shape[0]):
        m = n[s, p]
        if m == 0:
            break
        o, o1 = off[s, p], off[s + 1, p]
        gb = o if per_step else rb
        _product_at(blas, own, A, 0, 0, 4 * H, A.shape[1], xh, k0, o, gates, 0, gb, 1.0 if k0 else 0.0, pw[s, p])
        if keep:
            lstm_cell_forward_at(gates, gb, bias, c, o, o1, xh, I, o1, 0, H, 0, m)
        elif _is_float32(gates):
            lstm_cell_forward_inference_at(gates, gb, bias, c, rb, xh, I, o1, 0, H, 0, m)
        else:
            lstm_cell_forward_at(gates, gb, bias, c, rb, rb, xh, I, o1, 0, H, 0, m)


@nb.njit(**_JIT)
def lstm_backward_packed(blas, own, dh, rows, use_dh, U, Up, gates, c, dh_rec, dc_next, dh_fin, dc_fin, dz, dc, row, Wp,
                         dx, n, width, off, pw, parts, p):
    """The backward loop of part p over the packed layout (:func:`lstm_forward_packed`): ``dh``
    the caller's ``(B·T, H)`` rows, read through ``rows`` (bptt.kernels.fast.packing.packed_layout);
    ``dh_fin``/``dc_fin`` ``(H, B)`` the final states' gradients, which enter each sequence's
    column of ``dh_rec``/``dc_next`` at its last real step (its first in this loop); dh0/dc0 there
    on exit. Writes dz (over ``gates`` when ``dz`` is None) and dc (over c's block s + 1 when
    ``dc`` is None) for the running columns, zeros in the rest of each block of dz, and with
    ``Wp`` ``dx = Wp dz`` block by block (as :func:`lstm_backward_loop`)."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    rb = parts[p]
    started = 0  # the part's first `started` columns have reached their last real step
    for s in range(n.shape[0] - 1, -1, -1):
        m, o, o1 = n[s, p], off[s, p], off[s + 1, p]
        if m == 0:  # a block of final states only
            _zero_block(out, 0, 4 * H, o, o + width[s, p])
            continue
        if m > started:
            _copy_block(dc_next, dc_fin, rb + started, rb + m)
        started = _enter_step(dh_rec, dh_fin, rb, started, m, use_dh, dh, rows, o)
        lstm_cell_backward_at(dh_rec, rb, gates, o, c, o, o1, dc_next, dz, dc, o, row, 0, m)
        _zero_block(out, 0, 4 * H, o + m, o + width[s, p])
        _product_packed_at(blas, own, U, Up, 0, 0, H, 4 * H, out, 0, o, dh_rec, 0, rb, 0.0, pw[s, p])  # (1)
        _dx_step(blas, own, Wp, out, o, dx, pw[s, p])


@nb.njit(**_JIT)
def lstm_inference_loop(blas, own, A, xh, gates, bias, c, b0, b1):
    """The forward loop of inference over a **time-major** ``xh (T + 1, I + H, B)`` (see
    ``bptt.functional._tm_stacked``): step t's product ``[W; U]ᵀ [x_t; h_{t-1}]`` reads the
    contiguous block ``xh[t]`` and writes the one ``(4H, 1, B)`` slot of ``gates``; the cell writes
    h_t into rows ``[I, I + H)`` of ``xh[t + 1]``, c_t over c_{t-1} in the one ``(H, 1, B)`` slot of c."""
    S, K, B = xh.shape
    H = c.shape[0]
    for t in range(S - 1):
        _product(blas, own, A, 0, 0, 4 * H, K, xh[t].reshape((K, 1, B)), 0, 0, gates, 0, 0, 0.0, b0, b1)
        nxt = xh[t + 1].reshape((K, 1, B))
        if _is_float32(gates):
            lstm_cell_forward_inference(gates, 0, bias, c, nxt, K - H, 0, 0, H, b0, b1)
        else:
            lstm_cell_forward(gates, 0, bias, c, 0, 0, nxt, K - H, 0, 0, H, b0, b1)


@nb.njit(**_INLINE)
def _unit_rows_product(blas, own, A, G, H, j0, j1, X, t, out, to, B):
    """The rows of the hidden units ``[j0, j1)`` in each of the G gate blocks of
    ``out[:, to] = A @ X[:, t]``, over the whole batch."""
    for q in range(G):
        _product(blas, own, A, q * H + j0, 0, j1 - j0, A.shape[1], X, 0, t, out, q * H + j0, to, 0.0, 0, B)


@nb.njit(**_JIT)
def lstm_inference_loop_units(blas, own, A, xh, gates, bias, c, flags, p, j0, j1):
    """:func:`lstm_inference_loop` (float32) as thread ``p`` of two that split the hidden units:
    this one computes units ``[j0, j1)``, the rows ``[q·H + j0, q·H + j1)`` of every gate q, over
    the whole batch. Before step t's product, which reads all of h_{t-1}, it waits until the other
    thread has finished t steps (``flags``, bptt.kernels.sync)."""
    S, K, B = xh.shape
    H = c.shape[0]
    for t in range(S - 1):
        wait_for(flags, 1 - p, t)
        X = xh[t].reshape((K, 1, B))
        _unit_rows_product(blas, own, A, 4, H, j0, j1, X, 0, gates, 0, B)
        lstm_cell_forward_inference(gates, 0, bias, c, xh[t + 1].reshape((K, 1, B)), K - H, 0, j0, j1, 0, B)
        publish(flags, p, t + 1)


@nb.njit(**_JIT)
def lstm_forward_loop_units(blas, own, A, xh, gates, bias, c, h, flags, p, j0, j1):
    """:func:`lstm_forward_loop` with a slot per step (the cached forward, ``k0`` 0) as thread ``p``
    of two that split the hidden units, as :func:`lstm_inference_loop_units` does."""
    H, B = h.shape[0], h.shape[2]
    for t in range(h.shape[1] - 1):
        wait_for(flags, 1 - p, t)
        _unit_rows_product(blas, own, A, 4, H, j0, j1, xh, t, gates, t, B)
        lstm_cell_forward(gates, t, bias, c, t, t + 1, h, 0, t + 1, j0, j1, 0, B)
        publish(flags, p, t + 1)


# ────────────────────────────────────────────────────────── steps for the Python loop
# One step over the whole batch each: bptt.functional's loop with one np.matmul per step, where
# no BLAS symbol can be called from compiled code.


@nb.njit(**_JIT)
def lstm_step_forward(gates, tg, bias, c, cp, cc, h, t):
    lstm_cell_forward(gates, tg, bias, c, cp, cc, h, 0, t + 1, 0, h.shape[0], 0, h.shape[2])


@nb.njit(**_JIT)
def lstm_step_backward(dh, t, use_dh, dh_rec, gates, c, dc_next, dz, dc, row):
    if use_dh:
        _add_step(dh_rec, dh, t, 0, dh_rec.shape[1])
    lstm_cell_backward(dh_rec, gates, t, c, dc_next, dz, dc, row, 0, dh_rec.shape[1])
