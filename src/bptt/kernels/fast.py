"""Fused Numba kernels for the LSTM, GRU and simple RNN: the fast path behind ``bptt.functional``.

Layout. Every per-step array is stored **feature-major**, ``(features, T, B)``: a step's slice
``a[:, t, :]`` is a ``(features, B)`` matrix whose rows are contiguous over the batch. So

* the gate arithmetic of one step is one pass over contiguous memory, vectorised over the batch
  (which is ≥ 32 on every benchmark row, where H may be as small as 10);
* the input projection of all steps is one GEMM, ``Wᵀ (G·H, I) @ Xᵀ (I, T·B)``;
* the weight gradients are one GEMM each after the reverse loop: ``dWᵀ = dz (G·H, T·B) @ X``,
  ``dUᵀ = dz[:, 1:] (G·H, (T−1)·B) @ h[:, :-1]ᵀ`` (plus the first step's ``h0`` term).

Each cell has a *step* kernel pair (forward and backward, the same stages as the reference
kernels in ``reference.py``, in the same order) and two drivers over time that share them:

* ``*_loop_small``: the whole time loop in one compiled call, recurrent product by a
  hand-written loop (vectorised over the batch) — for small sizes, where a BLAS call per step
  costs more than the product itself;
* the Python driver in ``bptt.functional`` — one BLAS GEMM per step into a reused workspace,
  then the step kernel — for sizes where the GEMM dominates.

Transcendentals: in float32, tanh is Eigen's rational approximation (accurate to a few float32
ulps, clamped at ±7.9053 where tanh rounds to ±1) and σ(x) = ½ tanh(x/2) + ½, written as plain
arithmetic so that LLVM vectorises the loops (Numba has no vector math library). In float64 they
are libm's ``tanh`` and ``exp``: the float64 path is the verification path.

Compiled code is cached on disk (``cache=True``): a new process loads it instead of compiling.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

_JIT = dict(cache=True, fastmath=True, error_model="numpy", nogil=True, boundscheck=False)

# ──────────────────────────────────────────────────────────────────────── activations

_f32 = np.float32
_A1, _A3, _A5, _A7 = _f32(4.89352455891786e-03), _f32(6.37261928875436e-04), _f32(1.48572235717979e-05), _f32(5.12229709037114e-08)
_A9, _A11, _A13 = _f32(-8.60467152213735e-11), _f32(2.00018790482477e-13), _f32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = _f32(4.89352518554385e-03), _f32(2.26843463243900e-03), _f32(1.18534705686654e-04), _f32(1.19825839466702e-06)
_CLAMP = _f32(7.90531110763549805)
_HALF32, _ONE32, _ZERO32 = _f32(0.5), _f32(1.0), _f32(0.0)


def tanh_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return math.tanh(x)


def sigmoid_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return 1.0 / (1.0 + math.exp(-x))


@overload(tanh_, inline="always", jit_options={"fastmath": True})
def _ol_tanh(x):
    if x == types.float32:

        def impl(x):
            x = max(-_CLAMP, min(_CLAMP, x))
            x2 = x * x
            p = x2 * _A13 + _A11
            p = x2 * p + _A9
            p = x2 * p + _A7
            p = x2 * p + _A5
            p = x2 * p + _A3
            p = x2 * p + _A1
            q = x2 * _B6 + _B4
            q = x2 * q + _B2
            q = x2 * q + _B0
            return x * p / q

        return impl
    return lambda x: math.tanh(x)


@overload(sigmoid_, inline="always", jit_options={"fastmath": True})
def _ol_sigmoid(x):
    if x == types.float32:
        return lambda x: _HALF32 * tanh_(_HALF32 * x) + _HALF32
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# Simple-RNN activations by code: 0 tanh, 1 relu, 2 sigmoid, 3 identity.
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}


@nb.njit(inline="always", fastmath=True)
def _act(code, x):
    if code == 0:
        return tanh_(x)
    if code == 1:
        return max(x, x * 0)
    if code == 2:
        return sigmoid_(x)
    return x


@nb.njit(inline="always", fastmath=True)
def _act_grad(code, y):
    """d act / dz expressed through the output y."""
    one = y * 0 + 1
    if code == 0:
        return one - y * y
    if code == 1:
        return one if y > 0 else y * 0
    if code == 2:
        return y * (one - y)
    return one


@nb.njit(**_JIT)
def activate_tanh(x, out):
    """Elementwise tanh of a contiguous array (the float32 approximation in float32)."""
    a, o = x.reshape(-1), out.reshape(-1)
    for k in range(a.size):
        o[k] = tanh_(a[k])


@nb.njit(**_JIT)
def activate_sigmoid(x, out):
    a, o = x.reshape(-1), out.reshape(-1)
    for k in range(a.size):
        o[k] = sigmoid_(a[k])


# ─────────────────────────────────────────────────────────────────── shared helpers


@nb.njit(inline="always", **_JIT)
def _add(out, a):
    """out += a (same shape, any strides)."""
    M, B = out.shape
    for m in range(M):
        for b in range(B):
            out[m, b] += a[m, b]


@nb.njit(inline="always", **_JIT)
def _matmul(A, X, out):
    """out (M, B) = A (M, K) @ X (K, B), vectorised over B; for small K·M."""
    M, K = A.shape
    B = X.shape[1]
    for m in range(M):
        row = out[m]
        for b in range(B):
            row[b] = 0
        for k in range(K):
            a = A[m, k]
            xk = X[k]
            for b in range(B):
                row[b] += a * xk[b]


# ─────────────────────────────────────────────────────────────────────────────── LSTM


@nb.njit(inline="always", **_JIT)
def lstm_cell_forward(z, rec, bias, c_prev, c, h):
    """One LSTM step on ``(features, B)`` slices (c_prev may be c: the update is in place).

        (1) z_t = x_t W  +  h_{t-1} U  +  b        z holds the first part, rec the second
        (2) i, f, o = σ(z_i, z_f, z_o)   g = tanh(z_g)      written over z
        (3) c_t = f ⊙ c_{t-1} + i ⊙ g
        (4) h_t = o ⊙ tanh(c_t)
    """
    H, B = c.shape
    for j in range(H):
        bi, bf, bg, bo = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for b in range(B):
            i = sigmoid_(z[j, b] + rec[j, b] + bi)  # (1), (2)
            f = sigmoid_(z[H + j, b] + rec[H + j, b] + bf)
            g = tanh_(z[2 * H + j, b] + rec[2 * H + j, b] + bg)
            o = sigmoid_(z[3 * H + j, b] + rec[3 * H + j, b] + bo)
            z[j, b], z[H + j, b], z[2 * H + j, b], z[3 * H + j, b] = i, f, g, o
            ct = f * c_prev[j, b] + i * g  # (3)
            c[j, b] = ct
            h[j, b] = o * tanh_(ct)  # (4)


@nb.njit(inline="always", **_JIT)
def lstm_cell_backward(dh_out, use_dh_out, dh_rec, gates, c_prev, c, dc_next, dz, dc):
    """Backward of :func:`lstm_cell_forward`, stages in reverse.

    ``dh_out``: dL/dh_t from outside the recurrence (ignored unless ``use_dh_out``); ``dh_rec``:
    dL/dh_t through step t+1; ``dc_next``: on entry dL/dc_t through step t+1, on exit dL/dc_{t-1}
    through step t. Writes ``dz`` (dL/dz_t) and ``dc`` (the total dL/dc_t).
    """
    H, B = c.shape
    for j in range(H):
        for b in range(B):
            i, f, g, o = gates[j, b], gates[H + j, b], gates[2 * H + j, b], gates[3 * H + j, b]
            dh = dh_rec[j, b]
            if use_dh_out:
                dh += dh_out[j, b]
            tc = tanh_(c[j, b])
            # (4) h_t = o ⊙ tanh(c_t)
            do = dh * tc
            dct = dc_next[j, b] + dh * o * (1 - tc * tc)
            dc[j, b] = dct
            # (3) c_t = f ⊙ c_{t-1} + i ⊙ g
            dc_next[j, b] = dct * f
            # (2) activations
            dz[j, b] = dct * g * i * (1 - i)
            dz[H + j, b] = dct * c_prev[j, b] * f * (1 - f)
            dz[2 * H + j, b] = dct * i * (1 - g * g)
            dz[3 * H + j, b] = do * o * (1 - o)
            # (1) is the caller's: dh_{t-1} = dz_t Uᵀ, and the weight GEMMs after the loop


@nb.njit(**_JIT)
def lstm_forward_small(gates, UT, bias, h0, c0, c, h, rec, keep):
    """The whole forward loop. ``gates (4H, T, B)`` holds x W on entry, the gates on exit.

    With ``keep`` False (inference) ``c`` is one ``(H, 1, B)`` state updated in place."""
    for t in range(gates.shape[1]):
        hp = h0 if t == 0 else h[:, t - 1]
        ct = c[:, t] if keep else c[:, 0]
        cp = c0 if t == 0 else (c[:, t - 1] if keep else ct)
        _matmul(UT, hp, rec)
        lstm_cell_forward(gates[:, t], rec, bias, cp, ct, h[:, t])


@nb.njit(**_JIT)
def lstm_backward_small(dh, use_dh, U, gates, c0, c, dh_rec, dc_next, dz, dc):
    """The whole backward loop; ``dh_rec``/``dc_next`` hold the final-state gradients on entry
    and dh0/dc0 on exit."""
    for t in range(gates.shape[1] - 1, -1, -1):
        cp = c0 if t == 0 else c[:, t - 1]
        lstm_cell_backward(dh[:, t], use_dh, dh_rec, gates[:, t], cp, c[:, t], dc_next, dz[:, t], dc[:, t])
        _matmul(U, dz[:, t], dh_rec)


@nb.njit(**_JIT)
def lstm_step_forward(gates_t, rec, bias, c_prev, c_t, h_t):
    lstm_cell_forward(gates_t, rec, bias, c_prev, c_t, h_t)


@nb.njit(**_JIT)
def lstm_step_backward(dh_t, use_dh, dh_rec, gates_t, c_prev, c_t, dc_next, dz_t, dc_t):
    lstm_cell_backward(dh_t, use_dh, dh_rec, gates_t, c_prev, c_t, dc_next, dz_t, dc_t)


# ──────────────────────────────────────────────────────────────────────────────── GRU


@nb.njit(inline="always", **_JIT)
def gru_cell_forward_after(z, hu, bx, bu, h_prev, aux, h):
    """One GRU step, reset after the recurrent product (xw = x W, hu = h_{t-1} U given).

        (1) r = σ(xw_r + b_r + hu_r + bu_r)   u = σ(xw_z + b_z + hu_z + bu_z)
        (2) n = tanh(xw_n + b_n + r ⊙ (hu_n + bu_n))      aux keeps hu_n + bu_n
        (3) h_t = n + u ⊙ (h_{t-1} − n)
    """
    H, B = h.shape
    for j in range(H):
        br, bz, bn = bx[j] + bu[j], bx[H + j] + bu[H + j], bx[2 * H + j]
        bun = bu[2 * H + j]
        for b in range(B):
            r = sigmoid_(z[j, b] + hu[j, b] + br)
            u = sigmoid_(z[H + j, b] + hu[H + j, b] + bz)
            hn = hu[2 * H + j, b] + bun
            n = tanh_(z[2 * H + j, b] + bn + r * hn)
            z[j, b], z[H + j, b], z[2 * H + j, b] = r, u, n
            aux[j, b] = hn
            h[j, b] = n + u * (h_prev[j, b] - n)


@nb.njit(inline="always", **_JIT)
def gru_cell_forward_before_rz(z, hu, bx, bu, h_prev, aux):
    """Reset-before GRU, first half: r, u from ``hu = h_{t-1} U_rz``; aux = r ⊙ h_{t-1}."""
    H, B = aux.shape
    for j in range(H):
        br, bz = bx[j] + bu[j], bx[H + j] + bu[H + j]
        for b in range(B):
            r = sigmoid_(z[j, b] + hu[j, b] + br)
            z[j, b] = r
            z[H + j, b] = sigmoid_(z[H + j, b] + hu[H + j, b] + bz)
            aux[j, b] = r * h_prev[j, b]


@nb.njit(inline="always", **_JIT)
def gru_cell_forward_before_n(z, hn, bx, bu, h_prev, h):
    """Reset-before GRU, second half: n = tanh(xw_n + b_n + (r ⊙ h) U_n + bu_n), hn the product."""
    H, B = h.shape
    for j in range(H):
        bn = bx[2 * H + j] + bu[2 * H + j]
        for b in range(B):
            n = tanh_(z[2 * H + j, b] + hn[j, b] + bn)
            z[2 * H + j, b] = n
            u = z[H + j, b]
            h[j, b] = n + u * (h_prev[j, b] - n)


@nb.njit(inline="always", **_JIT)
def gru_cell_backward(dh_out, use_dh_out, dh_rec, gates, aux, h_prev, reset_after, dz, dhu, dh_prev):
    """Backward of one GRU step, stages (3), (2), (1) in reverse.

    Writes ``dz`` (dL/d[a_r, a_z, a_n]); for reset_after also ``dhu`` (dL/d(h U + b_u)), and for
    reset-before the n-block part of dh_{t-1} is added by the caller (it needs a GEMM). ``dh_prev``
    receives the direct part u ⊙ dh (plus r ⊙ d(rh) for reset-before, given in ``dhu[2H:]``).
    """
    H, B = h_prev.shape
    for j in range(H):
        for b in range(B):
            r, u, n = gates[j, b], gates[H + j, b], gates[2 * H + j, b]
            dh = dh_rec[j, b]
            if use_dh_out:
                dh += dh_out[j, b]
            hp = h_prev[j, b]
            # (3) h_t = n + u ⊙ (h_{t-1} − n)
            dn = dh * (1 - u)
            dzu = dh * (hp - n)
            dh_prev[j, b] = dh * u
            # (2) n = tanh(a_n)
            da_n = dn * (1 - n * n)
            dz[2 * H + j, b] = da_n
            dz[H + j, b] = dzu * u * (1 - u)
            if reset_after:  # a_n = xw_n + r ⊙ hn
                dr = da_n * aux[j, b]
                dz[j, b] = dr * r * (1 - r)
                dhu[j, b] = dz[j, b]
                dhu[H + j, b] = dz[H + j, b]
                dhu[2 * H + j, b] = da_n * r


@nb.njit(inline="always", **_JIT)
def gru_cell_backward_before_r(drh, gates, h_prev, dz, dh_prev):
    """Reset-before: with d(r ⊙ h) = da_n U_nᵀ given, finish dr → dz_r and add r ⊙ d(rh) to dh_prev."""
    H, B = h_prev.shape
    for j in range(H):
        for b in range(B):
            r = gates[j, b]
            d = drh[j, b]
            dz[j, b] = d * h_prev[j, b] * r * (1 - r)
            dh_prev[j, b] += d * r


@nb.njit(**_JIT)
def gru_forward_small(gates, UT, bx, bu, h0, reset_after, aux, h, hu):
    """The whole GRU forward loop; ``gates (3H, T, B)`` holds x W on entry."""
    H = h0.shape[0]
    for t in range(gates.shape[1]):
        hp = h0 if t == 0 else h[:, t - 1]
        if reset_after:
            _matmul(UT, hp, hu)
            gru_cell_forward_after(gates[:, t], hu, bx, bu, hp, aux[:, t], h[:, t])
        else:
            _matmul(UT[: 2 * H], hp, hu[: 2 * H])
            gru_cell_forward_before_rz(gates[:, t], hu, bx, bu, hp, aux[:, t])
            _matmul(UT[2 * H :], aux[:, t], hu[2 * H :])
            gru_cell_forward_before_n(gates[:, t], hu[2 * H :], bx, bu, hp, h[:, t])


@nb.njit(**_JIT)
def gru_backward_small(dh, use_dh, U, gates, aux, h0, h, reset_after, dh_rec, dh_prev, drh, dz, dhu):
    """The whole GRU backward loop; ``dh_rec`` holds dL/dh_T on entry and dh0 on exit.
    (``dhu`` is written only when ``reset_after``; otherwise pass any array of dz's shape.)"""
    H = h0.shape[0]
    for t in range(gates.shape[1] - 1, -1, -1):
        hp = h0 if t == 0 else h[:, t - 1]
        gru_cell_backward(dh[:, t], use_dh, dh_rec, gates[:, t], aux[:, t], hp, reset_after, dz[:, t], dhu[:, t], dh_prev)
        if reset_after:
            _matmul(U, dhu[:, t], dh_rec)
        else:
            _matmul(U[:, 2 * H :], dz[2 * H :, t], drh)
            gru_cell_backward_before_r(drh, gates[:, t], hp, dz[:, t], dh_prev)
            _matmul(U[:, : 2 * H], dz[: 2 * H, t], dh_rec)
        _add(dh_rec, dh_prev)


@nb.njit(**_JIT)
def gru_step_forward_after(gates_t, hu, bx, bu, hp, aux_t, h_t):
    gru_cell_forward_after(gates_t, hu, bx, bu, hp, aux_t, h_t)


@nb.njit(**_JIT)
def gru_step_forward_before_rz(gates_t, hu, bx, bu, hp, aux_t):
    gru_cell_forward_before_rz(gates_t, hu, bx, bu, hp, aux_t)


@nb.njit(**_JIT)
def gru_step_forward_before_n(gates_t, hn, bx, bu, hp, h_t):
    gru_cell_forward_before_n(gates_t, hn, bx, bu, hp, h_t)


@nb.njit(**_JIT)
def gru_step_backward(dh_t, use_dh, dh_rec, gates_t, aux_t, hp, reset_after, dz_t, dhu_t, dh_prev):
    gru_cell_backward(dh_t, use_dh, dh_rec, gates_t, aux_t, hp, reset_after, dz_t, dhu_t, dh_prev)


@nb.njit(**_JIT)
def gru_step_backward_before_r(drh, gates_t, hp, dz_t, dh_prev):
    gru_cell_backward_before_r(drh, gates_t, hp, dz_t, dh_prev)


@nb.njit(**_JIT)
def add_into(out, a):
    """out += a (same shape, any strides)."""
    _add(out, a)


# ──────────────────────────────────────────────────────────────────────── simple RNN


@nb.njit(inline="always", **_JIT)
def rnn_cell_forward(z, rec, bias, code, h):
    """(1) a_t = x_t W + h_{t-1} U + b;  (2) h_t = act(a_t)."""
    H, B = h.shape
    for j in range(H):
        bj = bias[j]
        for b in range(B):
            h[j, b] = _act(code, z[j, b] + rec[j, b] + bj)


@nb.njit(inline="always", **_JIT)
def rnn_cell_backward(dh_out, use_dh_out, dh_rec, h, code, dz):
    """(2) backward: dz_t = (dh_t) ⊙ act′, through the output h_t."""
    H, B = h.shape
    for j in range(H):
        for b in range(B):
            d = dh_rec[j, b]
            if use_dh_out:
                d += dh_out[j, b]
            dz[j, b] = d * _act_grad(code, h[j, b])


@nb.njit(**_JIT)
def rnn_forward_small(xw, UT, bias, h0, code, h, rec):
    for t in range(xw.shape[1]):
        hp = h0 if t == 0 else h[:, t - 1]
        _matmul(UT, hp, rec)
        rnn_cell_forward(xw[:, t], rec, bias, code, h[:, t])


@nb.njit(**_JIT)
def rnn_backward_small(dh, use_dh, U, h, code, dh_rec, dz):
    for t in range(h.shape[1] - 1, -1, -1):
        rnn_cell_backward(dh[:, t], use_dh, dh_rec, h[:, t], code, dz[:, t])
        _matmul(U, dz[:, t], dh_rec)


@nb.njit(**_JIT)
def rnn_step_forward(xw_t, rec, bias, code, h_t):
    rnn_cell_forward(xw_t, rec, bias, code, h_t)


@nb.njit(**_JIT)
def rnn_step_backward(dh_t, use_dh, dh_rec, h_t, code, dz_t):
    rnn_cell_backward(dh_t, use_dh, dh_rec, h_t, code, dz_t)
