"""The LSTM's forward pass and backpropagation through time (TMVA ``LSTMLayer``).

:func:`lstm_forward` and :func:`lstm_backward` validate their inputs and make one backend call:
bptt.kernels.reference.lstm (NumPy, time-major, the specification) or bptt.kernels.fast.lstm
(compiled, feature-major), whose cell functions carry the same stage labels (1)-(4). The
forget gate's delta is computed in ``lstm_cell_backward`` of bptt.kernels.fast.lstm (stage 3)
and in ``lstm_backward_loop`` of bptt.kernels.reference.lstm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cells import GATES
from ..kernels.reference import lstm as reference
from ._cache import _Cache, _bm, _fm, _readonly
from ._backend import _backend, _fast
from ._lengths import _caller_order, _Gradients, _packed_dh, _packed_for, _packed_loop_inputs, _reference_order, _sequences
from ._checks import _check_backward, _check_forward, _checked_gradients, _final_or_all, _raise_if_overflowed
from ._plan import (
    _backward_threads, _blas_for, _compiled_loop, _forward_threads, _loop_plan, _run_units_split, _time_major_inference,
    _units_split,
)
from ._arrays import (
    _batch_major, _dx_in_loop, _empty, _fm_stacked, _fm_weight_grads, _input_projection, _weight_grads,
    _input_projection_backward, _loop_inputs, _loop_matrix, _packed_rows, _recurrent_weight_grad,
    _state_in, _state_out, _states_ext, _time_major_copy, _time_major_or_zeros, _tm_stacked,
    _tm_states, _workspace,
)

#: Gate blocks of the LSTM (bptt.cells).
G = GATES["lstm"]


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


def lstm_forward(x, W, U, b, h0=None, c0=None, *, lengths=None, reverse=False, keep_cache=True, backend=None):
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
        lengths: ``(B,)`` integers, ``1 <= lengths[b] <= T``: sequence b's steps ``t >= lengths[b]``
            are padding (PyTorch's ``pack_padded_sequence``): ``h`` is 0 there, the final states
            are those after step ``lengths[b] - 1`` (:func:`final_state`), and padded steps take
            and pass no gradient. None: every sequence has T steps.
        reverse: True runs each sequence from its last real step back to step 0 (the reverse
            direction of a bidirectional layer); ``h[:, t]`` still belongs to input step t, and the
            final states are those after step 0.
        keep_cache: False for inference: nothing is kept for a backward pass and the cache
            returned is None.
        backend: ``"fast"`` (compiled kernels; the default) or ``"reference"`` (plain NumPy).

    Returns:
        ``(h, cache)``: ``h (B, T, H)`` the hidden state at every step (``h[:, -1]`` is h_T without
        lengths), and an :class:`LSTMCache` exposing ``gates (B, T, 4H)`` and ``c (B, T, H)``.
    """
    fn = "lstm_forward"
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, G, {"h0": h0, "c0": c0})
    seq = _sequences(fn, lengths, reverse, B, T)
    if backend == "fast":
        out = _lstm_forward_fast(a, B, T, I, H, keep_cache, seq)
        if out is not None:
            return out
    return _lstm_forward_reference(a, B, T, H, keep_cache, seq)


