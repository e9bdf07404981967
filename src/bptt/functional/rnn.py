"""The simple (Elman) RNN's forward pass and backpropagation through time: validation, then
one call into bptt.kernels.reference.rnn or bptt.kernels.fast.rnn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..cells import GATES
from ..kernels.reference import rnn as reference
from ..kernels.activations import ELEMENTWISE
from ._cache import _Cache, _bm, _fm, _readonly
from ._backend import _backend, _fast
from ._lengths import (
    _caller_order, _Gradients, _packed_dh, _packed_for, _packed_loop_inputs, _reference_order, _sequences,
)
from ._checks import _check_backward, _check_forward, _checked_gradients, _raise_if_overflowed
from ._plan import (
    _backward_threads, _blas_for, _compiled_loop, _forward_threads, _loop_plan, _run_units_split, _units_split,
)
from ._arrays import (
    _batch_major, _empty, _fm_stacked, _fm_weight_grads, _input_projection, _input_projection_backward, _weight_grads,
    _loop_inputs, _packed_rows, _recurrent_weight_grad, _state_in, _state_out, _time_major_copy,
    _time_major_or_zeros,
)

#: Gate blocks of the simple RNN (bptt.cells).
G = GATES["rnn"]


@dataclass(frozen=True, eq=False)
class RNNCache(_Cache):
    activation: str
    xh_s: np.ndarray | None = None  # fast kernels: x_s and h_s stacked in one array (see _fm_stacked)

    @property
    def gates(self) -> np.ndarray:
        """The states at every step, ``(B, T, H)``: the simple RNN's only "gate"."""
        return self.h if self.layout == "packed" else super().gates


def rnn_forward(x, W, U, b, h0=None, activation="tanh", *, lengths=None, reverse=False, keep_cache=True, backend=None):
    """Simple (Elman) RNN over a batch of sequences::

        h_t = act(x_t W + h_{t-1} U + b),   act ∈ {"tanh", "relu", "sigmoid", "identity"}

    Args:
        x: ``(B, T, I)``.  W: ``(I, H)``.  U: ``(H, H)``.  b: ``(H,)``.  h0: ``(B, H)`` or zeros.
        lengths, reverse, keep_cache, backend: as for :func:`lstm_forward`.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates`` is ``h`` itself (the only "gate").
    """
    fn = "rnn_forward"
    v.choice(fn, "activation", activation, ELEMENTWISE)
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, G, {"h0": h0})
    seq = _sequences(fn, lengths, reverse, B, T)
    if backend == "fast":
        with _blas_for(T, B, I, H, G):
            out = _rnn_forward_fast(a, B, T, I, H, activation, keep_cache, seq)
        if out is not None:
            return out
    arr = _reference_order(seq)
    x_tm = _time_major_copy(a["x"] if arr is None else arr.gather(a["x"]))
    xw = _input_projection(x_tm, a["W"], a["b"])
    h = np.empty((T, B, H), xw.dtype)
    h_T = reference.rnn_forward_loop(xw, a["U"], a["h0"], activation, h, None if arr is None else arr.sorted_lengths)
    _raise_if_overflowed(fn, {"h": h if activation == "relu" else h_T}, a)
    cache = RNNCache("tbf", x_tm, a["W"], a["U"], a["h0"], h, h, activation)._arranged(arr)
    return _readonly(_bm(h) if arr is None else arr.scatter(_bm(h))), (cache if keep_cache else None)


