"""The fast path's arrays: the feature-major layout ``(features, T, B)`` the compiled loops read
and write, the stacked inputs and states, aligned arrays, workspaces reused between calls, and
the products around the time loop (input projection, weight and bias gradients); plus the
time-major helpers of the reference path. Sizes that pick a variant come from
:data:`bptt.settings.settings` (the figures behind them: docs/performance.md)."""

from __future__ import annotations

import ctypes
import functools
import math
import threading

import numpy as np

from ..settings import OwnKernel, settings
from .._threads import blas_max_threads, run_in_two_threads
from ._cache import _bm, _fm
from ._backend import _fast, _kernel
from ._plan import _LoopPlan, _own_kernel_on, _projection_in_loop


def _time_major_copy(x: np.ndarray) -> np.ndarray:
    """``x (B, T, I)`` as a new C-contiguous ``(T, B, I)`` array (a copy even when B = 1, where
    ``ascontiguousarray`` would return a view of the caller's array)."""
    return np.array(_bm(x), order="C", copy=True)


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


#: The byte alignment of every array the compiled loops read or write step by step (:func:`_empty`).
ALIGN = 64


def _aligns(nbytes: int, row_bytes: int) -> bool:
    """Whether :func:`_empty` aligns an array of ``nbytes`` whose rows (last axis) take ``row_bytes``."""
    return nbytes >= settings.align_min_bytes and row_bytes % ALIGN == 0


def _empty(shape, dtype, always: bool = False) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting on an :data:`ALIGN`-byte boundary, a cache line (a view
    of a slightly larger buffer). malloc aligns to 16 bytes only, and the rows of the fast
    layout's per-step arrays all start at the same offset from a cache line as the array does: a
    row's part of 16 float32 columns then spans two cache lines instead of one, and every vector
    load of it is split.

    Only arrays of at least ``settings.align_min_bytes`` whose rows (the last axis) are a whole number
    of cache lines: for other rows, aligning the array cannot align them all, and those are
    plain ``np.empty`` arrays. ``always``: aligned whatever the shape (workspaces and scratch buffers)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    if not (always or _aligns(n, shape[-1] * dtype.itemsize)):
        return np.empty(shape, dtype)
    buf = np.empty(n + ALIGN, np.uint8)
    # the address by ctypes.c_char and a view by the ndarray constructor: the cheapest ways
    s = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % ALIGN
    return np.ndarray(shape, dtype, buf, s)


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
    if 2 * N * I * G_H >= settings.projection_two_threads_flops and half and blas_max_threads() >= 2:
        run_in_two_threads(F.project, (*args, 0, half), (*args, half, N))
    else:
        F.project(*args, 0, N)
    return out


def _fm_input_projection_backward(x_fm, W, dz, dx_fm=None):
    """``dx``, ``dW``, ``db`` from the feature-major ``dz (G·H, T, B)``: :func:`_projection_grads`
    over the T·B columns of the steps, dx returned as a batch-major view of the feature-major
    result. ``dx_fm``: dxᵀ already computed by the backward loop, as for :func:`_fm_weight_grads`."""
    I, T, B = x_fm.shape
    dx2 = None if dx_fm is None else dx_fm.reshape(dx_fm.shape[0], T * B)
    dx, dW, db = _projection_grads(x_fm.reshape(I, T * B), W, dz.reshape(dz.shape[0], T * B), dx2)
    return _fm(dx.reshape(I, T, B)), dW, db


def _projection_grads(X, W, dz2, dx2=None):
    """``dxᵀ (I, K)``, ``dW``, ``db`` of the input projection from the deltas ``dz2 (G·H, K)`` of K
    columns and the inputs ``X (I, K)`` (2-D, rows contiguous): one GEMM each, both with the long
    K axis as the contiguous one of their operands: ``dxᵀ = W @ dz`` and ``dWᵀ (G·H, I) = dz @ Xᵀ``.
    ``dx2``: dxᵀ already computed (``(≥ I, K)``, its first I rows are dx)."""
    I = W.shape[0]
    dx = W @ dz2 if dx2 is None else dx2[:I]
    if _dot_tiles_for(X, dz2):
        return (dx, *_dot_product(X, dz2, sums=True))
    return dx, _transposed(dz2 @ X.T), _row_sums(dz2)