def _lstm_forward_reference(a, B, T, H, keep_cache, seq):
    arr = _reference_order(seq)
    x_tm = _time_major_copy(a["x"] if arr is None else arr.gather(a["x"]))
    gates = _input_projection(x_tm, a["W"], a["b"])
    c, tanh_c, h = (np.empty((T, B, H), gates.dtype) for _ in range(3))
    h_T, _ = reference.lstm_forward_loop(gates, a["U"], a["h0"], a["c0"], c, tanh_c, h,
                                         None if arr is None else arr.sorted_lengths)
    _raise_if_overflowed("lstm_forward", {"h": h_T}, a)
    cache = LSTMCache("tbf", x_tm, a["W"], a["U"], a["h0"], gates, h, a["c0"], c, tanh_c)._arranged(arr)
    out = _bm(h) if arr is None else arr.scatter(_bm(h))
    return _readonly(out), (cache if keep_cache else None)


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
            Two arrays less, ``(4H, T, B)`` and ``(H, T, B)`` (docs/performance.md has the peak memory).

    Returns:
        dict with ``dx (B, T, I)``, ``dW``, ``dU``, ``db`` (shapes of W, U, b), ``dh0``, ``dc0``
        ``(B, H)``, the per-step deltas ``dz (B, T, 4H)`` (dL/dz_t, gates [i, f, g, o]) and
        ``dc (B, T, H)`` (the total dL/dc_t).
    """
    dh, dh_last, dc_last = _check_backward(
        "lstm_backward", cache, LSTMCache, dh, {"dh_last": dh_last, "dc_last": dc_last}, keep_cache
    )
    T, B, H = cache.dims
    finals = {"dh_last": dh_last, "dc_last": dc_last, "c0": cache.c0}
    if cache.layout == "packed":
        with _blas_for(T, B, cache.n_inputs, H, G), cache.arrangement.threads():
            grads = _lstm_backward_packed(dh, cache, dh_last, dc_last, keep_cache)
        return _checked_gradients("lstm_backward", grads, cache, dh, finals)
    arr = cache.arrangement
    if arr is not None:  # into the processing order
        dh = None if dh is None else arr.gather(dh, zero_padded=True)  # dh at padded steps is never read
        dh_last, dc_last = arr.rows_in(dh_last), arr.rows_in(dc_last)
    if cache.layout == "tbf":
        dz = np.empty((T, B, G * H), cache.dtype)
        dc = np.empty((T, B, H), cache.dtype)
        dh0, dc0 = reference.lstm_backward_loop(
            _time_major_or_zeros(dh, cache), dh_last, dc_last, cache.U, cache.c0, cache.gates_s, cache.c_s, cache.tanh_c_s, dz, dc,
            None if arr is None else arr.sorted_lengths,
        )
        dx, dW, db = _input_projection_backward(cache.x_s, cache.W, dz)
        dU = _recurrent_weight_grad(cache.h0, cache.h_s, dz)
        grads = {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh0, "dc0": dc0, "dz": _bm(dz), "dc": _bm(dc)}
    else:
        plan = _loop_plan(T, B, H, G, cache.dtype)
        with _blas_for(T, B, cache.n_inputs, H, G), _backward_threads(plan):
            grads = _lstm_backward_fast(dh, cache, dh_last, dc_last, T, B, H, keep_cache, plan)
    if arr is not None:  # back into the caller's order
        grads = _caller_order(grads, arr)
    return _checked_gradients("lstm_backward", grads, cache, dh, finals)


def _lstm_forward_fast(a, B, T, I, H, keep_cache, seq):
    """The fast forward, or None where it does not run: with lengths and no BLAS callable from
    compiled code (the reference kernels then run; without lengths the Python loop does)."""
    fast = _fast().lstm
    plan = _loop_plan(T if seq is None else seq.work_steps, B, H, G, a["x"].dtype)
    if seq is not None:
        pk = _packed_for(seq, plan, a["x"].dtype)
        if pk is None:
            return None
        with _blas_for(T, B, I, H, G), pk.threads():
            return _lstm_forward_packed(fast, a, I, H, keep_cache, pk)
    with _forward_threads(plan, T, B, I, H, G, a["x"].dtype):
        return _lstm_forward_padded(fast, a, B, T, I, H, keep_cache, plan)


def _lstm_forward_padded(fast, a, B, T, I, H, keep_cache, plan):
    """The fast forward without lengths: the time-major inference loop or the feature-major one."""
    if not keep_cache and _time_major_inference(plan, I, H, G):
        xh = _tm_stacked(a["x"], a["h0"], T)
        gates = _workspace("lstm_gates", (G * H, 1, B), xh.dtype)
        c = _states_ext(a["c0"], 0)
        args = (_loop_matrix(a["W"], a["U"], 0), xh, gates, a["b"], c)
        cut = _units_split(T, B, H, G, xh.dtype, plan)
        if cut:
            _run_units_split(fast.lstm_inference_loop_units, plan.blas, args, cut, H)
        else:
            _compiled_loop(fast.lstm_inference_loop, T, B, H, G, xh.dtype, *args, plan=plan)
        _raise_if_overflowed("lstm_forward", {"h": xh[T, I:]}, a)  # h_T (see _final_or_all)
        # the loop's products are this path's only BLAS calls, threaded per step by _compiled_loop:
        # no BLAS context for the whole call (setting and restoring the thread count, 2.5 µs)
        return _readonly(_tm_states(xh, I)), None
    with _blas_for(T, B, I, H, G):
        return _lstm_forward_feature_major(fast, a, B, T, I, H, keep_cache, plan)


def _lstm_forward_feature_major(fast, a, B, T, I, H, keep_cache, plan):
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    k0, gates, A = _loop_inputs(xh, a["W"], a["U"], plan, G, T, keep_cache, "lstm_gates")
    c = _states_ext(a["c0"], T if keep_cache else 0)
    cut = 0
    if keep_cache and k0 == 0 and plan.blas is not None:
        cut = _units_split(T, B, H, G, xh.dtype, plan)
    if cut:
        _run_units_split(fast.lstm_forward_loop_units, plan.blas, (A, xh, gates, a["b"], c, h), cut, H)
    elif not _compiled_loop(fast.lstm_forward_loop, T, B, H, G, xh.dtype, A, k0, xh, gates, a["b"], c, h, keep_cache,
                            plan=plan):
        # no BLAS callable from compiled code: a Python loop, one np.matmul per step (k0 is 0: the
        # plan's blas is None, see _projection_in_loop)
        for t in range(T):
            tg = t if gates.shape[1] == T else 0
            np.matmul(A, xh[:, t], out=gates[:, tg])  # (1) the product
            cp, cc = (t, t + 1) if keep_cache else (0, 0)
            fast.lstm_step_forward(gates, tg, a["b"], c, cp, cc, h, t)  # (1)-(4) fused
    _raise_if_overflowed("lstm_forward", {"h": _final_or_all(h, layout="ftb")}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    cache = LSTMCache("ftb", x_fm, a["W"], a["U"], a["h0"], gates, h, a["c0"], c, None, xh)
    return _readonly(_fm(h[:, 1:])), cache


def _lstm_forward_packed(fast, a, I, H, keep_cache, pk):
    """The forward over packed sequences (bptt.functional._packed)."""
    xh = pk.pack_inputs(a["x"], a["h0"])
    k0, gates, per_step, A = _packed_loop_inputs(xh, a["W"], a["U"], pk, G, keep_cache, "lstm_gates")
    c = pk.states(a["c0"]) if keep_cache else pk.running(a["c0"])  # inference: c_t over c_{t-1}
    pk.run(fast.lstm_forward_packed, H, G, A, k0, xh, gates, per_step, a["b"], c, keep_cache, pk.n, pk.off, pk.pw,
           pk.parts)
    _raise_if_overflowed("lstm_forward", {"h": pk.finals_of(xh, I, H)}, a)
    h = pk.unpack(xh, I, H, states=True)
    if not keep_cache:
        return _readonly(h), None
    cache = LSTMCache("packed", xh[:I], a["W"], a["U"], a["h0"], gates, xh[I:], a["c0"], c, None, xh)._arranged(pk)
    return _readonly(h), cache


def _lstm_backward_fast(dh, cache, dh_last, dc_last, T, B, H, keep_cache, plan):
    fast = _fast().lstm
    # spending the cache: dz over the gate values, dc over c_1 … c_T (see lstm_cell_backward)
    dz = _empty((G * H, T, B), cache.dtype) if keep_cache else cache.gates_s
    dc = _empty((H, T, B), cache.dtype) if keep_cache else cache.c_s[:, 1:]
    dz_arg, dc_arg = (dz, dc) if keep_cache else (None, None)  # None: the kernels' sign for "in place"
    row = _workspace("lstm_backward_row", (B,), cache.dtype)
    use_dh = dh is not None
    dh_bm = _batch_major(dh) if use_dh else dz  # as the loops read it; dz: a placeholder never read
    dh_rec, dc_next = _state_in(dh_last), _state_in(dc_last)
    U, gates, c = np.ascontiguousarray(cache.U), cache.gates_s, cache.c_s
    Wp, dxp = _dx_in_loop(cache.W, plan, T)
    if not _compiled_loop(fast.lstm_backward_loop, T, B, H, G, cache.dtype, dh_bm, use_dh, U, _packed_rows(U, plan), gates, c,
                          dh_rec, dc_next, dz_arg, dc_arg, row, Wp, dxp, plan=plan):
        for t in range(T - 1, -1, -1):
            fast.lstm_step_backward(dh_bm, t, use_dh, dh_rec, gates, c, dc_next, dz_arg, dc_arg, row)
            np.matmul(U, dz[:, t], out=dh_rec)  # (1) dh_{t-1} = dz_t Uᵀ
    dx, dW, dU, db = _fm_weight_grads(cache.xh_s, cache.W, dz, T, dxp if Wp.shape[0] else None)
    return {
        "dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": _state_out(dh_rec), "dc0": _state_out(dc_next),
        "dz": _fm(dz), "dc": _fm(dc),
    }


def _lstm_backward_packed(dh, cache, dh_last, dc_last, keep_cache):
    """The backward over packed sequences (bptt.functional._packed): dz and dc as for
    :func:`_lstm_backward_fast`, dh read from the caller's array, the final states' gradients
    entering each sequence at its last real step."""
    fast = _fast().lstm
    pk = cache.arrangement
    T, B, H = cache.dims
    N = pk.N
    dz = pk.empty(G * H, cache.dtype) if keep_cache else cache.gates_s
    dc = pk.empty(H, cache.dtype) if keep_cache else cache.c_s
    dz_arg, dc_arg = (dz, dc) if keep_cache else (None, None)
    row = _workspace("lstm_backward_row", (pk.Bp,), cache.dtype)
    dh2, use_dh = _packed_dh(dh, B, T, H, cache.dtype)
    U, gates, c = np.ascontiguousarray(cache.U), cache.gates_s, cache.c_s
    dh_rec, dc_next = pk.empty_running(H, cache.dtype), pk.empty_running(H, cache.dtype)
    Wp, dxp = _dx_in_loop(cache.W, pk.plan, T, columns=N)
    pk.run(fast.lstm_backward_packed, H, G, dh2, pk.rows, use_dh, U, _packed_rows(U, pk.plan), gates, c, dh_rec, dc_next,
           pk.running(dh_last), pk.running(dc_last), dz_arg, dc_arg, row, Wp, dxp, pk.n, pk.width, pk.off, pk.pw,
           pk.parts)
    K = pk.K
    pk.zero_tail(dz)
    dx, dW, dU, db = _weight_grads(cache.xh_s[:, :K], cache.W, dz[:, :K], dxp[:, :K] if Wp.shape[0] else None)
    grads = _Gradients(dx=pk.unpack(dx, 0, cache.n_inputs, states=False), dW=dW, dU=dU, db=db,
                       dh0=pk.caller_rows(dh_rec), dc0=pk.caller_rows(dc_next))
    grads._later("dz", lambda: pk.unpack(dz, 0, G * H, states=False))
    # dc_t: its own per-step array, or over c_t (block s + 1) in place
    grads._later("dc", lambda: pk.unpack(dc, 0, H, states=not keep_cache))
    return grads
