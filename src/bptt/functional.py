"""Forward and backward through time for the LSTM, GRU and simple RNN: the public primitives.

Each ``*_forward`` validates its inputs, does the input projection of all time steps as one GEMM,
runs the loop over time in a kernel and returns the hidden states with a cache; each
``*_backward`` runs the reverse loop and then forms the weight gradients as one GEMM each. All
arrays are batch-major (``x`` is ``(B, T, I)``); row-vector algebra ``z_t = x_t W + h_{t-1} U + b``.

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

from dataclasses import dataclass

import numpy as np

from . import _validation as v
from .kernels import reference as K
from .kernels.activations import ELEMENTWISE

__all__ = [
    "LSTMCache",
    "GRUCache",
    "RNNCache",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
]


def _bm(a: np.ndarray) -> np.ndarray:
    """Time-major ``(T, B, ·)`` → batch-major ``(B, T, ·)`` view (and back)."""
    return a.swapaxes(0, 1)


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


def _check_backward(fn, cache, cache_type, dh, finals):
    """Validate a backward call against its cache; return ``dh`` time-major and the final-state grads."""
    if not isinstance(cache, cache_type):
        raise ValueError(
            f"{fn}: cache must be the {cache_type.__name__} returned by the matching forward call; "
            f"got {type(cache).__name__}"
        )
    T, B, H = cache.h_tm.shape
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
    dh_tm = _bm(arrays["dh"]) if dh is not None else np.zeros((T, B, H), cache.dtype)
    out = [dh_tm]
    for name in finals:
        out.append(arrays[name].copy() if name in arrays else np.zeros((B, H), cache.dtype))
    return out


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


@dataclass(frozen=True, eq=False)
class _Cache:
    """What a forward pass stores for its backward pass (time-major internally)."""

    x_tm: np.ndarray
    W: np.ndarray
    U: np.ndarray
    h0: np.ndarray
    gates_tm: np.ndarray
    h_tm: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        return self.h_tm.dtype

    @property
    def gates(self) -> np.ndarray:
        """Post-activation gate values at every step, ``(B, T, G·H)`` in the cell's gate order."""
        return _bm(self.gates_tm)

    @property
    def h(self) -> np.ndarray:
        """Hidden state at every step, ``(B, T, H)``."""
        return _bm(self.h_tm)


# ─────────────────────────────────────────────────────────────────────────────────────── LSTM


@dataclass(frozen=True, eq=False)
class LSTMCache(_Cache):
    c0: np.ndarray
    c_tm: np.ndarray
    tanh_c_tm: np.ndarray

    @property
    def c(self) -> np.ndarray:
        """Cell state at every step, ``(B, T, H)``."""
        return _bm(self.c_tm)