def rnn_backward(dh, cache, dh_last=None, *, keep_cache=True):
    """Backpropagation through time for :func:`rnn_forward`. ``keep_cache``: as for
    :func:`lstm_backward` (False spends the cache; the RNN's kernels need all of it, the states,
    until the end, so they write over none of it).

    Returns a dict with ``dx``, ``dW``, ``dU``, ``db``, ``dh0`` and ``dz (B, T, H)`` = dL/da_t,
    the gradient w.r.t. each step's pre-activation.
    """
    dh, dh_last = _check_backward("rnn_backward", cache, RNNCache, dh, {"dh_last": dh_last}, keep_cache)
    T, B, H = cache.dims
    finals = {"dh_last": dh_last}
    if cache.layout == "packed":
        with _blas_for(T, B, cache.n_inputs, H, G), cache.arrangement.threads():
            grads = _rnn_backward_packed(dh, cache, dh_last)
        return _checked_gradients("rnn_backward", grads, cache, dh, finals)
    arr = cache.arrangement
    if arr is not None:  # into the processing order
        dh = None if dh is None else arr.gather(dh, zero_padded=True)  # dh at padded steps is never read
        dh_last = arr.rows_in(dh_last)
    if cache.layout == "tbf":
        dz = np.empty_like(cache.h_s)
        dh0 = reference.rnn_backward_loop(_time_major_or_zeros(dh, cache), dh_last, cache.U, cache.activation, cache.h_s, dz,
                                          None if arr is None else arr.sorted_lengths)
        dx, dW, db = _input_projection_backward(cache.x_s, cache.W, dz)
        dU = _recurrent_weight_grad(cache.h0, cache.h_s, dz)
        grads = {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dz": _bm(dz)}
    else:
        plan = _loop_plan(T, B, H, G, cache.dtype)
        with _blas_for(T, B, cache.n_inputs, H, G), _backward_threads(plan):
            grads = _rnn_backward_fast(dh, cache, dh_last, T, B, H, plan)
    if arr is not None:
        grads = _caller_order(grads, arr)
    return _checked_gradients("rnn_backward", grads, cache, dh, finals)


def _rnn_forward_fast(a, B, T, I, H, activation, keep_cache, seq):
    """The fast forward, or None with lengths and no BLAS callable from compiled code (see
    bptt.functional.lstm._lstm_forward_fast)."""
    fast = _fast().rnn
    code = _fast().common.ACTIVATION_CODES[activation]
    plan = _loop_plan(T if seq is None else seq.work_steps, B, H, G, a["x"].dtype)
    if seq is not None:
        pk = _packed_for(seq, plan, a["x"].dtype)
        if pk is None:
            return None
        with pk.threads():
            return _rnn_forward_packed(fast, a, I, H, activation, code, keep_cache, pk)
    with _forward_threads(plan, T, B, I, H, G, a["x"].dtype):
        return _rnn_forward_padded(fast, a, B, T, I, H, activation, code, keep_cache, plan)


def _rnn_forward_padded(fast, a, B, T, I, H, activation, code, keep_cache, plan):
    """The fast forward without lengths."""
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    k0, pre, A = _loop_inputs(xh, a["W"], a["U"], plan, G, T, False, "rnn_pre")  # the cache keeps h, not x W
    cut = _units_split(T, B, H, G, xh.dtype, plan) if k0 == 0 and plan.blas is not None else 0
    if cut:
        _run_units_split(fast.rnn_forward_loop_units, plan.blas, (A, xh, pre, a["b"], code, h), cut, H)
    elif not _compiled_loop(fast.rnn_forward_loop, T, B, H, G, xh.dtype, A, k0, xh, pre, a["b"], code, h, plan=plan):
        for t in range(T):  # no BLAS callable from compiled code (and k0 is 0, as for the LSTM)
            np.matmul(A, xh[:, t], out=pre[:, 0])
            fast.rnn_step_forward(pre, 0, a["b"], code, h, t)
    _raise_if_overflowed("rnn_forward", {"h": h if activation == "relu" else h[:, -1]}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    cache = RNNCache("ftb", x_fm, a["W"], a["U"], a["h0"], h[:, 1:], h, activation, xh)
    return _readonly(_fm(h[:, 1:])), cache


def _rnn_forward_packed(fast, a, I, H, activation, code, keep_cache, pk):
    """The forward over packed sequences (bptt.functional._packed)."""
    xh = pk.pack_inputs(a["x"], a["h0"])
    h = xh[I:]
    k0, pre, per_step, A = _packed_loop_inputs(xh, a["W"], a["U"], pk, G, False, "rnn_pre")
    pk.run(fast.rnn_forward_packed, H, G, A, k0, xh, h, pre, per_step, a["b"], code, pk.n, pk.off, pk.pw, pk.parts)
    # the ReLU's states all (every column of h is a state or a zero), else the final ones
    _raise_if_overflowed("rnn_forward", {"h": h if activation == "relu" else pk.finals_of(xh, I, H)}, a)
    out = _readonly(pk.unpack(xh, I, H, states=True))
    if not keep_cache:
        return out, None
    return out, RNNCache("packed", xh[:I], a["W"], a["U"], a["h0"], h, h, activation, xh)._arranged(pk)


def _rnn_backward_fast(dh, cache, dh_last, T, B, H, plan):
    fast = _fast().rnn
    code = _fast().common.ACTIVATION_CODES[cache.activation]
    dz = _empty((H, T, B), cache.dtype)
    use_dh = dh is not None
    dh_bm = _batch_major(dh) if use_dh else dz
    dh_rec, U, h = _state_in(dh_last), np.ascontiguousarray(cache.U), cache.h_s
    if not _compiled_loop(fast.rnn_backward_loop, T, B, H, G, cache.dtype, dh_bm, use_dh, U, _packed_rows(U, plan), h, code,
                          dh_rec, dz, plan=plan):
        for t in range(T - 1, -1, -1):
            fast.rnn_step_backward(dh_bm, t, use_dh, dh_rec, h, code, dz)
            np.matmul(U, dz[:, t], out=dh_rec)
    dx, dW, dU, db = _fm_weight_grads(cache.xh_s, cache.W, dz, T)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": _state_out(dh_rec), "dz": _fm(dz)}


def _rnn_backward_packed(dh, cache, dh_last):
    """The backward over packed sequences (bptt.functional._packed), as
    bptt.functional.lstm._lstm_backward_packed."""
    fast = _fast().rnn
    code = _fast().common.ACTIVATION_CODES[cache.activation]
    pk = cache.arrangement
    T, B, H = cache.dims
    dz = pk.empty(H, cache.dtype)
    dh2, use_dh = _packed_dh(dh, B, T, H, cache.dtype)
    dh_rec, U = pk.empty_running(H, cache.dtype), np.ascontiguousarray(cache.U)
    pk.run(fast.rnn_backward_packed, H, G, dh2, pk.rows, use_dh, U, _packed_rows(U, pk.plan), cache.h_s, code, dh_rec,
           pk.running(dh_last), dz, pk.n, pk.width, pk.off, pk.pw, pk.parts)
    K = pk.K
    pk.zero_tail(dz)
    dx, dW, dU, db = _weight_grads(cache.xh_s[:, :K], cache.W, dz[:, :K])
    grads = _Gradients(dx=pk.unpack(dx, 0, cache.n_inputs, states=False), dW=dW, dU=dU, db=db,
                       dh0=pk.caller_rows(dh_rec))
    grads._later("dz", lambda: pk.unpack(dz, 0, H, states=False))
    return grads