def _feature_major_view(a: np.ndarray) -> np.ndarray | None:
    """``a.T``, an ``(F, T, B)`` array whose rows hold T·B contiguous values each, where ``a (B, T,
    F)`` is the batch-major view of such a feature-major array (what the fast calls return as ``h``
    and ``dx``: rows of a larger array, as ``h`` in the stacked ``xh``, or a whole array; so what a
    layer after a recurrent one receives), else None."""
    if a.ndim != 3 or a.flags.c_contiguous:
        return None
    B, T, _ = a.shape
    item = a.itemsize
    if a.strides[0] == item and a.strides[1] == B * item and a.strides[2] >= T * B * item:
        return a.T
    return None


def _batch_major(a: np.ndarray) -> np.ndarray:
    """``a (B, T, F)`` as a C-contiguous array: ``a`` itself when it is one; the batch-major view of
    a feature-major array (:func:`_feature_major_view`) of at least
    ``settings.batch_major_kernel_min_values`` values by bptt.kernels.fast.from_feature_major, one
    pass in cache-line blocks (NumPy's copy of such a view reads one value per row of 4·T·B bytes:
    1.1 against 0.32 ms at (256, 30, 64), 3.8 against 0.54 at (64, 100, 128)); any other array
    by NumPy."""
    if a.flags.c_contiguous:
        return a
    fm = _feature_major_view(a)
    if fm is None or a.size < settings.batch_major_kernel_min_values:
        return np.ascontiguousarray(a)
    out = np.empty(a.shape, a.dtype)
    _fast().from_feature_major(fm, out)
    return out


def _fm_stacked(x, h0, T):
    """The inputs ``x (B, T, I)`` and the states in one feature-major array ``xh (I + H, T + 1, B)``:
    rows [0, I) hold x_t in slot t < T (slot T is never read), rows [I, I + H) the states, h0 in
    slot 0 (the time loops write h_t into slot t + 1). So ``[x_t; h_{t-1}]`` of all steps is one
    matrix of T·B columns, and dW and dU one GEMM (:func:`_fm_weight_grads`)."""
    B, T, I = x.shape
    xh = _empty((I + h0.shape[1], T + 1, B), x.dtype)
    fm = _feature_major_view(x)
    if fm is not None:  # a recurrent layer's output: rows of T·B values, copied as they are
        xh[:I, :T] = fm
    else:
        _fast().to_feature_major(np.ascontiguousarray(x), xh[:I])
    xh[I:, 0] = h0.T
    return xh


def _tm_stacked(x, h0, T):
    """The inputs ``x (B, T, I)`` and the states in one **time-major** array ``xh (T + 1, I + H, B)``
    for inference (:func:`_time_major_inference`): ``xh[t]`` holds ``[x_t; h_{t-1}]``, one
    contiguous block (``xh[0, I:]`` the initial state, ``xh[T, :I]`` never read)."""
    B, T, I = x.shape
    xh = _empty((T + 1, I + h0.shape[1], B), x.dtype)
    fm = _feature_major_view(x)
    if fm is not None:  # as in _fm_stacked: rows of B values copied as they are
        xh[:T, :I] = fm.transpose(1, 0, 2)
    else:
        _fast().to_feature_major(np.ascontiguousarray(x), xh[:T, :I].transpose(1, 0, 2))
    xh[0, I:] = h0.T
    return xh


def _tm_states(xh, I):
    """The states h_1 … h_T of a time-major :func:`_tm_stacked` array as a batch-major ``(B, T, H)`` view."""
    return xh[1:, I:].transpose(2, 0, 1)