def lstm_forward(x, W, U, b, h0=None, c0=None):
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

    Returns:
        ``(h, cache)``: ``h (B, T, H)`` the hidden state at every step (``h[:, -1]`` is h_T), and an
        :class:`LSTMCache` exposing ``gates (B, T, 4H)`` and ``c (B, T, H)``.
    """
    a, (B, T, I, H) = _check_forward("lstm_forward", x, W, U, b, 4, {"h0": h0, "c0": c0})
    x_tm = np.ascontiguousarray(_bm(a["x"]))
    gates = _input_projection(x_tm, a["W"], a["b"])
    c, tanh_c, h = (np.empty((T, B, H), gates.dtype) for _ in range(3))
    K.lstm_forward_loop(gates, a["U"], a["h0"], a["c0"], c, tanh_c, h)
    cache = LSTMCache(x_tm, a["W"], a["U"], a["h0"], gates, h, a["c0"], c, tanh_c)
    return _bm(h), cache


def lstm_backward(dh, cache, dh_last=None, dc_last=None):
    """Backpropagation through time for :func:`lstm_forward` (TMVA ``LSTMLayer::Backward``).

    Args:
        dh: ``(B, T, H)`` dL/dh_t at every step (``None``: no loss on the per-step outputs).
        cache: the :class:`LSTMCache` from the forward call.
        dh_last, dc_last: ``(B, H)`` extra gradients of the final h_T and c_T.

    Returns:
        dict with ``dx (B, T, I)``, ``dW``, ``dU``, ``db`` (shapes of W, U, b), ``dh0``, ``dc0``
        ``(B, H)``, the per-step deltas ``dz (B, T, 4H)`` (dL/dz_t, gates [i, f, g, o]) and
        ``dc (B, T, H)`` (the total dL/dc_t).
    """
    dh_tm, dh_last, dc_last = _check_backward(
        "lstm_backward", cache, LSTMCache, dh, {"dh_last": dh_last, "dc_last": dc_last}
    )
    T, B, H = cache.h_tm.shape
    dz = np.empty((T, B, 4 * H), cache.dtype)
    dc = np.empty((T, B, H), cache.dtype)
    dh0, dc0 = K.lstm_backward_loop(
        dh_tm, dh_last, dc_last, cache.U, cache.c0, cache.gates_tm, cache.c_tm, cache.tanh_c_tm, dz, dc
    )
    dx, dW, db = _input_projection_backward(cache.x_tm, cache.W, dz)
    dU = _recurrent_weight_grad(cache.h0, cache.h_tm, dz)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dc0": dc0, "dz": _bm(dz), "dc": _bm(dc)}


# ──────────────────────────────────────────────────────────────────────────────────────── GRU


@dataclass(frozen=True, eq=False)
class GRUCache(_Cache):
    b_u: np.ndarray
    reset_after: bool
    aux_tm: np.ndarray  # h_{t-1} U_n + bu_n (reset_after) or r ⊙ h_{t-1} (reset before)


def gru_forward(x, W, U, b, b_u, h0=None, reset_after=True):
    """GRU over a batch of sequences. Gate blocks in the order [r, z, n]::

        r = σ(x W_r + b_r + h U_r + bu_r)      z = σ(x W_z + b_z + h U_z + bu_z)
        reset_after=True  (PyTorch, cuDNN, Keras):  n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n))
        reset_after=False (TMVA's CPU GRU):         n = tanh(x W_n + b_n + (r ⊙ h) U_n + bu_n)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

    Args:
        x: ``(B, T, I)``.  W: ``(I, 3H)``.  U: ``(H, 3H)``.  b: ``(3H,)`` input bias.
        b_u: ``(3H,)`` recurrent bias.  h0: ``(B, H)``, zeros when omitted.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates (B, T, 3H)`` holds r, z, n at every step.
    """
    fn = "gru_forward"
    v.choice(fn, "reset_after", reset_after, (True, False))
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, 3, {"h0": h0}, {"b_u": b_u})
    x_tm = np.ascontiguousarray(_bm(a["x"]))
    xw = _input_projection(x_tm, a["W"], a["b"])
    gates = np.empty_like(xw)
    aux, h = np.empty((T, B, H), xw.dtype), np.empty((T, B, H), xw.dtype)
    K.gru_forward_loop(xw, a["U"], a["b_u"], a["h0"], bool(reset_after), gates, aux, h)
    cache = GRUCache(x_tm, a["W"], a["U"], a["h0"], gates, h, a["b_u"], bool(reset_after), aux)
    return _bm(h), cache


def gru_backward(dh, cache, dh_last=None):
    """Backpropagation through time for :func:`gru_forward`.

    Returns a dict with ``dx``, ``dW``, ``dU``, ``db``, ``db_u``, ``dh0`` and ``dz (B, T, 3H)``, the
    gradient w.r.t. each step's pre-activations [a_r, a_z, a_n] (for ``reset_after`` the n block
    is w.r.t. ``x W_n + b_n + r ⊙ (h U_n + bu_n)``).
    """
    dh_tm, dh_last = _check_backward("gru_backward", cache, GRUCache, dh, {"dh_last": dh_last})
    T, B, H = cache.h_tm.shape
    dz = np.empty((T, B, 3 * H), cache.dtype)
    dhu = np.empty_like(dz) if cache.reset_after else None
    dh0 = K.gru_backward_loop(
        dh_tm, dh_last, cache.U, cache.h0, cache.reset_after, cache.gates_tm, cache.aux_tm, cache.h_tm, dz, dhu
    )
    dx, dW, db = _input_projection_backward(cache.x_tm, cache.W, dz)
    if cache.reset_after:  # the recurrent product h U + b_u received dhu
        dU = _recurrent_weight_grad(cache.h0, cache.h_tm, dhu)
        db_u = dhu.reshape(T * B, -1).sum(axis=0)
    else:  # r and z blocks saw h_{t-1}; the n block saw r ⊙ h_{t-1}
        dU = np.empty_like(cache.U)
        dU[:, : 2 * H] = _recurrent_weight_grad(cache.h0, cache.h_tm, dz[:, :, : 2 * H])
        dU[:, 2 * H :] = cache.aux_tm.reshape(T * B, H).T @ dz[:, :, 2 * H :].reshape(T * B, H)
        db_u = db.copy()
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "db_u": db_u, "dh0": dh0, "dz": _bm(dz)}


# ──────────────────────────────────────────────────────────────────────────────── simple RNN


@dataclass(frozen=True, eq=False)
class RNNCache(_Cache):
    activation: str


def rnn_forward(x, W, U, b, h0=None, activation="tanh"):
    """Simple (Elman) RNN over a batch of sequences::

        h_t = act(x_t W + h_{t-1} U + b),   act ∈ {"tanh", "relu", "sigmoid", "identity"}

    Args:
        x: ``(B, T, I)``.  W: ``(I, H)``.  U: ``(H, H)``.  b: ``(H,)``.  h0: ``(B, H)`` or zeros.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates`` is ``h`` itself (the only "gate").
    """
    fn = "rnn_forward"
    v.choice(fn, "activation", activation, ELEMENTWISE)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, 1, {"h0": h0})
    x_tm = np.ascontiguousarray(_bm(a["x"]))
    xw = _input_projection(x_tm, a["W"], a["b"])
    h = np.empty((T, B, H), xw.dtype)
    K.rnn_forward_loop(xw, a["U"], a["h0"], activation, h)
    return _bm(h), RNNCache(x_tm, a["W"], a["U"], a["h0"], h, h, activation)


def rnn_backward(dh, cache, dh_last=None):
    """Backpropagation through time for :func:`rnn_forward`.

    Returns a dict with ``dx``, ``dW``, ``dU``, ``db``, ``dh0`` and ``dz (B, T, H)`` = dL/da_t,
    the gradient w.r.t. each step's pre-activation.
    """
    dh_tm, dh_last = _check_backward("rnn_backward", cache, RNNCache, dh, {"dh_last": dh_last})
    dz = np.empty_like(cache.h_tm)
    dh0 = K.rnn_backward_loop(dh_tm, dh_last, cache.U, cache.activation, cache.h_tm, dz)
    dx, dW, db = _input_projection_backward(cache.x_tm, cache.W, dz)
    dU = _recurrent_weight_grad(cache.h0, cache.h_tm, dz)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dz": _bm(dz)}
