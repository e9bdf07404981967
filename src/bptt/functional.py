"""Forward and backward through time for the LSTM, GRU and simple RNN: the public primitives.

Each ``*_forward`` validates its inputs, does the input projection of all time steps as one GEMM,
runs the loop over time in a kernel and returns the hidden states with a cache; each
``*_backward`` runs the reverse loop and then forms the weight gradients as one GEMM each. All
arrays are batch-major (``x`` is ``(B, T, I)``); row-vector algebra ``z_t = x_t W + h_{t-1} U + b``.
Inputs must be finite, and so are the results: one that overflows (NaN or Inf from finite inputs,
such as a loss gradient of 3e38 in float32) raises :class:`NonFiniteResultError`, a ``ValueError``
that names the function, the result, the largest input and what to do.

Example (the published worked example, B=1, T=2, I=2, H=1)::

    >>> import numpy as np
    >>> from bptt.functional import lstm_forward, lstm_backward
    >>> x = np.array([[[1.0, 2.0], [0.5, 3.0]]])
    >>> W = np.array([[0.95, 0.7, 0.45, 0.6], [0.8, 0.45, 0.25, 0.4]])
    >>> U = np.array([[0.8, 0.1, 0.15, 0.25]])
    >>> b = np.array([0.65, 0.15, 0.2, 0.1])
    >>> h, cache = lstm_forward(x, W, U, b)
    >>> np.round(h[0, :, 0], 4)
    array([0.5363, 0.772 ])
    >>> grads = lstm_backward(h - np.array([[[0.5], [1.25]]]), cache)
    >>> sorted(grads)
    ['dU', 'dW', 'db', 'dc', 'dc0', 'dh0', 'dx', 'dz']
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from . import _validation as v
from ._env import env
from ._threads import blas_max_threads, run_in_two_threads, run_in_two_threads_meeting, single_threaded_if
from .kernels import reference as K
from .kernels.activations import ELEMENTWISE

__all__ = [
    "LSTMCache",
    "GRUCache",
    "RNNCache",
    "NonFiniteResultError",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
    "default_backend",
    "BACKENDS",
]


def _bm(a: np.ndarray) -> np.ndarray:
    """Time-major ``(T, B, ·)`` → batch-major ``(B, T, ·)`` view (and back)."""
    return a.swapaxes(0, 1)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``. Outputs that share memory with a cache are returned this way,
    so that an in-place edit (``h -= y``) raises instead of silently changing what the backward
    pass differentiates; copy them (``h.copy()``) to modify."""
    view = a.view()
    view.flags.writeable = False
    return view


def _time_major_copy(x: np.ndarray) -> np.ndarray:
    """``x (B, T, I)`` as a new C-contiguous ``(T, B, I)`` array (a copy even when B = 1, where
    ``ascontiguousarray`` would return a view of the caller's array)."""
    return np.array(_bm(x), order="C", copy=True)


# ───────────────────────────────────────────────────────────────────────── shared validation


def _check_forward(fn, x, W, U, b, gates, states, extra=None):
    """Validate a forward call; return ``(x, W, U, b, extra, states)`` as arrays plus B, T, I, H.

    ``gates`` is the number of gate blocks G (4, 3 or 1); ``U`` fixes H, ``x`` fixes B, T and I.
    ``states`` maps initial-state names to values (None → zeros); ``extra`` maps further bias
    names to values.
    """
    x = v.float_array(fn, "x", x, 3, "(B, T, I)")
    U = v.float_array(fn, "U", U, 2, f"(H, {gates}H)")
    B, T, I = x.shape
    H = U.shape[0]
    v.expect_shape(fn, "U", U, (H, gates * H), f"(H, {gates}H) with H = U.shape[0] = {H}")
    W = v.float_array(fn, "W", W, 2, f"(I, {gates}H)")
    v.expect_shape(fn, "W", W, (I, gates * H), f"(I, {gates}H) with I = x.shape[2] = {I}, H = {H} from U")
    b = v.float_array(fn, "b", b, 1, f"({gates}H,)")
    v.expect_shape(fn, "b", b, (gates * H,), f"({gates}H,) with H = {H} from U")
    arrays = {"x": x, "W": W, "U": U, "b": b}
    for name, value in (extra or {}).items():
        arrays[name] = v.float_array(fn, name, value, 1, f"({gates}H,)")
        v.expect_shape(fn, name, arrays[name], (gates * H,), f"({gates}H,) with H = {H} from U")
    for name, value in states.items():
        if value is not None:
            arrays[name] = v.float_array(fn, name, value, 2, "(B, H)")
            v.expect_shape(fn, name, arrays[name], (B, H), f"(B, H) with B = x.shape[0] = {B}, H = {H} from U")
    dtype = v.same_dtype(fn, arrays)
    for name, value in states.items():
        if value is None:
            arrays[name] = np.zeros((B, H), dtype)
    return arrays, (B, T, I, H)


def _check_backward(fn, cache, cache_type, dh, finals, keep_cache=True):
    """Validate a backward call against its cache; return ``dh`` (batch-major, or None) and the
    final-state gradients (zeros where not given). ``keep_cache`` False: the cache is marked spent
    once the call is valid (see :meth:`_Cache.spend`)."""
    if not isinstance(cache, cache_type):
        raise ValueError(
            f"{fn}: cache must be the {cache_type.__name__} returned by the matching forward call; "
            f"got {type(cache).__name__}"
        )
    if not isinstance(keep_cache, (bool, np.bool_)):
        raise ValueError(f"{fn}: keep_cache must be True or False; got {keep_cache!r}")
    if cache.spent_by:
        raise ValueError(
            f"{fn}: this cache was spent by an earlier {cache.spent_by}(..., keep_cache=False), which may "
            f"write its gradients over the cache's arrays; run the forward pass again for a new cache (or "
            f"keep the cache for several backward calls with keep_cache=True, the default)"
        )
    T, B, H = cache.dims
    arrays = {}
    if dh is not None:
        arrays["dh"] = v.float_array(fn, "dh", dh, 3, "(B, T, H)")
        v.expect_shape(fn, "dh", arrays["dh"], (B, T, H), "(B, T, H), the shape of the forward output h")
    for name, value in finals.items():
        if value is not None:
            arrays[name] = v.float_array(fn, name, value, 2, "(B, H)")
            v.expect_shape(fn, name, arrays[name], (B, H), "(B, H), the shape of the final state")
    for name, a in arrays.items():
        if a.dtype != cache.dtype:
            raise ValueError(
                f"{fn}: {name} has dtype {a.dtype} but the forward pass ran in {cache.dtype}; "
                f"convert it with {name}.astype(np.{cache.dtype})"
            )
    out = [arrays.get("dh")]
    for name in finals:
        out.append(arrays[name].copy() if name in arrays else np.zeros((B, H), cache.dtype))
    if not keep_cache:
        cache.spend(fn)
    return out


class NonFiniteResultError(v.NonFiniteError):
    """A result of a forward or backward call holds NaN or Inf although every input was finite: a
    value overflowed its dtype inside the computation. A ``ValueError`` (through
    :class:`bptt._validation.NonFiniteError`, which ``bptt.train.fit`` reports as the network
    diverging)."""


#: The per-step deltas are not checked: a NaN or Inf in ``dz`` reaches ``db``, its sum over the
#: steps and the batch, and one in the LSTM's ``dc`` reaches ``dz`` (a product with it; Inf · 0 is NaN).
_UNCHECKED_GRADIENTS = ("dz", "dc")


def _finite(a: np.ndarray) -> bool:
    """Whether ``a`` holds no NaN and no Inf: the compiled check of bptt.kernels.fast (once loaded)
    for a C- or F-contiguous ``a`` (the batch-major view of a feature-major result is the
    latter), NumPy's for the others."""
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        a = a.T
    if _fast_kernels is not None and a.flags.c_contiguous:
        return not _fast_kernels._has_non_finite(a)
    return bool(np.isfinite(a).all())


def _raise_if_overflowed(fn: str, results: dict, inputs: dict) -> None:
    """Raise :class:`NonFiniteResultError` if one of ``results`` (name → an array that holds it)
    holds NaN or Inf. Every one of ``inputs`` (name → array or None) was checked finite on the
    way in, so that is an overflow; the message names the result, the inputs by their largest
    magnitude and what to do.

    Of a forward pass, the final state ``h_T`` stands for all the states (:func:`_final_or_all`): a
    NaN or Inf in h_t reaches every unit of its sequence at step t + 1 (h_t U: NaN · u, ±Inf · 0
    and Inf − Inf are NaN, ±Inf · u ≠ 0 is ±Inf) and stays non-finite through σ, tanh, identity
    and the cells' gating; only a ReLU maps −Inf to 0, so the ReLU RNN's states are all checked."""
    for name, a in results.items():
        if not _finite(a):
            raise NonFiniteResultError(_overflow_message(fn, name, a, inputs))


#: What to scale down when the named input is the largest (any other: a parameter).
_OVERFLOW_REMEDIES = {
    "x": "standardise the data",
    "dh": "scale the loss down",
    "dh_last": "scale the loss down",
    "dc_last": "scale the loss down",
    "h0": "the initial state",
    "c0": "the initial state",
}


def _overflow_message(fn: str, name: str, a: np.ndarray, inputs: dict) -> str:
    what = "NaN" if np.isnan(a).any() else "Inf"
    dtype = a.dtype
    largest = sorted(((float(np.abs(x).max()), k) for k, x in inputs.items() if x is not None), reverse=True)
    (top, top_name), rest = largest[0], largest[1:4]
    then = f" (then {', '.join(f'{k} {m:.1e}' for m, k in rest)})" if rest else ""
    why = _OVERFLOW_REMEDIES.get(top_name, "the parameters may have diverged: lower the learning rate or clip the gradients")
    remedy = f"scale {top_name} down ({why})" + (" or run in float64" if dtype == np.float32 else "")
    return (
        f"{fn}: the result {name} holds {what} although every input is finite: a value overflowed {dtype} "
        f"(largest finite {np.finfo(dtype).max:.1e}) inside the computation. The largest input is "
        f"{top_name}: largest |value| {top:.1e}{then}; {remedy}"
    )


def _final_or_all(h: np.ndarray, activation: str = "tanh", layout: str = "tbf") -> np.ndarray:
    """The forward states :func:`_raise_if_overflowed` checks: the final state of ``h``, all of it
    for a ReLU. ``layout``: ``"tbf"`` the reference's ``(T, B, H)``, ``"ftb"`` the fast path's
    ``(H, T + 1, B)`` (slot 0 the initial state)."""
    if activation == "relu":
        return h
    return h[-1] if layout == "tbf" else h[:, -1]


