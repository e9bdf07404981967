"""The GRU's forward pass and backpropagation through time, both reset forms (TMVA's CPU GRU,
``reset_after=False``; PyTorch's, cuDNN's and Keras's, ``reset_after=True``): validation, then
one call into bptt.kernels.reference.gru or bptt.kernels.fast.gru.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..cells import GATES
from ..kernels.reference import gru as reference
from ._cache import _Cache, _bm, _fm, _readonly
from ._backend import _backend, _fast
from ._lengths import (
    _caller_order, _Gradients, _packed_dh, _packed_for, _packed_loop_inputs, _reference_order, _sequences,
)
from ._checks import _check_backward, _check_forward, _checked_gradients, _final_or_all, _raise_if_overflowed
from ._plan import (
    _backward_threads, _blas_for, _compiled_loop, _forward_threads, _loop_plan, _run_units_split, _units_split,
)
from ._arrays import (
    _batch_major, _dx_in_loop, _empty, _fm_input_projection_backward, _fm_stacked, _projection_grads,
    _input_projection, _input_projection_backward, _loop_inputs, _packed_rows,
    _recurrent_weight_grad, _rows_product, _state_in, _state_out, _time_major_copy,
    _time_major_or_zeros, _workspace,
)

#: Gate blocks of the GRU (bptt.cells).
G = GATES["gru"]


@dataclass(frozen=True, eq=False)
class GRUCache(_Cache):
    b_u: np.ndarray
    reset_after: bool
    aux_s: np.ndarray  # h_{t-1} U_n + bu_n (reset_after) or r ⊙ h_{t-1} (reset before)


def gru_forward(x, W, U, b, b_u, h0=None, reset_after=True, *, lengths=None, reverse=False, keep_cache=True,
                backend=None):
    """GRU over a batch of sequences. Gate blocks in the order [r, z, n]::

        r = σ(x W_r + b_r + h U_r + bu_r)      z = σ(x W_z + b_z + h U_z + bu_z)
        reset_after=True  (PyTorch, cuDNN, Keras):  n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n))
        reset_after=False (TMVA's CPU GRU):         n = tanh(x W_n + b_n + (r ⊙ h) U_n + bu_n)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

    Args:
        x: ``(B, T, I)``.  W: ``(I, 3H)``.  U: ``(H, 3H)``.  b: ``(3H,)`` input bias.
        b_u: ``(3H,)`` recurrent bias.  h0: ``(B, H)``, zeros when omitted.
        lengths, reverse, keep_cache, backend: as for :func:`lstm_forward`.

    Returns:
        ``(h (B, T, H), cache)``; ``cache.gates (B, T, 3H)`` holds r, z, n at every step.
    """
    fn = "gru_forward"
    v.choice(fn, "reset_after", reset_after, (True, False))
    reset_after = bool(reset_after)
    backend = _backend(fn, backend)
    a, (B, T, I, H) = _check_forward(fn, x, W, U, b, G, {"h0": h0}, {"b_u": b_u})
    seq = _sequences(fn, lengths, reverse, B, T)
    if backend == "fast":
        with _blas_for(T, B, I, H, G):
            out = _gru_forward_fast(a, B, T, I, H, reset_after, keep_cache, seq)
        if out is not None:
            return out
    arr = _reference_order(seq)
    x_tm = _time_major_copy(a["x"] if arr is None else arr.gather(a["x"]))
    xw = _input_projection(x_tm, a["W"], a["b"])
    gates = np.empty_like(xw)
    aux, h = np.empty((T, B, H), xw.dtype), np.empty((T, B, H), xw.dtype)
    h_T = reference.gru_forward_loop(xw, a["U"], a["b_u"], a["h0"], reset_after, gates, aux, h,
                                     None if arr is None else arr.sorted_lengths)
    _raise_if_overflowed(fn, {"h": h_T}, a)
    cache = GRUCache("tbf", x_tm, a["W"], a["U"], a["h0"], gates, h, a["b_u"], reset_after, aux)._arranged(arr)
    return _readonly(_bm(h) if arr is None else arr.scatter(_bm(h))), (cache if keep_cache else None)


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
    finals = {"dh_last": dh_last, "b_u": cache.b_u}
    if cache.layout == "packed":
        with _blas_for(T, B, cache.n_inputs, H, G), cache.arrangement.threads():
            grads = _gru_backward_packed(dh, cache, dh_last, keep_cache)
        return _checked_gradients("gru_backward", grads, cache, dh, finals)
    arr = cache.arrangement
    if arr is not None:  # into the processing order
        dh = None if dh is None else arr.gather(dh, zero_padded=True)  # dh at padded steps is never read
        dh_last = arr.rows_in(dh_last)
    if cache.layout == "tbf":
        dz = np.empty((T, B, G * H), cache.dtype)
        dhu = np.empty_like(dz) if ra else None
        dh0 = reference.gru_backward_loop(
            _time_major_or_zeros(dh, cache), dh_last, cache.U, cache.h0, ra, cache.gates_s, cache.aux_s, cache.h_s, dz, dhu,
            None if arr is None else arr.sorted_lengths,
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
        plan = _loop_plan(T, B, H, G, cache.dtype)
        with _blas_for(T, B, cache.n_inputs, H, G), _backward_threads(plan):
            grads = _gru_backward_fast(dh, cache, dh_last, T, B, H, ra, keep_cache, plan)
    if arr is not None:
        grads = _caller_order(grads, arr)
    return _checked_gradients("gru_backward", grads, cache, dh, finals)


def _gru_forward_fast(a, B, T, I, H, reset_after, keep_cache, seq):
    """The fast forward, or None with lengths and no BLAS callable from compiled code (see
    bptt.functional.lstm._lstm_forward_fast)."""
    fast = _fast().gru
    plan = _loop_plan(T if seq is None else seq.work_steps, B, H, G, a["x"].dtype)
    if seq is not None:
        pk = _packed_for(seq, plan, a["x"].dtype)
        if pk is None:
            return None
        with pk.threads():
            return _gru_forward_packed(fast, a, I, H, reset_after, keep_cache, pk)
    with _forward_threads(plan, T, B, I, H, G, a["x"].dtype, units=reset_after):
        return _gru_forward_padded(fast, a, B, T, I, H, reset_after, keep_cache, plan)


def _gru_forward_padded(fast, a, B, T, I, H, reset_after, keep_cache, plan):
    """The fast forward without lengths (the loop cut by units in the reset-after form only)."""
    xh = _fm_stacked(a["x"], a["h0"], T)
    x_fm, h = xh[:I, :T], xh[I:]
    k0, gates, A = _loop_inputs(xh, a["W"], a["U"], plan, G, T, keep_cache, "gru_gates")
    aux = _empty((H, T if (keep_cache or not reset_after) else 1, B), xh.dtype)
    bx, bu = a["b"], a["b_u"]
    hu = _workspace("hu", (G * H, B), xh.dtype)
    cut = 0
    if reset_after and k0 == 0 and plan.blas is not None:
        cut = _units_split(T, B, H, G, xh.dtype, plan)
    if cut:
        _run_units_split(fast.gru_forward_loop_units, plan.blas, (A, xh, gates, bx, bu, aux, h, hu), cut, H)
    elif not _compiled_loop(fast.gru_forward_loop, T, B, H, G, xh.dtype, A, k0, xh, gates, bx, bu, reset_after, aux,
                            keep_cache, h, hu, plan=plan):
        # no BLAS callable from compiled code: a Python loop, np.matmul per product (k0 is 0, as for the LSTM)
        A_rz, Wn_T, Un_T, hu_n = A[: 2 * H], A[2 * H :, :I], A[2 * H :, I:], hu[2 * H :]
        for t in range(T):
            tg = t if gates.shape[1] == T else 0
            np.matmul(A_rz, xh[:, t], out=gates[: 2 * H, tg])
            np.matmul(Wn_T, xh[:I, t], out=gates[2 * H :, tg])
            if reset_after:
                np.matmul(Un_T, h[:, t], out=hu_n)
                fast.gru_step_forward_after(gates, tg, hu, True, bx, bu, aux, t if aux.shape[1] == T else 0, h, t)
            else:  # the n block's product needs r first
                fast.gru_step_forward_before_rz(gates, tg, hu, True, bx, bu, aux, h, t)
                np.matmul(Un_T, aux[:, t], out=hu_n)
                fast.gru_step_forward_before_n(gates, tg, hu, bx, bu, h, t)
    _raise_if_overflowed("gru_forward", {"h": _final_or_all(h, layout="ftb")}, a)
    if not keep_cache:
        return _readonly(_fm(h[:, 1:])), None
    cache = GRUCache("ftb", x_fm, a["W"], a["U"], a["h0"], gates, h, a["b_u"], reset_after, aux)
    return _readonly(_fm(h[:, 1:])), cache


def _gru_forward_packed(fast, a, I, H, reset_after, keep_cache, pk):
    """The forward over packed sequences (bptt.functional._packed)."""
    xh = pk.pack_inputs(a["x"], a["h0"])
    h = xh[I:]
    k0, gates, per_step, A = _packed_loop_inputs(xh, a["W"], a["U"], pk, G, keep_cache, "gru_gates")
    aux_step = keep_cache or not reset_after
    aux = pk.empty(H, xh.dtype) if aux_step else _workspace("gru_aux", (H, pk.Bp), xh.dtype)
    hu = _workspace("hu", (G * H, pk.Bp), xh.dtype)
    pk.run(fast.gru_forward_packed, H, G, A, k0, xh, h, gates, per_step, a["b"], a["b_u"], reset_after, aux, aux_step, hu,
           pk.n, pk.width, pk.off, pk.pw, pk.parts)
    _raise_if_overflowed("gru_forward", {"h": pk.finals_of(xh, I, H)}, a)
    out = _readonly(pk.unpack(xh, I, H, states=True))
    if not keep_cache:
        return out, None
    return out, GRUCache("packed", xh[:I], a["W"], a["U"], a["h0"], gates, h, a["b_u"], reset_after, aux)._arranged(pk)


def _gru_backward_fast(dh, cache, dh_last, T, B, H, ra, keep_cache, plan):
    fast = _fast().gru
    dz = _empty((G * H, T, B), cache.dtype) if keep_cache else cache.gates_s  # see gru_cell_backward
    dz_arg = dz if keep_cache else None  # the kernels' sign for "in place over the gates"
    dhu = _empty((H, T, B), dz.dtype) if ra else dz  # reset-before: a placeholder that is never written
    row = _workspace("gru_backward_row", (B,), cache.dtype)
    use_dh = dh is not None
    dh_bm = _batch_major(dh) if use_dh else dz
    dh_rec = _state_in(dh_last)
    dh_prev = _workspace("dh_prev", (H, B), cache.dtype)
    drh = _workspace("drh", (H, B), cache.dtype)
    U, gates, aux, h = np.ascontiguousarray(cache.U), cache.gates_s, cache.aux_s, cache.h_s
    Wp, dxp = _dx_in_loop(cache.W, plan, T)
    if not _compiled_loop(fast.gru_backward_loop, T, B, H, G, cache.dtype, dh_bm, use_dh, U, _packed_rows(U, plan), gates, aux,
                          h, ra, dh_rec, dh_prev, drh, dz_arg, dhu, row, Wp, dxp, plan=plan):
        U_rz, U_n, dz_rz, dz_n = U[:, : 2 * H], U[:, 2 * H :], dz[: 2 * H], dz[2 * H :]
        for t in range(T - 1, -1, -1):
            fast.gru_step_backward(dh_bm, t, use_dh, dh_rec, gates, aux, h, ra, dz_arg, dhu, dh_prev, row)
            if ra:
                np.matmul(U[:, : 2 * H], dz[: 2 * H, t], out=dh_rec)
                dh_rec += U[:, 2 * H :] @ dhu[:, t]
            else:
                np.matmul(U_n, dz_n[:, t], out=drh)
                fast.gru_step_backward_before_r(drh, gates, t, h, dz_arg, dh_prev)
                np.matmul(U_rz, dz_rz[:, t], out=dh_rec)
            _fast().common.add_into(dh_rec, dh_prev)
    dx, dW, db = _fm_input_projection_backward(cache.x_s, cache.W, dz, dxp if Wp.shape[0] else None)
    dU, db_u = _gru_recurrent_grads(h[:, :T].reshape(H, T * B), dz.reshape(G * H, T * B),
                                    dhu.reshape(H, T * B) if ra else None, aux.reshape(H, T * B), db, cache)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "db_u": db_u, "dh0": _state_out(dh_rec), "dz": _fm(dz)}


def _gru_recurrent_grads(h_prev, dz2, dhu2, aux2, db, cache):
    """``dU`` and ``db_u`` from the deltas of K columns (2-D, rows contiguous): ``h_prev (H, K)``
    the states each column's step read, ``dz2 (3H, K)``, ``dhu2 (H, K)`` the n block of
    dL/d(h U + b_u) (reset-after; None for reset-before), ``aux2 (H, K)`` r ⊙ h_{t-1} (reset-before)."""
    H = h_prev.shape[0]
    dU = np.empty_like(cache.U)
    dU[:, : 2 * H] = _rows_product(h_prev, dz2[: 2 * H])
    if dhu2 is not None:  # dhu holds the n block of dL/d(h U + b_u); its r and z blocks are dz's
        dU[:, 2 * H :], db_u_n = _rows_product(h_prev, dhu2, sums=True)
        return dU, np.concatenate((db[: 2 * H], db_u_n))
    _rows_product(aux2, dz2[2 * H :], out=dU[:, 2 * H :])
    return dU, db.copy()


def _gru_backward_packed(dh, cache, dh_last, keep_cache):
    """The backward over packed sequences (bptt.functional._packed), as
    bptt.functional.lstm._lstm_backward_packed."""
    fast = _fast().gru
    pk = cache.arrangement
    T, B, H = cache.dims
    ra, N, K = cache.reset_after, pk.N, pk.K
    dz = pk.empty(G * H, cache.dtype) if keep_cache else cache.gates_s
    dz_arg = dz if keep_cache else None
    dhu = pk.empty(H, dz.dtype) if ra else dz  # reset-before: a placeholder never written
    row = _workspace("gru_backward_row", (pk.Bp,), cache.dtype)
    dh2, use_dh = _packed_dh(dh, B, T, H, cache.dtype)
    dh_rec = pk.empty_running(H, cache.dtype)
    dh_prev = _workspace("dh_prev", (H, pk.Bp), cache.dtype)
    drh = _workspace("drh", (H, pk.Bp), cache.dtype)
    U, gates, aux, h = np.ascontiguousarray(cache.U), cache.gates_s, cache.aux_s, cache.h_s
    Wp, dxp = _dx_in_loop(cache.W, pk.plan, T, columns=N)
    pk.run(fast.gru_backward_packed, H, G, dh2, pk.rows, use_dh, U, _packed_rows(U, pk.plan), gates, aux, h, ra, dh_rec,
           pk.running(dh_last), dh_prev, drh, dz_arg, dhu, row, Wp, dxp, pk.n, pk.width, pk.off, pk.pw, pk.parts)
    pk.zero_tail(dz, dhu if ra else aux)
    dz2 = dz[:, :K]
    dx, dW, db = _projection_grads(cache.x_s[:, :K], cache.W, dz2, dxp[:, :K] if Wp.shape[0] else None)
    dU, db_u = _gru_recurrent_grads(h[:, :K], dz2, dhu[:, :K] if ra else None, aux[:, :K], db, cache)
    grads = _Gradients(dx=pk.unpack(dx, 0, cache.n_inputs, states=False), dW=dW, dU=dU, db=db, db_u=db_u,
                       dh0=pk.caller_rows(dh_rec))
    grads._later("dz", lambda: pk.unpack(dz, 0, G * H, states=False))
    return grads