def _dx_in_loop(W: np.ndarray, plan: _LoopPlan, T: int, columns: int | None = None):
    """``(Wp, dx)`` for a backward loop (LSTM, GRU) that computes ``dx_t = W dz_t`` at each step,
    on bptt's micro-kernel: W's rows padded with zeros to a multiple of its tile's rows, and the
    padded feature-major ``dx (Ip, T, B)`` it writes; or two empty arrays (then
    :func:`_fm_weight_grads` or :func:`_fm_input_projection_backward` computes dx as one GEMM)
    where the micro-kernel would not take that product on its main tile (``MR × NC``): float64,
    no micro-kernel, ``settings.dx_in_loop`` False, or loop parts whose width is no multiple of NC
    (narrower tiles are slower than the GEMM after the loop). The LSTM and GRU only: the RNN's
    steps (G·H = H rows) are too cheap to gain. ``columns``: dx packed, ``(Ip, columns)``
    (bptt.functional._packed), instead of ``(Ip, T, B)``."""
    mk = _kernel("microkernel")
    MR, NC = mk.MR, mk.NC

    if (plan.own != OwnKernel.ALL or plan.blas is None or any(w % NC for w in plan.widths)
            or W.dtype != np.float32 or not settings.dx_in_loop):  # the cheap tests first
        return np.empty((0, 1), W.dtype), np.empty((0, 1, 1) if columns is None else (0, 1), W.dtype)
    I = W.shape[0]
    Ip = -(-I // MR) * MR
    Wp = np.zeros((Ip, W.shape[1]), W.dtype)
    Wp[:I] = W
    return Wp, _empty((Ip, T, plan.B) if columns is None else (Ip, columns), W.dtype, always=columns is not None)


def _fm_weight_grads(xh, W, dz, T, dx_fm=None):
    """``dx``, ``dW``, ``dU``, ``db`` from the feature-major ``dz (G·H, T, B)`` and the stacked
    inputs and states of :func:`_fm_stacked` (:func:`_weight_grads` over the T·B columns of the
    steps, dx as a batch-major view). ``dx_fm``: dxᵀ already computed, feature-major
    ``(≥ I, T, B)`` (the backward loop's, :func:`_dx_in_loop`; its first I rows are dx)."""
    I = W.shape[0]
    B = dz.shape[2]
    XH = xh[:, :T].reshape(xh.shape[0], T * B)
    dx2 = None if dx_fm is None else dx_fm.reshape(dx_fm.shape[0], T * B)
    dx, dW, dU, db = _weight_grads(XH, W, dz.reshape(dz.shape[0], T * B), dx2)
    return _fm(dx.reshape(I, T, B)), dW, dU, db


def _weight_grads(XH, W, dz2, dx2=None):
    """``dxᵀ (I, K)``, ``dW``, ``dU``, ``db`` from the deltas ``dz2 (G·H, K)`` of K columns and the
    stacked inputs and states ``XH (I + H, K)`` they saw (2-D, rows contiguous, any row stride):
    ``dxᵀ = W @ dz`` and ``[dW; dU]ᵀ (G·H, I + H) = dz @ XHᵀ`` as one GEMM, both with the long K
    axis as the contiguous one of their operands. ``dx2``: dxᵀ already computed (``(≥ I, K)``, the
    backward loop's, :func:`_dx_in_loop`; its first I rows are dx)."""
    I = W.shape[0]
    dx = W @ dz2 if dx2 is None else dx2[:I]
    if _dot_tiles_for(XH, dz2):
        WU, db = _dot_product(XH, dz2, sums=True)  # [dW; dU] in their own layout
        return dx, WU[:I], WU[I:], db
    dWU = dz2 @ XH.T
    return dx, _transposed(dWU[:, :I]), _transposed(dWU[:, I:]), _row_sums(dz2)


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` of a C-contiguous 2-D array as a BLAS product with a vector of ones (the
    bias gradients): accumulated as the weight-gradient GEMMs beside it are, on BLAS's threads."""
    return a @ np.ones(a.shape[1], a.dtype)


def _rows_product(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None, sums: bool = False):
    """``A @ Bᵀ`` (into ``out`` when given) by :func:`_dot_product` where it applies, else by BLAS;
    ``sums``: ``(A @ Bᵀ, B.sum(axis=1))``."""
    if _dot_tiles_for(A, B):
        return _dot_product(A, B, out, sums)
    product = np.matmul(A, B.T, out=out)
    return (product, _row_sums(B)) if sums else product



def _dot_tiles_for(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether :func:`_dot_product` takes ``A @ Bᵀ`` (the weight gradients, M × N over K = T·B):
    float32, rows contiguous in k (as the dot tiles read them, where OpenBLAS packs them first and
    splits its threads over the short M and N), an output of at most
    ``settings.dot_tiles_max_output`` values, bptt's micro-kernels on (:func:`_own_kernel_on`) and
    ``settings.dot_tiles``. Small products too: on one thread the dot tiles took 14.6 µs where
    OpenBLAS took 34.9 at 40 × 40 × 560 (the TMVA tutorial's LSTM with ragged lengths), 2.1
    against 3.9 at 13 × 10 × 560 (docs/performance.md, "Small weight gradients")."""
    M, N = A.shape[0], B.shape[0]
    rows_contiguous = A.strides[1] == B.strides[1] == 4 or A.shape[1] == 1
    return (A.dtype == np.float32 and B.dtype == np.float32 and rows_contiguous and M * N <= settings.dot_tiles_max_output
            and _own_kernel_on() and settings.dot_tiles)


@functools.lru_cache(maxsize=1)
def _ones_block() -> np.ndarray:
    """NT_BLOCK float32 ones: the row of A that makes bptt.kernels.fast.nt_product sum B's rows."""
    return np.ones(_fast().NT_BLOCK, np.float32)


def _dot_product(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None, sums: bool = False):
    """``out (M, N) = A (M, K) @ B (N, K)ᵀ`` by bptt.kernels.fast.nt_product (see
    :func:`_dot_tiles_for`); ``out`` a new C-contiguous array unless given (rows contiguous).
    Its rows are cut in two for two threads from ``settings.dot_tiles_two_threads_flops`` (one
    below, with ``settings.loop_threads`` 1 or with BLAS limited to one thread). ``sums``: return ``(out, B.sum(axis=1))``, the sums from the same pass over B
    (on the second thread)."""
    (M, K), N = A.shape, B.shape[0]
    if out is None:
        out = np.empty((M, N), A.dtype)
    row_sums = np.empty(N if sums else 0, A.dtype)
    no_sums = row_sums[:0]
    nt, ones = _fast().nt_product, _ones_block()
    step = _kernel("microkernel").DOT_ROWS[0]
    cut = (M // 2 + step // 2) // step * step
    if (not 0 < cut < M or 2 * M * N * K < settings.dot_tiles_two_threads_flops or settings.loop_threads == 1
            or blas_max_threads() < 2):
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
    state is small, and ``np.array`` copies it faster)."""
    if not _aligns(a.nbytes, a.shape[0] * a.itemsize):
        return np.array(a.T, order="C", copy=True)
    out = _empty(a.shape[::-1], a.dtype)
    out[...] = a.T
    return out


def _state_out(a):
    """The fast path's ``(H, B)`` state as a contiguous ``(B, H)`` array for the caller."""
    return np.ascontiguousarray(a.T)


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
    for a C-contiguous ``a`` at least as wide as tall (the weight matrices, ``(I or H, G·H)``) and of
    at least 4096 values, else by NumPy (faster for tall sources, strided views and tiny arrays)."""
    if a.flags.c_contiguous and a.shape[1] >= a.shape[0] and a.size >= 4096:
        _fast().transpose_into(a, out, c0)
    else:
        out[:, c0:c0 + a.shape[0]] = a.T


def _packed_rows(U: np.ndarray, plan: _LoopPlan) -> np.ndarray:
    """``U (H, G·H)`` packed in panels of rows for the micro-kernel of the backward loops
    (bptt.kernels.microkernel.pack_rows), or an empty array where it will not run: not float32,
    H not a multiple of the panel, or the loop's ``plan`` not on the micro-kernel. The panels are
    a workspace reused by later calls (no page faults for a new array)."""
    mk = _kernel("microkernel")
    PANEL, pack_rows = mk.PANEL, mk.pack_rows

    H = U.shape[0]
    if U.dtype != np.float32 or H % PANEL or plan.own == OwnKernel.OFF:
        return np.empty((0, 1, PANEL), U.dtype)
    out = _workspace("packed", (H // PANEL, U.shape[1], PANEL), U.dtype)  # used within the call only
    pack_rows(U, out)
    return out


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


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """An array for use within one call, from one buffer per name and thread that grows to the
    largest size asked for (so at most one such buffer per name, whatever the shapes), or a new
    array when it is smaller than ``settings.scratch_bytes`` (glibc maps larger arrays afresh on
    every allocation, and page-faulting them in costs more than the call's arithmetic)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size * dtype.itemsize < settings.scratch_bytes:
        return _empty(shape, dtype)
    pool = getattr(_workspaces, "scratch", None)
    if pool is None:
        pool = _workspaces.scratch = {}
    buf = pool.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        pool[name] = None  # let the old buffer go before the new one is allocated
        buf = pool[name] = _empty((size,), dtype, always=True)
    return buf[:size].reshape(shape)