def _checked_gradients(fn: str, grads: dict, cache, dh, finals: dict) -> dict:
    """``grads`` once :func:`_raise_if_overflowed` has checked them (not the per-step deltas, see
    :data:`_UNCHECKED_GRADIENTS`) against the backward call's inputs: ``dh``, the final-state
    gradients and what the cache holds of the forward call's inputs."""
    inputs = {"dh": dh, **finals, "x": cache.x_s, "W": cache.W, "U": cache.U, "h0": cache.h0}
    _raise_if_overflowed(fn, {k: g for k, g in grads.items() if k not in _UNCHECKED_GRADIENTS}, inputs)
    return grads


def _time_major_or_zeros(dh, cache):
    """``dh`` as the reference kernels' time-major ``(T, B, H)``; zeros when None."""
    T, B, H = cache.dims
    return np.zeros((T, B, H), cache.dtype) if dh is None else _bm(dh)


def _input_projection(x_tm, W, b):
    """Stage (1), input part, for all steps in one GEMM: ``x_t W + b`` as ``(T, B, G·H)``."""
    T, B, I = x_tm.shape
    xw = (x_tm.reshape(T * B, I) @ W).reshape(T, B, W.shape[1])
    xw += b
    return xw


def _input_projection_backward(x_tm, W, dz_tm):
    """Backward of :func:`_input_projection`: ``dx``, ``dW``, ``db`` from all steps' ``dz`` at once."""
    T, B, I = x_tm.shape
    dz2 = dz_tm.reshape(T * B, -1)
    dx = _bm((dz2 @ W.T).reshape(T, B, I))
    return dx, x_tm.reshape(T * B, I).T @ dz2, dz2.sum(axis=0)


def _recurrent_weight_grad(h0, h_tm, dz_tm):
    """``dU = Σ_t h_{t-1}ᵀ dz_t`` as two GEMMs (the first step's h_{t-1} is h0), no copy of h."""
    T, B, H = h_tm.shape
    dU = h0.T @ dz_tm[0]
    if T > 1:
        dU += h_tm[:-1].reshape((T - 1) * B, H).T @ dz_tm[1:].reshape((T - 1) * B, -1)
    return dU


# ── the fast path's layout: (features, T, B); see bptt.kernels.fast

#: The byte alignment of every array the compiled loops read or write step by step (:func:`_empty`) ...
ALIGN = 64
#: ... from this many bytes: below, the alignment's Python cost (1.8 µs against 0.3 for
#: ``np.empty``, several arrays a call) outweighs what it saves. With 64 KiB (and 3.9 µs an array
#: then) the small rows' training step was 0.88-0.97x against unaligned arrays; the grid's medium
#: row's per-step arrays are 1-8 MB. The workspaces, reused by later calls, are aligned whatever
#: their size.
ALIGN_MIN_BYTES = 1 << 19


def _aligns(nbytes: int, row_bytes: int) -> bool:
    """Whether :func:`_empty` aligns an array of ``nbytes`` whose rows (last axis) take ``row_bytes``."""
    return nbytes >= ALIGN_MIN_BYTES and row_bytes % ALIGN == 0


def _empty(shape, dtype, always: bool = False) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting on an :data:`ALIGN`-byte boundary, a cache line (a view
    of a slightly larger buffer). malloc aligns to 16 bytes only, and the rows of the fast
    layout's per-step arrays all start at the same offset from a cache line as the array does: a
    row's part of 16 float32 columns (the large row's loop parts) then spans two cache lines
    instead of one, and every vector load of it is split. Same-process A/B of the LSTM loops over
    arrays on a 64-byte boundary against 16 bytes past one (ms, 2-core AVX-512 Zen 4): backward
    medium 4.22 → 4.07, long 13.4 → 12.6, wide 35.8 → 30.3, large 120.7 → 88.4; cached forward
    medium 3.18 → 2.98, long 7.98 → 7.67, wide 26.8 → 24.6, large 109.8 → 105.5.

    Only arrays of at least :data:`ALIGN_MIN_BYTES` whose rows (the last axis) are a whole number
    of cache lines: for other rows, aligning the array cannot align them all, and those are
    plain ``np.empty`` arrays. ``always``: aligned whatever the shape (workspaces and scratch buffers)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    if not (always or _aligns(n, shape[-1] * dtype.itemsize)):
        return np.empty(shape, dtype)
    buf = np.empty(n + ALIGN, np.uint8)
    # the address by ctypes.c_char (0.7 µs; buf.ctypes.data takes 1.8) and a view by the ndarray
    # constructor (0.6 µs against 1.0 for slicing, view and reshape)
    s = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % ALIGN
    return np.ndarray(shape, dtype, buf, s)


def _fm(a: np.ndarray) -> np.ndarray:
    """Feature-major ``(F, T, B)`` ↔ batch-major ``(B, T, F)`` view."""
    return a.transpose(2, 1, 0)


#: The input projection of a float32 call runs on bptt's micro-kernel (``Wᵀ (G·H, I)`` in 8 × 32
#: tiles over the T·B columns, the rows and columns left over by the hand-written product), on
#: two threads, each over half of the columns, from this many flops. Measured on the grid (µs, NumPy's OpenBLAS with its Haswell
#: kernels → the micro-kernel): tutorial LSTM 57 → 12, small 64 → 20 (one thread); medium
#: 686 → 439, long 1152 → 716, large 19881 → 12455 (two threads).
PROJECTION_TWO_THREADS_FLOPS = 20e6


def _fm_input_projection(x_fm, W, G_H, T=None, keep=True):
    """``x_t W`` for all steps as one product ``Wᵀ (G·H, I) @ X (I, T·B)`` into a feature-major
    ``(G·H, T, B)`` array, ``x_fm`` the C-contiguous feature-major ``(I, S, B)`` inputs, of whose
    S slots the first T (default: all) are the steps (see :func:`_fm_stacked`). ``keep`` False:
    the result is used within the call only (a :func:`_scratch` array)."""
    I, S, B = x_fm.shape
    T = S if T is None else T
    N = T * B
    out = _empty((G_H, T, B), x_fm.dtype) if keep else _scratch("projection", (G_H, T, B), x_fm.dtype)
    if x_fm.dtype != np.float32 or not _own_kernel_on():
        np.matmul(W.T, x_fm.reshape(I, S * B)[:, :N], out=out.reshape(G_H, N))
        return out
    F = _fast()
    args = (_transposed(W), x_fm.reshape(I, 1, S * B), out.reshape(G_H, 1, N))
    half = N // 64 * 32
    if 2 * N * I * G_H >= PROJECTION_TWO_THREADS_FLOPS and half and blas_max_threads() >= 2:
        run_in_two_threads(F.project, (*args, 0, half), (*args, half, N))
    else:
        F.project(*args, 0, N)
    return out


def _fm_input_projection_backward(x_fm, W, dz, dx_fm=None):
    """``dx``, ``dW``, ``db`` from the feature-major ``dz (G·H, T, B)``: one GEMM each, both with
    the long T·B axis as the contiguous one of their operands: ``dxᵀ (I, T·B) = W @ dz`` (returned
    as a batch-major view of the feature-major result) and ``dWᵀ (G·H, I) = dz @ Xᵀ``. Measured
    against ``dz.T @ W.T`` and ``X @ dz.T`` (ms, 4H × T·B of the grid's medium, long, wide, large
    rows): dx 1.71 → 1.26, 2.79 → 2.33, 7.43 → 5.94, 22.8 → 21.7; dW 1.68 → 1.22, 2.33 → 1.86,
    7.32 → 5.67, 22.2 → 20.2. ``dx_fm``: dxᵀ already computed by the backward loop, as for
    :func:`_fm_weight_grads`."""
    I, T, B = x_fm.shape
    dz2 = dz.reshape(dz.shape[0], T * B)
    dx = _fm((W @ dz2).reshape(I, T, B) if dx_fm is None else dx_fm[:I])
    X = x_fm.reshape(I, T * B)
    if _dot_tiles_for(X, dz2):
        return (dx, *_dot_product(X, dz2, sums=True))
    return dx, _transposed(dz2 @ X.T), _row_sums(dz2)


def _fm_stacked(x, h0, T):
    """The inputs ``x (B, T, I)`` and the states in one feature-major array ``xh (I + H, T + 1, B)``:
    rows [0, I) hold x_t in slot t < T (slot T is never read), rows [I, I + H) the states, h0 in
    slot 0 (the time loops write h_t into slot t + 1). So ``[x_t; h_{t-1}]`` of all steps is one
    matrix of T·B columns, and dW and dU one GEMM (:func:`_fm_weight_grads`)."""
    B, T, I = x.shape
    xh = _empty((I + h0.shape[1], T + 1, B), x.dtype)
    _fast().to_feature_major(np.ascontiguousarray(x), xh[:I])
    xh[I:, 0] = h0.T
    return xh


def _tm_stacked(x, h0, T):
    """The inputs ``x (B, T, I)`` and the states in one **time-major** array ``xh (T + 1, I + H, B)``
    for inference (:func:`_time_major_inference`): ``xh[t]`` holds ``[x_t; h_{t-1}]``, one
    contiguous block (``xh[0, I:]`` the initial state, ``xh[T, :I]`` never read)."""
    B, T, I = x.shape
    xh = _empty((T + 1, I + h0.shape[1], B), x.dtype)
    _fast().to_feature_major(np.ascontiguousarray(x), xh[:T, :I].transpose(1, 0, 2))
    xh[0, I:] = h0.T
    return xh


def _tm_states(xh, I):
    """The states h_1 … h_T of a time-major :func:`_tm_stacked` array as a batch-major ``(B, T, H)`` view."""
    return xh[1:, I:].transpose(2, 0, 1)


def _dx_in_loop(W: np.ndarray, plan: _LoopPlan, T: int):
    """``(Wp, dx)`` for a backward loop (LSTM, GRU) that computes ``dx_t = W dz_t`` at each step,
    on bptt's micro-kernel: W's rows padded with zeros to a multiple of its tile's rows, and the
    padded feature-major ``dx (Ip, T, B)`` it writes; or two empty arrays (then
    :func:`_fm_weight_grads` or :func:`_fm_input_projection_backward` computes dx as one GEMM)
    where the micro-kernel would not take that product on its main tile (``MR × NC``): float64,
    no micro-kernel, or loop parts whose width is no multiple of NC. The large row's parts of 16
    columns would take the 16 × 16 tile, slower than the GEMM after the loop: training step
    0.94x. Same-process A/B of the LSTM training step (ms, Zen 5): medium 9.37 → 8.53, long
    17.8 → 16.9, wide 54.2 → 54.0; of the GRU's (two runs, Zen 4): medium 11.7 → 11.5 and
    11.8 → 11.2, long 26.3 → 25.6 and 29.8 → 28.7, wide 81.5 → 80.4 and 67.0 → 65.1. Not the
    RNN's (G·H = H rows, the cheapest steps): 0.87-1.06x."""
    mk = _kernel("microkernel")
    MR, NC = mk.MR, mk.NC

    if (plan.own != 2 or plan.blas is None or any(w % NC for w in plan.widths) or W.dtype != np.float32
            or env("BPTT_DX_IN_LOOP") == "0"):  # the cheap tests first: small calls take ~0.1 ms
        return np.empty((0, 1), W.dtype), np.empty((0, 1, 1), W.dtype)
    I = W.shape[0]
    Ip = -(-I // MR) * MR
    Wp = np.zeros((Ip, W.shape[1]), W.dtype)
    Wp[:I] = W
    return Wp, _empty((Ip, T, plan.B), W.dtype)


def _fm_weight_grads(xh, W, dz, T, dx_fm=None):
    """``dx``, ``dW``, ``dU``, ``db`` from the feature-major ``dz (G·H, T, B)`` and the stacked
    inputs and states of :func:`_fm_stacked`: ``dxᵀ = W @ dz`` as in
    :func:`_fm_input_projection_backward`, and ``[dW; dU]ᵀ (G·H, I + H) = dz @ [X; H_prev]ᵀ`` as
    one GEMM (its second operand a view: rows (T + 1)·B apart). Against the two GEMMs ``dz @ Xᵀ``
    and ``H_prev @ dzᵀ`` (ms, medium, long, wide, large LSTM rows): 3.52 → 2.57, 8.09 → 6.72,
    26.9 → 23.1, 96.0 → 86.8. ``dx_fm``: dxᵀ already computed, feature-major ``(≥ I, T, B)``
    (the backward loop's, :func:`_dx_in_loop`; its first I rows are dx)."""
    I = W.shape[0]
    B = dz.shape[2]
    dz2 = dz.reshape(dz.shape[0], T * B)
    dx = _fm((W @ dz2).reshape(I, T, B) if dx_fm is None else dx_fm[:I])
    XH = xh[:, :T].reshape(xh.shape[0], T * B)
    if _dot_tiles_for(XH, dz2):
        WU, db = _dot_product(XH, dz2, sums=True)  # [dW; dU] in their own layout
        return dx, WU[:I], WU[I:], db
    dWU = dz2 @ XH.T
    return dx, _transposed(dWU[:, :I]), _transposed(dWU[:, I:]), _row_sums(dz2)


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` of a C-contiguous 2-D array as a BLAS product with a vector of ones (the
    bias gradients): accumulated as the weight-gradient GEMMs beside it are, on BLAS's threads.
    ms, 4H × T·B of the grid's medium, long, wide, large rows: 0.48 → 0.11, 0.72 → 0.14,
    1.67 → 0.64, 3.05 → 1.72."""
    return a @ np.ones(a.shape[1], a.dtype)


def _fm_recurrent_weight_grad(h_ext, dz, sums=False):
    """``dU = Σ_t h_{t-1}ᵀ dz_t`` as one GEMM: slots 0 … T-1 of ``h_ext (H, T + 1, B)`` are
    h_0 … h_{T-1}, a contiguous column range of width T·B."""
    H, T1, B = h_ext.shape
    return _rows_product(h_ext[:, : T1 - 1].reshape(H, (T1 - 1) * B), dz.reshape(dz.shape[0], (T1 - 1) * B),
                         sums=sums)


def _rows_product(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None, sums: bool = False):
    """``A @ Bᵀ`` (into ``out`` when given) by :func:`_dot_product` where it applies, else by BLAS;
    ``sums``: ``(A @ Bᵀ, B.sum(axis=1))``."""
    if _dot_tiles_for(A, B):
        return _dot_product(A, B, out, sums)
    product = np.matmul(A, B.T, out=out)
    return (product, _row_sums(B)) if sums else product


#: The weight-gradient products ``A Bᵀ`` (M × N, over K = T·B) take bptt's dot tiles
#: (:func:`_dot_product`) up to this many values M·N, OpenBLAS beyond. Both operands are rows
#: contiguous in k, as the dot tiles read them, while OpenBLAS packs them first and splits its two
#: threads over M and N, which are short here. Same-process, against ``A @ B.T`` (ms, float32, two
#: threads, Zen 4): M × N × K 96 × 64 × 7680 (the RNN's medium row) 0.90 → 0.64, 32 × 192 × 7680
#: 0.79 → 0.68, 64 × 192 × 7680 1.50 → 1.28, 96 × 256 × 7680 2.78 → 2.72, 160 × 512 × 6400
#: 7.08 → 6.75, 160 × 128 × 6400 2.83 → 1.91; beyond it OpenBLAS wins: 320 × 1024 × 6400
#: 24.1 → 26.5, 640 × 512 × 6400 25.2 → 30.0, 640 × 2048 × 6400 87.8 → 107.
DOT_TILES_MAX_OUTPUT = 1 << 17

#: ... and from this many flops (2·M·N·K) on, where the dot tiles run on two threads: below it the
#: worker's wake-up (tens of µs) costs more than the second core saves, and OpenBLAS, on one
#: thread there (:data:`WAKEUP_SINGLE_THREAD_FLOPS`), was as fast as one thread of dot tiles.
DOT_TILES_MIN_FLOPS = 8e6


def _dot_tiles_for(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether :func:`_dot_product` takes ``A @ Bᵀ``: float32, rows contiguous, an output of at most
    :data:`DOT_TILES_MAX_OUTPUT` values and at least :data:`DOT_TILES_MIN_FLOPS`, bptt's
    micro-kernels on (``BPTT_OWN_KERNEL``, :func:`_own_kernel_on`) and ``BPTT_DOT_TILES`` not 0."""
    M, N = A.shape[0], B.shape[0]
    rows_contiguous = A.strides[1] == B.strides[1] == 4 or A.shape[1] == 1
    return (A.dtype == np.float32 and B.dtype == np.float32 and rows_contiguous and M * N <= DOT_TILES_MAX_OUTPUT
            and 2 * M * N * A.shape[1] >= DOT_TILES_MIN_FLOPS and _own_kernel_on() and env("BPTT_DOT_TILES") != "0")


@functools.lru_cache(maxsize=1)
def _ones_block() -> np.ndarray:
    """NT_BLOCK float32 ones: the row of A that makes bptt.kernels.fast.nt_product sum B's rows."""
    return np.ones(_fast().NT_BLOCK, np.float32)


def _dot_product(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None, sums: bool = False):
    """``out (M, N) = A (M, K) @ B (N, K)ᵀ`` by bptt.kernels.fast.nt_product (see
    :func:`_dot_tiles_for`); ``out`` a new C-contiguous array unless given (rows contiguous).
    Its rows are cut in two for two threads (one with ``BPTT_LOOP_THREADS=1`` or BLAS limited to
    one thread). ``sums``: return ``(out, B.sum(axis=1))``, the sums from the same pass over B
    (on the second thread)."""
    (M, K), N = A.shape, B.shape[0]
    if out is None:
        out = np.empty((M, N), A.dtype)
    row_sums = np.empty(N if sums else 0, A.dtype)
    no_sums = row_sums[:0]
    nt, ones = _fast().nt_product, _ones_block()
    step = _kernel("microkernel").DOT_ROWS[0]
    cut = (M // 2 + step // 2) // step * step
    if not 0 < cut < M or env("BPTT_LOOP_THREADS") == "1" or blas_max_threads() < 2:
        nt(A, B, out, 0, M, ones, row_sums)
    else:
        run_in_two_threads(nt, (A, B, out, 0, cut, ones, no_sums), (A, B, out, cut, M, ones, row_sums))
    return (out, row_sums) if sums else out


def _states_ext(h0, T):
    """A fast-path state array ``(H, T + 1, B)`` with the initial ``(B, H)`` state in slot 0."""
    B, H = h0.shape
    out = _empty((H, T + 1, B), h0.dtype)
    out[:, 0] = h0.T
    return out


def _state_in(a):
    """A ``(B, H)`` state as the fast path's contiguous ``(H, B)``, always a new array: the
    backward loops use these as running state, and for H = 1 ``np.ascontiguousarray(a.T)`` would
    be a view of ``a`` itself. Aligned as :func:`_empty` would (its rule tested here first: a
    state is small, and ``np.array`` copies in 1.2 µs against 2.1 through :func:`_empty`)."""
    if not _aligns(a.nbytes, a.shape[0] * a.itemsize):
        return np.array(a.T, order="C", copy=True)
    out = _empty(a.shape[::-1], a.dtype)
    out[...] = a.T
    return out


def _state_out(a):
    """The fast path's ``(H, B)`` state as a contiguous ``(B, H)`` array for the caller."""
    return np.ascontiguousarray(a.T)


@dataclass(frozen=True, eq=False)
class _Cache:
    """What a forward pass stores for its backward pass.

    ``layout`` says how the per-step arrays are stored: ``"tbf"`` — time-major ``(T, B, ·)``, by
    the reference kernels; ``"ftb"`` — feature-major ``(·, T, B)``, by the fast kernels. The
    properties give batch-major ``(B, T, ·)`` views either way.
    """

    layout: str  # "tbf" (reference kernels) or "ftb" (fast kernels; states with slot 0 = initial)
    x_s: np.ndarray  # the inputs: (T, B, I) for "tbf", (I, T, B) for "ftb"
    W: np.ndarray
    U: np.ndarray
    h0: np.ndarray
    gates_s: np.ndarray
    h_s: np.ndarray

    @property
    def spent_by(self) -> str | None:
        """The backward function that spent this cache (``keep_cache=False``), or None."""
        return self.__dict__.get("_spent_by")

    def spend(self, fn: str) -> None:
        """Mark the cache as spent by the backward ``fn``, which may write over its gate values
        (and the LSTM's cell states)."""
        object.__setattr__(self, "_spent_by", fn)

    def _check_unspent(self, name: str, what: str) -> None:
        if self.spent_by:
            raise ValueError(
                f"cache.{name}: this cache was spent by {self.spent_by}(..., keep_cache=False), which may write "
                f"its gradients over the {what}; read cache.{name} before that call, or call it with "
                f"keep_cache=True (the default)"
            )

    def _bm(self, a: np.ndarray) -> np.ndarray:
        """A stored per-step array as a read-only batch-major ``(B, T, ·)`` view."""
        return _readonly(_bm(a) if self.layout == "tbf" else _fm(a))

    def _states_bm(self, a: np.ndarray) -> np.ndarray:
        """A per-step state array as ``(B, T, H)``; the fast layout drops its slot 0 (the initial state)."""
        return _readonly(_bm(a) if self.layout == "tbf" else _fm(a[:, 1:]))

    @property
    def dtype(self) -> np.dtype:
        return self.h_s.dtype

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(T, B, H)``."""
        T, B = self.x_s.shape[:2] if self.layout == "tbf" else self.x_s.shape[1:]
        return T, B, self.U.shape[0]

    @property
    def n_inputs(self) -> int:
        """I, the input features per step."""
        return self.W.shape[0]

    @property
    def gates(self) -> np.ndarray:
        """Post-activation gate values at every step, ``(B, T, G·H)`` in the cell's gate order."""
        self._check_unspent("gates", "gate values")
        return self._bm(self.gates_s)

    @property
    def h(self) -> np.ndarray:
        """Hidden state at every step, ``(B, T, H)``."""
        return self._states_bm(self.h_s)


# ─────────────────────────────────────────────────────────────────────── backend choice

BACKENDS = ("fast", "reference")

#: Below this many multiply-adds per step in the recurrent product, the fast path runs the whole
#: time loop in one compiled call with a hand-written product; above it, a BLAS GEMM per step.
SMALL_STEP_FMAS = 1 << 15

_fast_kernels = None


@functools.cache
def _kernel(name: str):
    """The module bptt.kernels.<name> (microkernel, blas, sync: Numba's, loaded on first use), in
    0.1 µs where an ``import`` statement in a function takes 0.7."""
    return importlib.import_module(f".kernels.{name}", __package__)


def _fast():
    """The compiled kernels (imported on first use, so that ``import bptt`` stays light)."""
    global _fast_kernels
    if _fast_kernels is None:
        from ._memory import keep_freed_memory
        from .kernels import fast

        keep_freed_memory()  # see bptt._memory: 40 % of a mid-size training step was page faults
        _fast_kernels = fast
    return _fast_kernels


def _backend(fn: str, backend) -> str:
    if backend is None:
        return default_backend()
    return v.choice(fn, "backend", backend, BACKENDS)


def default_backend() -> str:
    """``"fast"`` when Numba is importable, else ``"reference"``; ``BPTT_BACKEND`` overrides."""
    name = env("BPTT_BACKEND")
    if name:
        return v.choice("BPTT_BACKEND", "the environment variable BPTT_BACKEND", name, BACKENDS)
    try:
        _fast()
    except ImportError:  # pragma: no cover - numba is a dependency; this is the last resort
        return "reference"
    return "fast"


#: Below this many flops in a call's GEMMs (forward: 2·T·B·(I+H)·G·H), the fast path runs BLAS
#: single-threaded. 0 (the default) leaves BLAS's threading alone: on an idle 2-core machine two
#: threads were faster at every benchmark size (by ~15 % even at 3 MFLOP), while on a busy one a
#: single thread avoids threads waiting for a core (3.7x faster for the tutorial network in a
#: profile on a loaded machine). Raise it on machines shared with other work.
SINGLE_THREAD_FLOPS = 0

#: When OpenBLAS's idle threads go to sleep at once (``OPENBLAS_THREAD_TIMEOUT`` below
#: :data:`SPINNING_TIMEOUT`), every threaded GEMM first pays for waking them: 35-80 µs here, more
#: than a second thread saves on a GEMM below about 20 MFLOP (timed on this project's 2-core
#: machine with the timeout at 4: 2.4 MFLOP 57 µs threaded vs 34 µs single, 16 MFLOP 196 vs
#: 169 µs, 33 MFLOP 242 vs 354 µs). Then GEMMs below this many flops run single-threaded: the
#: whole call when its GEMMs are this small, and the per-step products of the time loop when they are.
WAKEUP_SINGLE_THREAD_FLOPS = 20e6

#: OpenBLAS's default timeout is 28 (2^28 cycles of spinning before a thread sleeps); from about
#: 2^18 cycles on, idle threads still spin between the steps of a time loop.
SPINNING_TIMEOUT = 18


@functools.lru_cache(maxsize=1)
def _threads_sleep_at_once() -> bool:
    """Read once, like OpenBLAS itself, which reads the variable when it loads."""
    try:
        return int(env("OPENBLAS_THREAD_TIMEOUT", "")) < SPINNING_TIMEOUT
    except ValueError:
        return False


def _single_thread_flops() -> float:
    return max(SINGLE_THREAD_FLOPS, WAKEUP_SINGLE_THREAD_FLOPS if _threads_sleep_at_once() else 0)


def _loop_threads(B: int, H: int, G: int):
    """The BLAS threading context for the per-step products of a time loop (``2·B·G·H·H`` flops each)."""
    return single_threaded_if(2 * B * G * H * H < _single_thread_flops())


#: A time loop runs on two threads, each over its own part of the batch, when its work
#: ``T·B·G·H·(2H + LOOP_ELEMENTWISE)`` (the products' flops plus the gate arithmetic, weighed as
#: that many flops per gate value) reaches this. The sequences of a batch are independent until
#: the weight gradients, which are GEMMs after the loop: the two threads never wait for each
#: other, and each runs its products single-threaded, so the gate arithmetic runs on both cores
#: as well. Below it, starting the second thread (tens of µs; over 100 µs when its core was idle)
#: costs more than it saves.
SPLIT_LOOP_WORK = 40e6
LOOP_ELEMENTWISE = 40

#: ... and when each part keeps at least this many batch columns (16 where bptt's micro-kernel
#: takes the products): narrower BLAS products run far below the GEMM rate (the large row, B = 32,
#: in two parts of 16 with OpenBLAS: inference 1.2x slower than on one thread).
LOOP_SPLIT_MIN_COLUMNS = 32


def _loop_split(T: int, B: int, H: int, G: int, dtype) -> int:
    """Where the batch is cut for a two-thread time loop (columns ``[0, s)`` here, ``[s, B)`` on
    the worker), or 0 for one thread. The cut lies on a 64-byte boundary (no cache line shared
    by the two threads), on a multiple of 32 when both parts can then use the micro-kernel, and
    leaves each part at least :data:`LOOP_SPLIT_MIN_COLUMNS` wide. ``BPTT_LOOP_THREADS=1`` keeps
    every loop on one thread; ``=2`` splits every loop it can (any cut on a 64-byte boundary)."""
    force = env("BPTT_LOOP_THREADS")
    if force == "1" or (force != "2" and T * B * G * H * (2 * H + LOOP_ELEMENTWISE) < SPLIT_LOOP_WORK):
        return 0
    can_tile = _kernel("microkernel").can_tile

    if blas_max_threads() < 2:  # the user (or the machine) allows one thread
        return 0
    step = 64 // np.dtype(dtype).itemsize
    if B % 64 == 0 and np.dtype(dtype) == np.float32:
        step = 32
    split = (B // 2 + step // 2) // step * step
    if force == "2":
        narrowest = 1
    elif _own_kernel(16, H, G, dtype, one_thread=True) and can_tile(H, 16):
        # 16-column parts still run at ~180 GFLOP/s on the micro-kernel, when it takes the
        # backward products (H rows) as well as the forward ones (G·H rows)
        narrowest = 16
    else:
        narrowest = LOOP_SPLIT_MIN_COLUMNS
    return split if narrowest <= split <= B - narrowest else 0


def _small(B: int, H: int, G: int) -> bool:
    return B * H * G * H <= SMALL_STEP_FMAS


def _driver(B: int, H: int, G: int, dtype, one_thread: bool = False) -> tuple[int | None, int]:
    """How the recurrent product runs: ``(blas, own)``. ``blas`` is 0 for the hand-written product
    inside the compiled loop (small sizes), the address of NumPy's BLAS GEMM to call from the
    compiled loop, or None for the Python loop with ``np.matmul`` (no callable BLAS symbol).
    ``own``: where bptt's float32 micro-kernel does the products (see :func:`_own_kernel`).
    ``one_thread``: BLAS will run single-threaded (each of a two-thread loop's parts). Small
    products never run on BLAS's threads, so the micro-kernel takes them wherever it may run at
    all (the small LSTM row's forward loop, against the hand-written product: 92 → 49 µs)."""
    if _small(B, H, G):
        return 0, _own_kernel(B, H, G, dtype, one_thread=True)
    own = _own_kernel(B, H, G, dtype, one_thread)
    gemm_address = _kernel("blas").gemm_address

    return gemm_address(dtype) or None, own


@dataclass(frozen=True)
class _LoopPlan:
    """How a time loop runs (:func:`_loop_plan`): over the whole batch (``split`` 0) or over the
    columns ``[0, split)`` and ``[split, B)`` on two threads, with the product ``(blas, own)`` of
    :func:`_driver` (``blas`` None: no BLAS symbol can be called, the caller's Python loop runs)."""

    B: int
    split: int
    blas: int | None
    own: int

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.split, self.B - self.split) if self.split else (self.B,)


def _loop_plan(T: int, B: int, H: int, G: int, dtype) -> _LoopPlan:
    """The threading :func:`_loop_split` chooses and the product :func:`_driver` chooses for it."""
    split = _loop_split(T, B, H, G, dtype)
    if not split:
        return _LoopPlan(B, 0, *_driver(B, H, G, dtype))
    return _LoopPlan(B, split, *_driver(math.gcd(split, B - split), H, G, dtype, one_thread=True))


def _compiled_loop(driver, T: int, B: int, H: int, G: int, dtype, *args, plan: _LoopPlan | None = None) -> bool:
    """Run ``driver(blas, own, *args, b0, b1)``, a compiled time loop of bptt.kernels.fast over
    the batch columns ``[b0, b1)``, as ``plan`` (default: :func:`_loop_plan`) says: over the whole
    batch (BLAS threaded as :func:`_loop_threads` says), or over two parts on two threads. False
    (nothing run) when no BLAS symbol can be called: the caller then runs its Python loop with
    ``np.matmul``."""
    plan = plan or _loop_plan(T, B, H, G, dtype)
    if plan.blas is None:
        return False
    if not plan.split:
        if plan.blas == 0:  # no BLAS call in the loop: its threading does not matter
            driver(plan.blas, plan.own, *args, 0, B)
            return True
        with _loop_threads(B, H, G):
            driver(plan.blas, plan.own, *args, 0, B)
        return True
    with single_threaded_if(True):
        run_in_two_threads(driver, (plan.blas, plan.own, *args, 0, plan.split),
                           (plan.blas, plan.own, *args, plan.split, B))
    return True


def _projection_in_loop(plan: _LoopPlan, I: int, H: int, G: int) -> bool:
    """Whether the forward loop's per-step product takes the inputs too, ``[W; U]ᵀ [x_t; h_{t-1}]``
    (K = I + H), instead of adding ``h_{t-1} U`` to the input projection of all steps, one product
    before the loop. Then no ``(G·H, T, B)`` projection is written before the loop and read back,
    cold, by it (inference keeps one step's gates, in cache). Same-process A/B of a prototype
    against the loops with the projection first, LSTM (µs; with ``OPENBLAS_THREAD_TIMEOUT=4``, as
    ``bptt bench`` runs), inference: tmva-tutorial 118 → 84,
    tmva-test 54 → 29, small 176 → 138, medium 2916 → 2848, long 7632 → 6644, wide 29776 → 28117,
    large 110.4 → 103.0 ms; the cached forward: tutorial 125 → 89, small 192 → 152, medium
    5530 → 5051, long 7901 → 7266, wide 24441 → 23296, large 105.9 → 101.8 ms. GRU inference
    (three products a step: r and z over [x_t; h_{t-1}], W_nᵀ x_t, U_nᵀ h_{t-1}): medium
    3.99 → 3.37, long 9.39 → 6.94, wide 21.2 → 19.0, large 92.2 → 72.9 ms; the tutorial row
    (BLAS per product, two more calls a step) 0.142 → 0.150 ms. Not where the
    hand-written product runs the loop (blas 0 and no micro-kernel tile): it is an
    output-stationary loop over K, and for the small row 4x slower with K = I + H (182 µs) than the
    projection on the micro-kernel plus the loop with K = H (50 + 49 µs)."""
    if plan.blas != 0:  # BLAS, or np.matmul in the caller's Python loop
        return True
    mk = _kernel("microkernel")
    FORWARD_SHAPES, can_tile = mk.FORWARD_SHAPES, mk.can_tile

    M, K = G * H, I + H
    tiles = plan.own == 2 or (plan.own == FORWARD_SHAPES and M >= K)
    return tiles and all(can_tile(M, w) for w in plan.widths)


def _time_major_inference(plan: _LoopPlan, I: int, H: int, G: int) -> bool:
    """Whether an inference forward runs over the time-major :func:`_tm_stacked` array: where its
    compiled loop's product takes the inputs too (:func:`_projection_in_loop`). Step t's operand
    ``[x_t; h_{t-1}]`` is then one contiguous block, where in the feature-major layout its rows
    lie ``(T + 1)·B`` values apart (25.7 KB on the large row: a stride the prefetchers do not
    follow, whose rows share few cache sets). The large LSTM row's products alone, two threads
    over 16 columns each: 245 GFLOP/s over the feature-major rows, 320 over time-major blocks."""
    return plan.blas is not None and _projection_in_loop(plan, I, H, G)


def _units_split(T: int, B: int, H: int, G: int, dtype, plan: _LoopPlan | None = None) -> int:
    """Where the hidden units are cut for a two-thread forward loop split by units (units
    ``[0, cut)`` here, ``[cut, H)`` on the worker; :func:`_run_units_split`), or 0 for the loop of
    :func:`_compiled_loop`. Both parts' products, G blocks of rows over the whole batch, must suit
    bptt's micro-kernel (float32, the tiles of bptt.kernels.microkernel). Work below
    :data:`SPLIT_LOOP_WORK` stays on one thread, as for :func:`_loop_split`;
    ``BPTT_LOOP_THREADS=1`` keeps every loop on one thread, ``=2`` splits every loop whose parts
    suit the micro-kernel; ``BPTT_UNITS_SPLIT=0`` leaves the choice to :func:`_loop_split` (for
    measurement). ``plan``: the loop's :func:`_loop_plan`, when the caller has it.

    Against the batch cut of :func:`_loop_split`, LSTM inference, time-major, same-process A/B (ms,
    2-core AVX-512 Zen 5): medium 2.15 → 2.04, long 4.87 → 4.62, wide 14.2 → 13.5, large
    57.9 → 48.1. Each part's product runs on the 8 × 32 tile over the whole batch (the large row's
    parts of 16 columns took the slower 16 × 16 one), and each thread reads half of the weights.
    The cached forward (feature-major): medium 3.48 → 3.04, long 7.93 → 7.30, wide 18.2 → 16.2,
    large 75.2 → 62.2. Not the backward loop: its product ``dz_t Uᵀ`` needs all of dz_t, so the
    threads meet between cell and product, and each reads the whole of dz_t, half of it from the
    other core: training step 0.87-0.97x on the medium, long and large rows.

    The GRU splits so in its reset-after form (the reset-before n block's product needs
    r ⊙ h_{t-1} of every unit first): inference, ms, medium 2.17 → 1.79, long 5.90 → 4.72, wide
    12.2 → 11.0, large 56.7 → 48.4; training step medium 11.5 → 10.7, long 22.2 → 22.1, wide
    51.1 → 49.7, large 215 → 189.

    The simple RNN (``G`` 1), whose steps are the cheapest, splits by units only where the batch
    cut leaves parts narrower than the main tile's :data:`bptt.kernels.microkernel.NC` columns
    (the large row): inference, ms, medium 0.82 → 0.91, long 1.39 → 1.48, wide 4.30 → 4.70,
    large 16.4 → 13.4."""
    small = T * B * G * H * (2 * H + LOOP_ELEMENTWISE) < SPLIT_LOOP_WORK
    force = env("BPTT_LOOP_THREADS")
    if small and force != "2":
        return 0  # first: the small rows' calls take tens of µs, the tests below several
    mk = _kernel("microkernel")
    MR, NC, can_tile = mk.MR, mk.NC, mk.can_tile

    if (np.dtype(dtype) != np.float32 or not _own_kernel_on() or env("BPTT_UNITS_SPLIT") == "0"
            or force == "1" or blas_max_threads() < 2):
        return 0
    if G == 1 and force != "2" and min((plan or _loop_plan(T, B, H, G, dtype)).widths) >= NC:
        return 0
    cut = (H // 2 + MR // 2) // MR * MR
    return cut if 0 < cut < H and can_tile(cut, B) and can_tile(H - cut, B) else 0


def _run_units_split(driver, blas, args: tuple, cut: int, H: int) -> None:
    """``driver(blas, 2, *args, flags, p, j0, j1)`` on two threads meeting after every step: this
    one over the units ``[0, cut)``, bptt's worker over ``[cut, H)``, both on the micro-kernel.
    Calls from several threads at once stay correct: bptt has one worker, so a second caller's
    half waits (spinning, then yielding its core) until the worker has finished the first call's."""
    STRIDE = _kernel("sync").STRIDE

    flags = np.zeros(2 * STRIDE, np.int64)
    with single_threaded_if(True):
        run_in_two_threads_meeting(driver, (blas, 2, *args, flags, 0, 0, cut), (blas, 2, *args, flags, 1, cut, H),
                                   flags)


def _loop_matrix(W: np.ndarray, U: np.ndarray, k0: int) -> np.ndarray:
    """The forward loops' matrix over ``xh[k0:, t]``, C-contiguous: ``[W; U]ᵀ (G·H, I + H)`` when
    their products take the inputs too (``k0`` 0, see :func:`_projection_in_loop`), else ``Uᵀ``."""
    if k0:
        return _transposed(U)
    I = W.shape[0]
    out = np.empty((W.shape[1], I + U.shape[0]), W.dtype)
    _transpose_into(W, out, 0)
    _transpose_into(U, out, I)
    return out


def _loop_inputs(xh, W, U, plan: _LoopPlan, G: int, T: int, keep: bool, name: str):
    """``(k0, pre, A)`` for a forward loop over ``xh`` (:func:`_fm_stacked`): where its products
    take the inputs (:func:`_projection_in_loop`), ``k0`` 0, ``pre`` the array they write (a slot
    per step when ``keep``, else one ``(G·H, 1, B)`` workspace slot named ``name``) and
    ``A = [W; U]ᵀ``; else ``k0`` I, ``pre`` the input projection of all steps and ``A = Uᵀ``."""
    I, H, B = W.shape[0], U.shape[0], xh.shape[2]
    if _projection_in_loop(plan, I, H, G):
        pre = _empty((G * H, T, B), xh.dtype) if keep else _workspace(name, (G * H, 1, B), xh.dtype)
        return 0, pre, _loop_matrix(W, U, 0)
    return I, _fm_input_projection(xh[:I], W, G * H, T, keep=keep), _loop_matrix(W, U, I)


def _transposed(a: np.ndarray) -> np.ndarray:
    """A new C-contiguous copy of ``a.T`` (2-D)."""
    out = np.empty(a.shape[::-1], a.dtype)
    _transpose_into(a, out, 0)
    return out


def _transpose_into(a: np.ndarray, out: np.ndarray, c0: int) -> None:
    """``out[:, c0:c0 + a.shape[0]] = a.T`` (``out`` C-contiguous): by bptt.kernels.fast.transpose_into
    for a C-contiguous ``a`` at least as wide as tall (the weight matrices, ``(I or H, G·H)``), where
    it is up to 7x faster than NumPy's strided copy (µs: (512, 2048) 3276 → 761, (128, 512)
    137 → 28, (30, 256) 4.1 → 4.3), else by NumPy, faster for tall sources ((2048, 128): 219
    against 467), strided views and tiny arrays."""
    if a.flags.c_contiguous and a.shape[1] >= a.shape[0] and a.size >= 4096:
        _fast().transpose_into(a, out, c0)
    else:
        out[:, c0:c0 + a.shape[0]] = a.T


#: Without AVX-512 (bptt.kernels.microkernel.WIDE False) the micro-kernel's 4 × 16 tile reaches
#: about OpenBLAS's single-core rate, not more, and it is kept out by default (``BPTT_OWN_KERNEL=1``
#: still forces it). Same-process A/B on a 2-core AVX2 AMD EPYC, OpenBLAS everywhere against the
#: tile where the AVX-512 rules would put it: OpenBLAS faster on the large rows (training step
#: LSTM 1.18 vs 1.73 s, GRU 0.82 vs 1.16 s, RNN 231 vs 312 ms; inference 1.2-1.7x), RNN wide
#: (1.2-1.35x) and RNN medium inference (1.15x); the tile faster on LSTM wide and medium inference
#: (1.20x, 1.13x) and RNN medium training (1.13x); within ±12 % on the other rows, ±9 % on the small ones.
NARROW_CPU_OWN_KERNEL = False


def _own_kernel_by_default() -> bool:
    """Whether the micro-kernel may be used without ``BPTT_OWN_KERNEL=1``: on AVX-512 CPUs (see
    :data:`NARROW_CPU_OWN_KERNEL` for the others)."""
    WIDE = _kernel("microkernel").WIDE

    return WIDE or NARROW_CPU_OWN_KERNEL


def _own_kernel_on() -> bool:
    """Whether the micro-kernel may run at all: by default (:func:`_own_kernel_by_default`) or
    forced by ``BPTT_OWN_KERNEL=1``; never with ``BPTT_OWN_KERNEL=0``."""
    force = env("BPTT_OWN_KERNEL")
    return force != "0" and (force == "1" or _own_kernel_by_default())


def _own_kernel(B: int, H: int, G: int, dtype, one_thread: bool = False) -> int:
    """Where bptt's own float32 micro-kernel (bptt.kernels.microkernel, ~130-214 GFLOP/s on one
    AVX-512 Zen 5 core) does the per-step products: 2 (every product it can tile) when BLAS would do them
    on one thread (``one_thread``, or see :func:`_loop_threads`); 1 (the forward shapes, where it
    wins) when NumPy's OpenBLAS runs kernels narrower than the CPU's; else 0 (its AVX-512 kernels
    on two threads: 330-430 GFLOP/s here). ``BPTT_OWN_KERNEL=0`` turns it off, ``=1`` forces mode 2."""
    can_tile = _kernel("microkernel").can_tile

    if np.dtype(dtype) != np.float32 or not (can_tile(G * H, B) or can_tile(H, B)):
        return 0
    force = env("BPTT_OWN_KERNEL")
    if force in ("0", "1"):
        return 2 * int(force)
    if not _own_kernel_by_default():
        return 0
    if one_thread or 2 * B * G * H * H < _single_thread_flops():
        return 2
    blas_kernels = _kernel("blas").blas_kernels

    return 1 if blas_kernels()["narrower_than_cpu"] else 0


def _packed_rows(U: np.ndarray) -> np.ndarray:
    """``U (H, G·H)`` packed in panels of rows for the micro-kernel of the backward loops
    (bptt.kernels.microkernel.pack_rows), or an empty array where it will not run: not float32,
    H not a multiple of the panel, or the micro-kernel off. The panels are a workspace reused by
    later calls (no page faults for a new array: the large row's 4 MB, 1.6 → 0.5 ms)."""
    mk = _kernel("microkernel")
    PANEL, pack_rows = mk.PANEL, mk.pack_rows

    H = U.shape[0]
    if U.dtype != np.float32 or H % PANEL or not _own_kernel_on():
        return np.empty((0, 1, PANEL), U.dtype)
    out = _workspace("packed", (H // PANEL, U.shape[1], PANEL), U.dtype)  # used within the call only
    pack_rows(U, out)
    return out


def _blas_for(T: int, B: int, I: int, H: int, G: int):
    """The BLAS threading context for a call of this size (see :data:`SINGLE_THREAD_FLOPS` and
    :data:`WAKEUP_SINGLE_THREAD_FLOPS`)."""
    return single_threaded_if(2 * T * B * (I + H) * G * H < _single_thread_flops())


_workspaces = threading.local()


def _workspace(name: str, shape: tuple, dtype) -> np.ndarray:
    """A scratch array reused by later calls of the same shape in the same thread (never returned)."""
    pool = getattr(_workspaces, "pool", None)
    if pool is None:
        pool = _workspaces.pool = {}
    key = (name, shape, np.dtype(dtype).str)
    a = pool.get(key)
    if a is None:
        if len(pool) > 64:
            pool.clear()
        a = pool[key] = _empty(shape, dtype, always=True)
    return a


#: Internal arrays of at least this many bytes that a call does not return are taken from
#: :func:`_scratch`: glibc maps arrays above its largest mmap threshold (32 MiB) afresh on every
#: allocation, and page-faulting them in cost 6.4 ms for the large LSTM row's 52 MB of gates
#: (arrays of 8 and 30 MB, reused by malloc: 0.01 and 0.04 ms).
SCRATCH_BYTES = 32 << 20


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """An array for use within one call, from one buffer per name and thread that grows to the
    largest size asked for (so at most one such buffer per name, whatever the shapes), or a new
    array when it is smaller than :data:`SCRATCH_BYTES`."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size * dtype.itemsize < SCRATCH_BYTES:
        return _empty(shape, dtype)
    pool = getattr(_workspaces, "scratch", None)
    if pool is None:
        pool = _workspaces.scratch = {}
    buf = pool.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        pool[name] = None  # let the old buffer go before the new one is allocated
        buf = pool[name] = _empty((size,), dtype, always=True)
    return buf[:size].reshape(shape)


# ─────────────────────────────────────────────────────────────────────────────────────── LSTM


@dataclass(frozen=True, eq=False)
class LSTMCache(_Cache):
    c0: np.ndarray
    c_s: np.ndarray
    tanh_c_s: np.ndarray | None  # kept by the reference kernels; the fast ones recompute it
    xh_s: np.ndarray | None = None  # fast kernels: x_s and h_s stacked in one array (see _fm_stacked)

    @property
    def c(self) -> np.ndarray:
        """Cell state at every step, ``(B, T, H)``."""
        self._check_unspent("c", "cell states")
        return self._states_bm(self.c_s)


def lstm_forward(x, W, U, b, h0=None, c0=None, *, keep_cache=True, backend=None):
    """LSTM over a batch of sequences (TMVA ``LSTMLayer::Forward``, PyTorch ``nn.LSTM`` transposed).

    Gate blocks in the order [i, f, g, o] (input, forget, candidate, output)::

        z_t = x_t W + h_{t-1} U + b
        i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    Args:
        x: ``(B, T, I)`` inputs, float32 or float64.
        W: ``(I, 4H)`` input weights.  U: ``(H, 4H)`` state weights.  b: ``(4H,)`` bias.
        h0, c0: ``(B, H)`` initial states; zeros when omitted.
        keep_cache: False for inference: nothing is kept for a backward pass and the cache
            returned is None.
        backend: ``"fast"`` (compiled kernels; the default) or ``"reference"`` (plain NumPy).

    Returns:
        ``(h, cache)``: ``h (B, T, H)`` the hidden state at every step (``h[:, -1]`` is h_T), and an
        :class:`LSTMCache` exposing ``gates (B, T, 4H)`` and ``c (B, T, H)``.
    """
    fn = "lstm_forward"
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, 4, {"h0": h0, "c0": c0})
    if backend == "reference":
        x_tm = _time_major_copy(a["x"])
        gates = _input_projection(x_tm, a["W"], a["b"])
        c, tanh_c, h = (np.empty((T, B, H), gates.dtype) for _ in range(3))
        K.lstm_forward_loop(gates, a["U"], a["h0"], a["c0"], c, tanh_c, h)
        _raise_if_overflowed(fn, {"h": _final_or_all(h)}, a)
        cache = LSTMCache("tbf", x_tm, a["W"], a["U"], a["h0"], gates, h, a["c0"], c, tanh_c)
        return _readonly(_bm(h)), (cache if keep_cache else None)
    return _lstm_forward_fast(a, B, T, I, H, keep_cache)


def lstm_backward(dh, cache, dh_last=None, dc_last=None, *, keep_cache=True):
    """Backpropagation through time for :func:`lstm_forward` (TMVA ``LSTMLayer::Backward``).

    Args:
        dh: ``(B, T, H)`` dL/dh_t at every step (``None``: no loss on the per-step outputs).
        cache: the :class:`LSTMCache` from the forward call.
        dh_last, dc_last: ``(B, H)`` extra gradients of the final h_T and c_T.
        keep_cache: False when the cache is not needed afterwards (a training step; PyTorch's
            ``backward`` frees its saved tensors likewise): the fast kernels then write ``dz`` over
            the cache's gate values and ``dc`` over its cell states instead of into new arrays,
            and the cache is spent (its ``gates`` and ``c``, and a second backward call with it,
            raise ValueError; arrays read from them before hold ``dz`` and ``dc`` afterwards).
            Two arrays less, ``(4H, T, B)`` and ``(H, T, B)``: peak memory of the large grid
            row's training step 165.8 → 115.7 MiB with dz over the gates, → 102.9 with dc over
            c too (the GRU's, whose dz goes over its gates likewise, 137.1 → 99.6). Same-process
            A/B of the training step against the backward before this option, dz over the gates
            (ms, 2-core Zen 4, float32, medians of 15-101 turns): medium 11.30 → 10.84, long
            26.9 → 26.5, wide 83.7 → 82.8, large 329 → 305; the GRU's 9.35 → 9.23, 23.6 → 23.5,
            71.2 → 68.7, 259 → 242. dc over c as well changed no time measurably (1.00-1.02).

    Returns:
        dict with ``dx (B, T, I)``, ``dW``, ``dU``, ``db`` (shapes of W, U, b), ``dh0``, ``dc0``
        ``(B, H)``, the per-step deltas ``dz (B, T, 4H)`` (dL/dz_t, gates [i, f, g, o]) and
        ``dc (B, T, H)`` (the total dL/dc_t).
    """
    dh, dh_last, dc_last = _check_backward(
        "lstm_backward", cache, LSTMCache, dh, {"dh_last": dh_last, "dc_last": dc_last}, keep_cache
    )
    T, B, H = cache.dims
    if cache.layout == "tbf":
        dz = np.empty((T, B, 4 * H), cache.dtype)
        dc = np.empty((T, B, H), cache.dtype)
        dh0, dc0 = K.lstm_backward_loop(
            _time_major_or_zeros(dh, cache), dh_last, dc_last, cache.U, cache.c0, cache.gates_s, cache.c_s, cache.tanh_c_s, dz, dc
        )
        dx, dW, db = _input_projection_backward(cache.x_s, cache.W, dz)
        dU = _recurrent_weight_grad(cache.h0, cache.h_s, dz)
        grads = {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dc0": dc0, "dz": _bm(dz), "dc": _bm(dc)}
    else:
        with _blas_for(T, B, cache.n_inputs, H, 4):
            grads = _lstm_backward_fast(dh, cache, dh_last, dc_last, T, B, H, keep_cache)
    return _checked_gradients("lstm_backward", grads, cache, dh, {"dh_last": dh_last, "dc_last": dc_last, "c0": cache.c0})


# ──────────────────────────────────────────────────────────────────────────────────────── GRU


@dataclass(frozen=True, eq=False)
class GRUCache(_Cache):
    b_u: np.ndarray
    reset_after: bool
    aux_s: np.ndarray  # h_{t-1} U_n + bu_n (reset_after) or r ⊙ h_{t-1} (reset before)


def gru_forward(x, W, U, b, b_u, h0=None, reset_after=True, *, keep_cache=True, backend=None):
    """GRU over a batch of sequences. Gate blocks in the order [r, z, n]::

        r = σ(x W_r + b_r + h U_r + bu_r)      z = σ(x W_z + b_z + h U_z + bu_z)
        reset_after=True  (PyTorch, cuDNN, Keras):  n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n))
        reset_after=False (TMVA's CPU GRU):         n = tanh(x W_n + b_n + (r ⊙ h) U_n + bu_n)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

    Args:
        x: ``(B, T, I)``.  W: ``(I, 3H)``.  U: ``(H, 3H)``.  b: ``(3H,)`` input bias.
        b_u: ``(3H,)`` recurrent bias.  h0: ``(B, H)``, zeros when omitted.
        keep_cache, backend: as for :func:`lstm_forward`.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates (B, T, 3H)`` holds r, z, n at every step.
    """
    fn = "gru_forward"
    v.choice(fn, "reset_after", reset_after, (True, False))
    reset_after = bool(reset_after)
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, 3, {"h0": h0}, {"b_u": b_u})
    if backend == "reference":
        x_tm = _time_major_copy(a["x"])
        xw = _input_projection(x_tm, a["W"], a["b"])
        gates = np.empty_like(xw)
        aux, h = np.empty((T, B, H), xw.dtype), np.empty((T, B, H), xw.dtype)
        K.gru_forward_loop(xw, a["U"], a["b_u"], a["h0"], reset_after, gates, aux, h)
        _raise_if_overflowed(fn, {"h": _final_or_all(h)}, a)
        cache = GRUCache("tbf", x_tm, a["W"], a["U"], a["h0"], gates, h, a["b_u"], reset_after, aux)
        return _readonly(_bm(h)), (cache if keep_cache else None)
    with _blas_for(T, B, I, H, 3):
        return _gru_forward_fast(a, B, T, I, H, reset_after, keep_cache)


def gru_backward(dh, cache, dh_last=None, *, keep_cache=True):
    """Backpropagation through time for :func:`gru_forward`. ``keep_cache``: as for
    :func:`lstm_backward` (False spends the cache: the fast kernels write dz over its gate values).

    Returns a dict with ``dx``, ``dW``, ``dU``, ``db``, ``db_u``, ``dh0`` and ``dz (B, T, 3H)``, the
    gradient w.r.t. each step's pre-activations [a_r, a_z, a_n] (for ``reset_after`` the n block
    is w.r.t. ``x W_n + b_n + r ⊙ (h U_n + bu_n)``).
    """
    dh, dh_last = _check_backward("gru_backward", cache, GRUCache, dh, {"dh_last": dh_last}, keep_cache)
    T, B, H = cache.dims
    ra = cache.reset_after
    if cache.layout == "tbf":
        dz = np.empty((T, B, 3 * H), cache.dtype)
        dhu = np.empty_like(dz) if ra else None
        dh0 = K.gru_backward_loop(
            _time_major_or_zeros(dh, cache), dh_last, cache.U, cache.h0, ra, cache.gates_s, cache.aux_s, cache.h_s, dz, dhu
        )
        dx, dW, db = _input_projection_backward(cache.x_s, cache.W, dz)
        if ra:  # the recurrent product h U + b_u received dhu
            dU = _recurrent_weight_grad(cache.h0, cache.h_s, dhu)
            db_u = dhu.reshape(T * B, -1).sum(axis=0)
        else:  # r and z blocks saw h_{t-1}; the n block saw r ⊙ h_{t-1}
            dU = np.empty_like(cache.U)
            dU[:, : 2 * H] = _recurrent_weight_grad(cache.h0, cache.h_s, dz[:, :, : 2 * H])
            dU[:, 2 * H :] = cache.aux_s.reshape(T * B, H).T @ dz[:, :, 2 * H :].reshape(T * B, H)
            db_u = db.copy()
        grads = {"dx": dx, "dW": dW, "dU": dU, "db": db, "db_u": db_u, "dh0": dh0, "dz": _bm(dz)}
    else:
        with _blas_for(T, B, cache.n_inputs, H, 3):
            grads = _gru_backward_fast(dh, cache, dh_last, T, B, H, ra, keep_cache)
    return _checked_gradients("gru_backward", grads, cache, dh, {"dh_last": dh_last, "b_u": cache.b_u})


# ──────────────────────────────────────────────────────────────────────────────── simple RNN


@dataclass(frozen=True, eq=False)
class RNNCache(_Cache):
    activation: str
    xh_s: np.ndarray | None = None  # fast kernels: x_s and h_s stacked in one array (see _fm_stacked)


def rnn_forward(x, W, U, b, h0=None, activation="tanh", *, keep_cache=True, backend=None):
    """Simple (Elman) RNN over a batch of sequences::

        h_t = act(x_t W + h_{t-1} U + b),   act ∈ {"tanh", "relu", "sigmoid", "identity"}

    Args:
        x: ``(B, T, I)``.  W: ``(I, H)``.  U: ``(H, H)``.  b: ``(H,)``.  h0: ``(B, H)`` or zeros.
        keep_cache, backend: as for :func:`lstm_forward`.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates`` is ``h`` itself (the only "gate").
    """
    fn = "rnn_forward"
    v.choice(fn, "activation", activation, ELEMENTWISE)
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, 1, {"h0": h0})
    if backend == "reference":
        x_tm = _time_major_copy(a["x"])
        xw = _input_projection(x_tm, a["W"], a["b"])
        h = np.empty((T, B, H), xw.dtype)
        K.rnn_forward_loop(xw, a["U"], a["h0"], activation, h)
        _raise_if_overflowed(fn, {"h": _final_or_all(h, activation)}, a)
        cache = RNNCache("tbf", x_tm, a["W"], a["U"], a["h0"], h, h, activation)
        return _readonly(_bm(h)), (cache if keep_cache else None)
    with _blas_for(T, B, I, H, 1):
        return _rnn_forward_fast(a, B, T, I, H, activation, keep_cache)


def rnn_backward(dh, cache, dh_last=None, *, keep_cache=True):
    """Backpropagation through time for :func:`rnn_forward`. ``keep_cache``: as for
    :func:`lstm_backward` (False spends the cache; the RNN's kernels need all of it, the states,
    until the end, so they write over none of it).

    Returns a dict with ``dx``, ``dW``, ``dU``, ``db``, ``dh0`` and ``dz (B, T, H)`` = dL/da_t,
    the gradient w.r.t. each step's pre-activation.
    """
    dh, dh_last = _check_backward("rnn_backward", cache, RNNCache, dh, {"dh_last": dh_last}, keep_cache)
    T, B, H = cache.dims
    if cache.layout == "tbf":
        dz = np.empty_like(cache.h_s)
        dh0 = K.rnn_backward_loop(_time_major_or_zeros(dh, cache), dh_last, cache.U, cache.activation, cache.h_s, dz)
        dx, dW, db = _input_projection_backward(cache.x_s, cache.W, dz)
        dU = _recurrent_weight_grad(cache.h0, cache.h_s, dz)
        grads = {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dz": _bm(dz)}
    else:
        with _blas_for(T, B, cache.n_inputs, H, 1):
            grads = _rnn_backward_fast(dh, cache, dh_last, T, B, H)
    return _checked_gradients("rnn_backward", grads, cache, dh, {"dh_last": dh_last})


# ─────────────────────────────────────────────── fast-path bodies (see bptt.kernels.fast)


def _lstm_forward_fast(a, B, T, I, H, keep_cache):
    F = _fast()
    plan = _loop_plan(T, B, H, 4, a["x"].dtype)
    if not keep_cache and _time_major_inference(plan, I, H, 4):
        xh = _tm_stacked(a["x"], a["h0"], T)
        gates = _workspace("lstm_gates", (4 * H, 1, B), xh.dtype)
        c = _states_ext(a["c0"], 0)
        args = (_loop_matrix(a["W"], a["U"], 0), xh, gates, a["b"], c)
        cut = _units_split(T, B, H, 4, xh.dtype, plan)
        if cut:
            _run_units_split(F.lstm_inference_loop_units, plan.blas, args, cut, H)
        else:
            _compiled_loop(F.lstm_inference_loop, T, B, H, 4, xh.dtype, *args, plan=plan)
        _raise_if_overflowed("lstm_forward", {"h": xh[T, I:]}, a)  # h_T (see _final_or_all)
        # the loop's products are this path's only BLAS calls, threaded per step by _compiled_loop:
        # no BLAS context for the whole call (setting and restoring the thread count, 2.5 µs)
        return _readonly(_tm_states(xh, I)), None
    with _blas_for(T, B, I, H, 4):
        return _lstm_forward_feature_major(F, a, B, T, I, H, keep_cache, plan)


def _lstm_forward_feature_major(F, a, B, T, I, H, keep_cache, plan):
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    k0, gates, A = _loop_inputs(xh, a["W"], a["U"], plan, 4, T, keep_cache, "lstm_gates")
    c = _states_ext(a["c0"], T if keep_cache else 0)
    cut = _units_split(T, B, H, 4, xh.dtype, plan) if keep_cache and k0 == 0 and plan.blas is not None else 0
    if cut:
        _run_units_split(F.lstm_forward_loop_units, plan.blas, (A, xh, gates, a["b"], c, h), cut, H)
    elif not _compiled_loop(F.lstm_forward_loop, T, B, H, 4, xh.dtype, A, k0, xh, gates, a["b"], c, h, keep_cache,
                            plan=plan):
        # no BLAS callable from compiled code: a Python loop, one np.matmul per step (k0 is 0: the
        # plan's blas is None, see _projection_in_loop)
        for t in range(T):
            tg = t if gates.shape[1] == T else 0
            np.matmul(A, xh[:, t], out=gates[:, tg])  # (1) the product
            cp, cc = (t, t + 1) if keep_cache else (0, 0)
            F.lstm_step_forward(gates, tg, a["b"], c, cp, cc, h, t)  # (1)-(4) fused
    _raise_if_overflowed("lstm_forward", {"h": _final_or_all(h, layout="ftb")}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    return _readonly(_fm(h[:, 1:])), LSTMCache("ftb", x_fm, a["W"], a["U"], a["h0"], gates, h, a["c0"], c, None, xh)


def _lstm_backward_fast(dh, cache, dh_last, dc_last, T, B, H, keep_cache):
    F = _fast()
    # spending the cache: dz over the gate values, dc over c_1 … c_T (see lstm_cell_backward)
    dz = _empty((4 * H, T, B), cache.dtype) if keep_cache else cache.gates_s
    dc = _empty((H, T, B), cache.dtype) if keep_cache else cache.c_s[:, 1:]
    dz_arg, dc_arg = (dz, dc) if keep_cache else (None, None)  # None: the kernels' sign for "in place"
    row = _workspace("lstm_backward_row", (B,), cache.dtype)
    use_dh = dh is not None
    dh_bm = np.ascontiguousarray(dh) if use_dh else dz  # as the loops read it; dz: a placeholder never read
    dh_rec, dc_next = _state_in(dh_last), _state_in(dc_last)
    U, gates, c = np.ascontiguousarray(cache.U), cache.gates_s, cache.c_s
    plan = _loop_plan(T, B, H, 4, cache.dtype)
    Wp, dxp = _dx_in_loop(cache.W, plan, T)
    if not _compiled_loop(F.lstm_backward_loop, T, B, H, 4, cache.dtype, dh_bm, use_dh, U, _packed_rows(U), gates, c,
                          dh_rec, dc_next, dz_arg, dc_arg, row, Wp, dxp, plan=plan):
        for t in range(T - 1, -1, -1):
            F.lstm_step_backward(dh_bm, t, use_dh, dh_rec, gates, c, dc_next, dz_arg, dc_arg, row)
            np.matmul(U, dz[:, t], out=dh_rec)  # (1) dh_{t-1} = dz_t Uᵀ
    dx, dW, dU, db = _fm_weight_grads(cache.xh_s, cache.W, dz, T, dxp if Wp.shape[0] else None)
    return {
        "dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": _state_out(dh_rec), "dc0": _state_out(dc_next),
        "dz": _fm(dz), "dc": _fm(dc),
    }


def _gru_forward_fast(a, B, T, I, H, reset_after, keep_cache):
    F = _fast()
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    plan = _loop_plan(T, B, H, 3, xh.dtype)
    k0, gates, A = _loop_inputs(xh, a["W"], a["U"], plan, 3, T, keep_cache, "gru_gates")
    aux = _empty((H, T if (keep_cache or not reset_after) else 1, B), xh.dtype)
    bx, bu = a["b"], a["b_u"]
    hu = _workspace("hu", (3 * H, B), xh.dtype)
    cut = _units_split(T, B, H, 3, xh.dtype, plan) if reset_after and k0 == 0 and plan.blas is not None else 0
    if cut:
        _run_units_split(F.gru_forward_loop_units, plan.blas, (A, xh, gates, bx, bu, aux, h, hu), cut, H)
    elif not _compiled_loop(F.gru_forward_loop, T, B, H, 3, xh.dtype, A, k0, xh, gates, bx, bu, reset_after, aux,
                            keep_cache, h, hu, plan=plan):
        # no BLAS callable from compiled code: a Python loop, np.matmul per product (k0 is 0, as for the LSTM)
        A_rz, Wn_T, Un_T, hu_n = A[: 2 * H], A[2 * H :, :I], A[2 * H :, I:], hu[2 * H :]
        for t in range(T):
            tg = t if gates.shape[1] == T else 0
            np.matmul(A_rz, xh[:, t], out=gates[: 2 * H, tg])
            np.matmul(Wn_T, xh[:I, t], out=gates[2 * H :, tg])
            if reset_after:
                np.matmul(Un_T, h[:, t], out=hu_n)
                F.gru_step_forward_after(gates, tg, hu, True, bx, bu, aux, t if aux.shape[1] == T else 0, h, t)
            else:  # the n block's product needs r first
                F.gru_step_forward_before_rz(gates, tg, hu, True, bx, bu, aux, h, t)
                np.matmul(Un_T, aux[:, t], out=hu_n)
                F.gru_step_forward_before_n(gates, tg, hu, bx, bu, h, t)
    _raise_if_overflowed("gru_forward", {"h": _final_or_all(h, layout="ftb")}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    return _readonly(_fm(h[:, 1:])), GRUCache("ftb", x_fm, a["W"], a["U"], a["h0"], gates, h, a["b_u"], reset_after, aux)


def _gru_backward_fast(dh, cache, dh_last, T, B, H, ra, keep_cache):
    F = _fast()
    dz = _empty((3 * H, T, B), cache.dtype) if keep_cache else cache.gates_s  # see gru_cell_backward
    dz_arg = dz if keep_cache else None  # the kernels' sign for "in place over the gates"
    dhu = _empty((H, T, B), dz.dtype) if ra else dz  # reset-before: a placeholder that is never written
    row = _workspace("gru_backward_row", (B,), cache.dtype)
    use_dh = dh is not None
    dh_bm = np.ascontiguousarray(dh) if use_dh else dz
    dh_rec = _state_in(dh_last)
    dh_prev = _workspace("dh_prev", (H, B), cache.dtype)
    drh = _workspace("drh", (H, B), cache.dtype)
    U, gates, aux, h = np.ascontiguousarray(cache.U), cache.gates_s, cache.aux_s, cache.h_s
    plan = _loop_plan(T, B, H, 3, cache.dtype)
    Wp, dxp = _dx_in_loop(cache.W, plan, T)
    if not _compiled_loop(F.gru_backward_loop, T, B, H, 3, cache.dtype, dh_bm, use_dh, U, _packed_rows(U), gates, aux,
                          h, ra, dh_rec, dh_prev, drh, dz_arg, dhu, row, Wp, dxp, plan=plan):
        U_rz, U_n, dz_rz, dz_n = U[:, : 2 * H], U[:, 2 * H :], dz[: 2 * H], dz[2 * H :]
        for t in range(T - 1, -1, -1):
            F.gru_step_backward(dh_bm, t, use_dh, dh_rec, gates, aux, h, ra, dz_arg, dhu, dh_prev, row)
            if ra:
                np.matmul(U[:, : 2 * H], dz[: 2 * H, t], out=dh_rec)
                dh_rec += U[:, 2 * H :] @ dhu[:, t]
            else:
                np.matmul(U_n, dz_n[:, t], out=drh)
                F.gru_step_backward_before_r(drh, gates, t, h, dz_arg, dh_prev)
                np.matmul(U_rz, dz_rz[:, t], out=dh_rec)
            F.add_into(dh_rec, dh_prev)
    dx, dW, db = _fm_input_projection_backward(cache.x_s, cache.W, dz, dxp if Wp.shape[0] else None)
    dU = np.empty_like(U)
    dU[:, : 2 * H] = _fm_recurrent_weight_grad(h, dz[: 2 * H])
    if ra:  # dhu holds the n block of dL/d(h U + b_u); its r and z blocks are dz's
        dU[:, 2 * H :], db_u_n = _fm_recurrent_weight_grad(h, dhu, sums=True)
        db_u = np.concatenate((db[: 2 * H], db_u_n))
    else:
        _rows_product(aux.reshape(H, T * B), dz[2 * H :].reshape(H, T * B), out=dU[:, 2 * H :])
        db_u = db.copy()
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "db_u": db_u, "dh0": _state_out(dh_rec), "dz": _fm(dz)}


def _rnn_forward_fast(a, B, T, I, H, activation, keep_cache):
    F = _fast()
    code = F.ACTIVATION_CODES[activation]
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    plan = _loop_plan(T, B, H, 1, xh.dtype)
    k0, pre, A = _loop_inputs(xh, a["W"], a["U"], plan, 1, T, False, "rnn_pre")  # the cache keeps h, not x W
    cut = _units_split(T, B, H, 1, xh.dtype, plan) if k0 == 0 and plan.blas is not None else 0
    if cut:
        _run_units_split(F.rnn_forward_loop_units, plan.blas, (A, xh, pre, a["b"], code, h), cut, H)
    elif not _compiled_loop(F.rnn_forward_loop, T, B, H, 1, xh.dtype, A, k0, xh, pre, a["b"], code, h, plan=plan):
        for t in range(T):  # no BLAS callable from compiled code (and k0 is 0, as for the LSTM)
            np.matmul(A, xh[:, t], out=pre[:, 0])
            F.rnn_step_forward(pre, 0, a["b"], code, h, t)
    _raise_if_overflowed("rnn_forward", {"h": _final_or_all(h, activation, "ftb")}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    return _readonly(_fm(h[:, 1:])), RNNCache("ftb", x_fm, a["W"], a["U"], a["h0"], h[:, 1:], h, activation, xh)


def _rnn_backward_fast(dh, cache, dh_last, T, B, H):
    F = _fast()
    code = F.ACTIVATION_CODES[cache.activation]
    dz = _empty((H, T, B), cache.dtype)
    use_dh = dh is not None
    dh_bm = np.ascontiguousarray(dh) if use_dh else dz
    dh_rec, U, h = _state_in(dh_last), np.ascontiguousarray(cache.U), cache.h_s
    if not _compiled_loop(F.rnn_backward_loop, T, B, H, 1, cache.dtype, dh_bm, use_dh, U, _packed_rows(U), h, code,
                          dh_rec, dz):
        for t in range(T - 1, -1, -1):
            F.rnn_step_backward(dh_bm, t, use_dh, dh_rec, h, code, dz)
            np.matmul(U, dz[:, t], out=dh_rec)
    dx, dW, dU, db = _fm_weight_grads(cache.xh_s, cache.W, dz, T)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": _state_out(dh_rec), "dz": _fm(dz)}
