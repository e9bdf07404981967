"""Fused Numba kernels for the LSTM, GRU and simple RNN: the fast path behind ``bptt.functional``.

Layout. Every per-step array is stored **feature-major**, ``(features, T, B)`` (but for the
caller's batch-major ``dh (B, T, H)``, which the backward loops read as it is), and the states
carry one extra leading step, ``h (H, T + 1, B)`` with ``h[:, 0] = h0`` (likewise ``c``): step ``t``
reads slot ``t`` and writes slot ``t + 1``. So

* the gate arithmetic of one step runs over contiguous rows of the batch, vectorised (the batch
  is ≥ 32 on every benchmark row, where H may be as small as 10);
* the input projection of all steps is part of each step's product over the stacked
  ``[x_t; h_{t-1}]`` (``bptt.functional._projection_in_loop``), or, where the hand-written
  product runs the loop, one GEMM before it, ``Wᵀ (G·H, I) @ Xᵀ (I, T·B)``;
* the weight gradients are one GEMM each after the reverse loop: ``dWᵀ = dz (G·H, T·B) @ X``,
  ``dUᵀ = dz (G·H, T·B) @ h[:, :T]ᵀ`` — the first T state slots are h_0 … h_{T-1}.

Kernels index the full 3-D arrays with the step (never 2-D slices, whose unknown strides would
stop LLVM from vectorising), and each inner loop over the batch touches few arrays (beyond a
handful LLVM gives up proving that they do not overlap, and the loop stays scalar): a cell's
arithmetic is split into short passes over the same cached row.

Each cell has a *step* kernel pair (forward and backward, the stages of ``reference.py`` in the
same order) and one driver per direction, ``*_forward_loop`` / ``*_backward_loop``, that runs the
whole time loop in one compiled call over the batch columns ``[b0, b1)`` (the sequences are
independent in the loop: ``bptt.functional`` may run two parts on two threads; the step kernels,
for the Python loop, take the whole batch). The forward drivers ``*_units`` instead run as one of
two threads that split the hidden units, meeting after every step (bptt.kernels.sync), and the
LSTM's inference drivers read a time-major ``(T + 1, I + H, B)`` stack. Each driver's recurrent
product (:func:`_product`) is

* a hand-written loop vectorised over the batch for small sizes, where a BLAS call per step costs
  more than the product itself;
* bptt's own float32 micro-kernel (``bptt.kernels.microkernel``), where ``bptt.functional``
  chooses it and the shapes suit it;
* NumPy's own BLAS GEMM, called by address from the compiled loop (``bptt.kernels.blas``), for
  the rest: no Python per step, and the LSTM's product accumulates straight into the step's gates.

Where no BLAS symbol can be called, ``bptt.functional`` runs the step kernels from a Python loop
with one ``np.matmul`` per step instead.

Transcendentals: in float32, tanh is Eigen's rational approximation (accurate to a few float32
ulps, its argument clamped at ±7.9053, where it gives ±(1 − 2.4e-7)), exactly ±1 from |x| = 9.0109
on, where tanh rounds to ±1, and σ(x) = ½ tanh(x/2) + ½, plain arithmetic that LLVM vectorises
(Numba has no vector math library). Both are accurate in absolute terms (≤ 4 ulps of 1); near
saturation, derivatives formed from them (1 − y², y(1 − y)) carry a relative error of up to a few
1e-4, like any float32 tanh (PyTorch's: ~4e-5), and at saturation they are exactly 0, as the
reference's: inputs of ~1e4 would otherwise turn derivatives of 2.4e-7 into weight gradients of
~0.1 where the exact ones are 0 (tests/test_saturation.py). In float64 they are libm's ``tanh``
and ``exp``: the float64 path is the verification path.

Compiled code is cached on disk (``cache=True``): a new process loads it instead of compiling.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from .blas import gemm
from .microkernel import (DOT_NR, DOT_ROWS, LANES, MR, NC, dot_column_0, dot_column_1, dot_column_2, dot_column_3,
                          dot_tile_0, dot_tile_1, dot_tile_2, dot_tile_3, own_product, own_product_p)
from .sync import publish, wait_for

#: A fingerprint of the modules whose code is compiled into this module's kernels (``blas.py``,
#: ``microkernel.py``: intrinsics and overloads, inlined). Numba's disk cache checks only the
#: contents of the file a function is defined in, so an edit there alone would leave kernels
#: compiled with the old code in the cache. tests/test_kernel_cache.py fails until this value is
#: updated (``python -m bptt.kernels.fingerprint``), and updating it changes this file, so every
#: kernel here is compiled afresh.
COMPILED_DEPENDENCIES = "d3d31bd0c3c2e1a5"

_JIT = dict(cache=True, fastmath=True, error_model="numpy", nogil=True, boundscheck=False)
_INLINE = dict(_JIT, inline="always")

# ──────────────────────────────────────────────────────────────────────── activations

_f32 = np.float32
_A1, _A3, _A5, _A7 = _f32(4.89352455891786e-03), _f32(6.37261928875436e-04), _f32(1.48572235717979e-05), _f32(5.12229709037114e-08)
_A9, _A11, _A13 = _f32(-8.60467152213735e-11), _f32(2.00018790482477e-13), _f32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = _f32(4.89352518554385e-03), _f32(2.26843463243900e-03), _f32(1.18534705686654e-04), _f32(1.19825839466702e-06)
_CLAMP = _f32(7.90531110763549805)
#: The smallest float32 whose tanh rounds to 1 (1 − tanh x < 2^-25 from ½ ln(2^26 − 1) = 9.0109133 on):
#: from here on the float32 tanh is exactly ±1, and σ(x) = ½ tanh(x/2) + ½ exactly 0 or 1 (|x| ≥ 18.02).
_SATURATED = _f32(9.010913848876953)
_ONE32, _HALF32 = _f32(1.0), _f32(0.5)


def tanh_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return math.tanh(x)


def sigmoid_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return 1.0 / (1.0 + math.exp(-x))


@overload(tanh_, inline="always", jit_options={"fastmath": True})
def _ol_tanh(x):
    if x == types.float32:

        def impl(x):
            s = max(-_CLAMP, min(_CLAMP, x))
            x2 = s * s
            p = x2 * _A13 + _A11
            p = x2 * p + _A9
            p = x2 * p + _A7
            p = x2 * p + _A5
            p = x2 * p + _A3
            p = x2 * p + _A1
            q = x2 * _B6 + _B4
            q = x2 * q + _B2
            q = x2 * q + _B0
            # exactly ±1 where tanh rounds to ±1 (the approximation stops at ±(1 − 2.4e-7)), by a
            # mask, not a branch: y + (±1 − y) is exactly ±1 (|y| ≥ ½), and the loops vectorise it
            # (a vector compare and select) as they did without it
            y = s * p / q
            return y + (math.copysign(_ONE32, x) - y) * _f32(abs(x) >= _SATURATED)

        return impl
    return lambda x: math.tanh(x)


@overload(sigmoid_, inline="always", jit_options={"fastmath": True})
def _ol_sigmoid(x):
    if x == types.float32:
        return lambda x: _HALF32 * tanh_(_HALF32 * x) + _HALF32
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# Simple-RNN activations by code: 0 tanh, 1 relu, 2 sigmoid, 3 identity.
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}


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


# ──────────────────────────────────────────────────────────────────────── validation

_EXP32, _EXP64 = np.uint32(0x7F800000), np.uint64(0x7FF0000000000000)


def _exponent_bits(a):  # pragma: no cover - replaced by the overload inside compiled code
    """The values of a float32 or float64 array as unsigned integers, and its exponent field's mask."""
    if a.dtype == np.float32:
        return a.reshape(-1).view(np.uint32), _EXP32
    return a.reshape(-1).view(np.uint64), _EXP64


@overload(_exponent_bits, inline="always")
def _ol_exponent_bits(a):
    if a.dtype == types.float32:
        return lambda a: (a.reshape(-1).view(np.uint32), _EXP32)
    return lambda a: (a.reshape(-1).view(np.uint64), _EXP64)


@nb.njit(**_JIT)
def _has_non_finite(a):
    u, field = _exponent_bits(a)  # the values' bits, the exponent field's mask
    found = False  # an OR of comparisons, which LLVM vectorises in the values' own width (a max
    for k in range(u.size):  # of u & field was widened to 64 bits: float32 at 28-31 GB/s against 83-98)
        found |= (u[k] & field) == field
    return found


def all_finite(a: np.ndarray) -> bool:
    """Whether a C-contiguous float32 or float64 array holds no NaN and no Inf: whether the largest
    exponent field of its values is below the all-ones field of those two. Integer operations, so
    ``fastmath`` (which lets LLVM assume every float finite and fold ``isfinite`` to true) cannot
    change the answer, and they vectorise: µs against ``np.isfinite(a).all()``, float32, 2-core
    AVX-512 Xeon, (100, 10, 30) 1.5 vs 3.8, (256, 30, 30) 13.5 vs 21, (30, 40) 0.27 vs 1.0, (40,)
    0.23 vs 0.82 (a max over the bits widened to 64, before: 3.9, 28.7, 0.40, 0.28)."""
    return not _has_non_finite(a)


# ──────────────────────────────────────────────────────────────────────── weight gradients

#: k per block of :func:`nt_product`: a main tile's 6 + 4 rows of a block (20 KB) stay in L1 while
#: the tiles of one row band pass along B.
NT_BLOCK = 512


@nb.njit(**_INLINE)
def _dot_tile(rows, columns, A, a, lda, B, b, ldb, C, c, ldc, K, beta):
    """The dot tile of ``rows`` (one of :data:`DOT_ROWS`) × ``columns`` (DOT_NR or 1)."""
    if columns == DOT_NR:
        if rows == DOT_ROWS[0]:
            dot_tile_0(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
        elif rows == DOT_ROWS[1]:
            dot_tile_1(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
        elif rows == DOT_ROWS[2]:
            dot_tile_2(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
        else:
            dot_tile_3(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
    elif rows == DOT_ROWS[0]:
        dot_column_0(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
    elif rows == DOT_ROWS[1]:
        dot_column_1(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
    elif rows == DOT_ROWS[2]:
        dot_column_2(A, a, lda, B, b, ldb, C, c, ldc, K, beta)
    else:
        dot_column_3(A, a, lda, B, b, ldb, C, c, ldc, K, beta)


@nb.njit(**_INLINE)
def _dot_band(rows, A, a, lda, B, b, ldb, C, c, ldc, N, K, beta):
    """One band of ``rows`` rows of C over all its N columns: main tiles, then one column at a time."""
    n = 0
    while n + DOT_NR <= N:
        _dot_tile(rows, DOT_NR, A, a, lda, B, b + n * ldb, ldb, C, c + n, ldc, K, beta)
        n += DOT_NR
    for n in range(n, N):
        _dot_tile(rows, 1, A, a, lda, B, b + n * ldb, ldb, C, c + n, ldc, K, beta)


@nb.njit(**_JIT)
def nt_product(A, B, C, m0, m1, ones, sums):
    """``C[m] = A[m] @ Bᵀ`` for the rows m in ``[m0, m1)``: ``C (M, N) = A (M, K) @ B (N, K)ᵀ``,
    float32 2-D arrays whose rows are contiguous (any row stride): the product of two sets of rows
    contiguous in k, as the weight gradients are (``[dW; dU] = [X; H_prev] dzᵀ`` over the T·B
    columns of all steps). By the dot tiles of bptt.kernels.microkernel in blocks of
    :data:`NT_BLOCK` k (bands of their main tile's rows, the last rows in smaller ones), the last
    ``K mod LANES`` terms by a plain loop. Unless ``sums`` is empty, also ``sums (N,)`` = the sums
    of B's rows (the bias gradients), as one more band of one row, A's row taken from ``ones``
    (at least NT_BLOCK ones): B's block is then in cache, where a pass of its own reads it from
    memory."""
    K, N = A.shape[1], B.shape[0]
    lda, ldb, ldc = A.strides[0] // 4, B.strides[0] // 4, C.strides[0] // 4
    Kv = K - K % LANES
    if Kv == 0:
        C[m0:m1] = 0
        sums[:] = 0
    for kb in range(0, Kv, NT_BLOCK):
        kn = min(NT_BLOCK, Kv - kb)
        beta = np.float32(1.0) if kb else np.float32(0.0)
        if sums.size:  # a band of one row of ones
            _dot_band(1, ones, 0, 0, B, kb, ldb, sums, 0, 0, N, kn, beta)
        m = m0
        while m < m1:
            rows = DOT_ROWS[3]
            for r in DOT_ROWS[::-1]:  # the largest that fits
                if m + r <= m1:
                    rows = r
            _dot_band(rows, A, m * lda + kb, lda, B, kb, ldb, C, m * ldc, ldc, N, kn, beta)
            m += rows
    if Kv < K:
        for m in range(m0, m1):
            for n in range(N):
                total = np.float32(0.0)
                for k in range(Kv, K):
                    total += A[m, k] * B[n, k]
                C[m, n] += total
        for n in range(sums.size):
            total = np.float32(0.0)
            for k in range(Kv, K):
                total += B[n, k]
            sums[n] += total


# ─────────────────────────────────────────────────────────────────── shared helpers


@nb.njit(**_INLINE)
def _columns(b0, b1):
    """The batch columns ``[b0, b1)`` as unsigned loop bounds. A loop over ``range(b0, b1)`` with
    signed bounds indexes with a possibly negative ``b``, so Numba adds its wraparound test to
    every access and the loop no longer vectorises (3-6x slower here); unsigned, it does. (Only
    index with the loop variable: arithmetic mixing it with signed integers gives floats.)"""
    return np.uint64(max(b0, 0)), np.uint64(max(b1, 0))


@nb.njit(**_INLINE)
def _matmul(A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """out[o0 + m, to, b] = Σ_k A[r0 + m, c0 + k] · X[x0 + k, t, b]  (+ out[o0 + m, to, b] when
    ``beta`` is 1) for m < M: a small GEMM vectorised over the batch. Four k at a time (register
    blocking), so each output element is loaded and stored once per four multiply-adds rather than
    once per one: 1.3-1.8x faster for the sizes that use it (H = 10 to 16)."""
    u0, u1 = _columns(b0, b1)
    for m in range(M):
        k = 0
        if K >= 4:
            a0, a1, a2, a3 = A[r0 + m, c0], A[r0 + m, c0 + 1], A[r0 + m, c0 + 2], A[r0 + m, c0 + 3]
            if beta == 0:
                for b in range(u0, u1):
                    out[o0 + m, to, b] = a0 * X[x0, t, b] + a1 * X[x0 + 1, t, b] + a2 * X[x0 + 2, t, b] + a3 * X[x0 + 3, t, b]
            else:
                for b in range(u0, u1):
                    out[o0 + m, to, b] += a0 * X[x0, t, b] + a1 * X[x0 + 1, t, b] + a2 * X[x0 + 2, t, b] + a3 * X[x0 + 3, t, b]
            k = 4
        elif beta == 0:
            for b in range(u0, u1):
                out[o0 + m, to, b] = 0
        while k + 4 <= K:
            a0, a1 = A[r0 + m, c0 + k], A[r0 + m, c0 + k + 1]
            a2, a3 = A[r0 + m, c0 + k + 2], A[r0 + m, c0 + k + 3]
            for b in range(u0, u1):
                out[o0 + m, to, b] += (
                    a0 * X[x0 + k, t, b] + a1 * X[x0 + k + 1, t, b] + a2 * X[x0 + k + 2, t, b] + a3 * X[x0 + k + 3, t, b]
                )
            k += 4
        while k < K:
            a = A[r0 + m, c0 + k]
            for b in range(u0, u1):
                out[o0 + m, to, b] += a * X[x0 + k, t, b]
            k += 1


@nb.njit(**_INLINE)
def _product(blas, own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """:func:`_matmul`'s product: by bptt's own float32 micro-kernel when the mode ``own`` and the
    shapes suit it (bptt.kernels.microkernel: 0 never, 1 forward shapes, 2 all), else by NumPy's
    BLAS GEMM when ``blas`` is its address (bptt.kernels.blas), else by the hand-written loop. ``A`` 2-D, ``X`` and ``out`` 3-D, all
    C-contiguous; ``beta`` 0 overwrites, 1 accumulates."""
    if own_product(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
        return
    if blas != 0:
        B, lda = X.shape[2], A.shape[1]
        gemm(blas, M, b1 - b0, K, A, r0 * lda + c0, lda, X, (x0 * X.shape[1] + t) * B + b0, X.shape[1] * B,
             beta, out, (o0 * out.shape[1] + to) * out.shape[2] + b0, out.shape[1] * out.shape[2])
    else:
        _matmul(A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1)


@nb.njit(**_INLINE)
def _product_packed(blas, own, A, Ap, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """:func:`_product` with A also given packed (``Ap``, bptt.kernels.microkernel.pack_rows; an
    empty array when not packed), which the micro-kernel reads as one stream instead of a tile's
    rows far apart: the backward loops' products ``dz_t Uᵀ``, whose rows of A hold G·H values.
    (The forward loops gained nothing from it: same-process A/B of the LSTM loops on the grid's
    medium to large rows within ±3 %, the packing included.)"""
    if Ap.shape[0] != 0 and own_product_p(own, Ap, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
        return
    _product(blas, own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1)


#: The bytes of X that one column block of :func:`project` covers (a quarter of a 1 MiB L2).
PROJECT_BLOCK_BYTES = 1 << 18


@nb.njit(**_JIT)
def project(A, X, out, b0, b1):
    """``out[:, 0, b0:b1] = A @ X[:, 0, b0:b1]``: a product over many columns (the input projection
    of all steps, ``Wᵀ (G·H, I) @ X (I, T·B)``, with X and out viewed as ``(rows, 1, T·B)``). bptt's
    float32 micro-kernel takes the first ``M // MR · MR`` rows in its main MR × NC tiles (8 × 32 or
    4 × 16, see bptt.kernels.microkernel); the hand-written product takes the rest: the last
    ``(b1 − b0) % NC`` columns, and the last ``M % MR`` rows.

    The tiled columns run in blocks of about :data:`PROJECT_BLOCK_BYTES` of X, each through all
    rows of A before the next, so the block stays in the core's L2 cache; over all the columns at
    once, X was re-read from L3 for every MR rows of A. Two threads, each over half the columns (ms):
    ``(2048, 128) @ (128, 6400)`` 23.6 → 17.0, ``(1536, 128)`` 14.1 → 12.5, ``(512, 128)``
    5.2 → 4.4, ``(1024, 64)`` 5.4 → 5.0; K = 32: unchanged."""
    M, K = A.shape
    rows = M // MR * MR
    tiled = b0 + (b1 - b0) // NC * NC
    block = max(NC, PROJECT_BLOCK_BYTES // (4 * K) // NC * NC)
    for c0 in range(b0, tiled, block):
        if rows == 0 or not own_product(2, A, 0, 0, rows, K, X, 0, 0, out, 0, 0, 0.0, c0, min(c0 + block, tiled)):
            rows, tiled = 0, b0
            break
    if tiled < b1:
        _matmul(A, 0, 0, rows, K, X, 0, 0, out, 0, 0, 0.0, tiled, b1)
    if rows < M:
        _matmul(A, rows, 0, M - rows, K, X, 0, 0, out, rows, 0, 0.0, b0, b1)


@nb.njit(**_JIT)
def to_feature_major(a, out):
    """out[j, t, b] = a[b, t, j]: a batch-major ``(B, T, F)`` array into the feature-major layout.

    * Batches of up to :data:`BLOCKS_MAX_BATCH` and 16 to :data:`BLOCKS_MAX_FEATURES` features: per
      step, in blocks of 16 output rows, b outer: each b reads 16 adjacent features (one cache line)
      and appends one value to each of 16 rows. µs against the paths below (float32, the grid's x
      and dh): (64, 100, 32) 148 → 91, (64, 100, 128) 823 → 309, (128, 50, 64) 261 → 144,
      (128, 50, 256) 1236 → 900, (32, 200, 128) 1026 → 311, (100, 10, 30) 12.0 → 10.5.
    * Otherwise, up to 64 features, row by row of the output (the whole ``(B, F)`` slice of a step
      stays in cache): (256, 30, 64) 305 against 365 in blocks; more, in 16 × 16 tiles:
      (32, 200, 512) 4472 against 4821.

    Unsigned loop bounds as in :func:`_columns`."""
    B, T, F = a.shape
    if B <= BLOCKS_MAX_BATCH and 16 <= F <= BLOCKS_MAX_FEATURES:
        F16 = F - F % 16
        for t in range(T):
            for j0 in range(0, F16, 16):
                for b in range(np.uint64(0), np.uint64(B)):
                    for r in range(16):
                        out[j0 + r, t, b] = a[b, t, j0 + r]
            for j in range(F16, F):
                for b in range(np.uint64(0), np.uint64(B)):
                    out[j, t, b] = a[b, t, j]
        return
    if F <= 64:
        for t in range(T):
            for j in range(np.uint64(0), np.uint64(F)):
                for b in range(np.uint64(0), np.uint64(B)):
                    out[j, t, b] = a[b, t, j]
        return
    for t in range(T):
        for j0 in range(0, F, 16):
            j1 = min(j0 + 16, F)
            for b0 in range(0, B, 16):
                b1 = min(b0 + 16, B)
                for j in range(np.uint64(j0), np.uint64(j1)):
                    for b in range(np.uint64(b0), np.uint64(b1)):
                        out[j, t, b] = a[b, t, j]


#: :func:`to_feature_major`'s blocks of 16 features for batches up to this size ...
BLOCKS_MAX_BATCH = 128
#: ... and up to this many features.
BLOCKS_MAX_FEATURES = 256


@nb.njit(**_JIT)
def transpose_into(src, out, c0):
    """``out[m, c0 + k] = src[k, m]``: ``src (K, M)`` transposed into columns ``[c0, c0 + K)`` of
    ``out``. In blocks of 16 output rows, k outer: each k reads 16 adjacent values of src (one
    cache line) and appends one value to each of 16 output rows. (2048 × 640) from (128, 2048)
    and (512, 2048): 0.53 ms against NumPy's strided copy, 3.78 ms; (1024 × 320): 0.13 vs 0.93."""
    K, M = src.shape
    for m0 in range(0, M - M % 16, 16):
        for k in range(K):
            for r in range(16):
                out[m0 + r, c0 + k] = src[k, m0 + r]
    for m in range(M - M % 16, M):
        for k in range(K):
            out[m, c0 + k] = src[k, m]


@nb.njit(**_INLINE)
def _add_step(acc, dh, t, b0, b1):
    """acc[j, b] += dh[b, t, j]: the loss gradient of step t, read from the caller's batch-major
    ``dh (B, T, H)``, joins the recurrent one. In blocks of 16 rows of acc, b outer: each b reads
    16 adjacent values of dh (a cache line) and adds one to each of 16 rows. Inside the loop, on
    its threads, instead of a feature-major copy of dh before it (one pass over memory on one
    thread): same-process A/B of the training step, 2-core Zen 4, RNN medium 3.85 → 3.45 ms,
    long 8.36 → 7.08, large 73.5 → 68.8; LSTM long 28.8 → 27.4, large 286 → 281; GRU long
    24.1 → 22.7."""
    H = acc.shape[0]
    H16 = H - H % 16
    u0, u1 = _columns(b0, b1)
    for j0 in range(0, H16, 16):
        for b in range(u0, u1):
            for r in range(16):
                acc[j0 + r, b] += dh[b, t, j0 + r]
    for j in range(H16, H):
        for b in range(u0, u1):
            acc[j, b] += dh[b, t, j]


@nb.njit(**_JIT)
def add_into(out, a):
    """out += a (2-D, the same shape)."""
    M, B = out.shape
    for m in range(M):
        for b in range(B):
            out[m, b] += a[m, b]


# ─────────────────────────────────────────────────────────────────────────────── LSTM


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


def _is_float32(a):  # pragma: no cover - replaced by the overload inside compiled code
    return a.dtype == np.float32


@overload(_is_float32, inline="always")
def _ol_is_float32(a):
    result = a.dtype == types.float32
    return lambda a: result


@nb.njit(**_INLINE)
def lstm_cell_forward_inference(gates, tg, bias, c, h, hr, ht, j0, j1, b0, b1):
    """:func:`lstm_cell_forward` when nothing is kept for a backward pass, in float32: stages
    (2)-(4) in one pass over the batch, the gate values in registers only (``gates[:, tg]`` is read,
    not written), c_t over c_{t-1} in the one slot of ``c``. Same-process A/B of the whole loop
    against the staged passes: medium 2.16 → 1.97 ms, long 6.14 → 5.68, wide 18.4 → 17.4, large
    79.9 → 75.0; the small rows unchanged. (With its stores, one pass was slower: 3.5x on the
    tutorial row, where LLVM no longer vectorised it.) Not for float64, the verification path:
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


@nb.njit(**_INLINE)
def _dz_array(dz, gates):
    """The array the backward kernels write dz into: ``dz``, or ``gates`` itself when ``dz`` is
    None (a spent cache, see :func:`lstm_cell_backward`). Numba compiles each case apart (the test
    on a None-typed argument is decided at compile time), so in place the kernels index one array."""
    if dz is None:
        return gates
    return dz


@nb.njit(**_INLINE)
def _dc_array(dc, c):
    """``(array, s)``: the LSTM backward writes dc_t into slot ``t + s`` of ``array``: ``(dc, 0)``,
    or ``(c, 1)`` when ``dc`` is None, over c_t, which the cell reads first (as :func:`_dz_array`)."""
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
    the kernels index one array for both (:func:`_dz_array`, :func:`_dc_array`): two arguments
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


@nb.njit(**_INLINE)
def _step_slot(a, h, t):
    """The slot of step t in a per-step array ``a``: t when it has a slot for every step of the
    states ``h (H, T + 1, B)``, else 0 (one slot, reused by every step)."""
    return t if a.shape[1] == h.shape[1] - 1 else 0


@nb.njit(**_JIT)
def lstm_forward_loop(blas, own, A, k0, xh, gates, bias, c, h, keep, b0, b1):
    """The whole forward loop. ``xh (I + H, T + 1, B)`` holds the stacked inputs and states of
    ``bptt.functional._fm_stacked`` and ``h`` is its state rows (slot 0 the initial state); ``c``
    is ``(H, T + 1, B)`` like h when ``keep``, else (inference) one ``(H, 1, B)`` slot updated in
    place. Step t's product (1) is ``A @ xh[k0:, t]``:

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


@nb.njit(**_INLINE)
def _dx_step(blas, own, Wp, dz, t, dx, b0, b1):
    """``dx[:, t] = Wp @ dz[:, t]`` over the columns ``[b0, b1)`` when ``Wp`` is given (W's rows
    padded, ``bptt.functional._dx_in_loop``), else nothing: the backward loops' dx while dz_t is
    in cache."""
    if Wp.shape[0] != 0:
        _product(blas, own, Wp, 0, 0, Wp.shape[0], dz.shape[0], dz, 0, t, dx, 0, t, 0.0, b0, b1)


@nb.njit(**_JIT)
def lstm_backward_loop(blas, own, dh, use_dh, U, Up, gates, c, dh_rec, dc_next, dz, dc, row, Wp, dx, b0, b1):
    """The whole backward loop; ``dh_rec``/``dc_next`` hold the final-state gradients on entry and
    dh0/dc0 on exit. With ``Wp`` (W's rows padded to a multiple of the tile's, ``(Ip, 4H)``; else
    an empty array) each step also writes ``dx_t = Wp dz_t`` into slot t of ``dx (Ip, T, B)``,
    while dz_t is in cache. ``dz`` and ``dc`` None: dz is written over ``gates`` and dc over c
    (see :func:`lstm_cell_backward`). ``row``: a scratch row of B values (each thread uses its
    own columns of it)."""
    out = _dz_array(dz, gates)
    H, B = dh_rec.shape
    dh_rec3 = dh_rec.reshape((H, 1, B))
    for t in range(gates.shape[1] - 1, -1, -1):
        if use_dh:
            _add_step(dh_rec, dh, t, b0, b1)
        lstm_cell_backward(dh_rec, gates, t, c, dc_next, dz, dc, row, b0, b1)
        _product_packed(blas, own, U, Up, 0, 0, H, 4 * H, out, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)  # (1) dh_{t-1} = dz_t Uᵀ
        _dx_step(blas, own, Wp, out, t, dx, b0, b1)


@nb.njit(**_JIT)
def lstm_step_forward(gates, tg, bias, c, cp, cc, h, t):
    lstm_cell_forward(gates, tg, bias, c, cp, cc, h, 0, t + 1, 0, h.shape[0], 0, h.shape[2])


@nb.njit(**_JIT)
def lstm_step_backward(dh, t, use_dh, dh_rec, gates, c, dc_next, dz, dc, row):
    if use_dh:
        _add_step(dh_rec, dh, t, 0, dh_rec.shape[1])
    lstm_cell_backward(dh_rec, gates, t, c, dc_next, dz, dc, row, 0, dh_rec.shape[1])


# ──────────────────────────────────────────────────────────────────────────────── GRU


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
    :func:`lstm_cell_backward` does (no gate value is read after its gradient is written).
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


@nb.njit(**_JIT)
def gru_forward_loop(blas, own, A, k0, xh, gates, bx, bu, reset_after, aux, keep, h, hu, b0, b1):
    """The whole GRU forward loop over ``xh (I + H, T + 1, B)``, the stacked inputs and states
    (``h`` its state rows, h0 in slot 0), as :func:`lstm_forward_loop`:

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
def gru_forward_loop_units(blas, own, A, xh, gates, bx, bu, aux, h, hu, flags, p, j0, j1):
    """:func:`gru_forward_loop` reset-after with the products over ``[x_t; h_{t-1}]`` (``k0`` 0) as
    thread ``p`` of two that split the hidden units ``[j0, j1)``, as ``lstm_inference_loop_units``
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


@nb.njit(**_JIT)
def gru_backward_loop(blas, own, dh, use_dh, U, Up, gates, aux, h, reset_after, dh_rec, dh_prev, drh, dz, dhu, row, Wp,
                      dx, b0, b1):
    """The whole GRU backward loop; ``dh_rec`` holds dL/dh_T on entry and dh0 on exit.
    ``dhu (H, T, B)``: the n block of dL/d(h U + b_u), written only when ``reset_after`` (its r
    and z blocks are dz's, not written twice); otherwise pass any 3-D array.
    ``Wp``, ``dx``: as for :func:`lstm_backward_loop`, ``dx_t = W dz_t`` at each step. ``dz``
    None: dz is written over ``gates`` (see :func:`gru_cell_backward`); ``row``: a scratch row of
    B values."""
    out = _dz_array(dz, gates)
    u0, u1 = _columns(b0, b1)
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
        _dx_step(blas, own, Wp, out, t, dx, b0, b1)
        for j in range(H):
            for b in range(u0, u1):
                dh_rec[j, b] += dh_prev[j, b]


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


# ──────────────────────────────────────────────────────────────────────── simple RNN


@nb.njit(**_INLINE)
def rnn_cell_forward(a, ta, bias, code, h, t, j0, j1, b0, b1):
    """(2) h_t = act(a_t) for the hidden units ``[j0, j1)``, written to slot t + 1 of h: ``a[:, ta]``
    holds a_t − b = x_t W + h_{t-1} U."""
    u0, u1 = _columns(b0, b1)
    for j in range(j0, j1):
        bj = bias[j]
        if code == 0:
            for b in range(u0, u1):
                h[j, t + 1, b] = tanh_(a[j, ta, b] + bj)
        elif code == 1:
            for b in range(u0, u1):
                y = a[j, ta, b] + bj
                h[j, t + 1, b] = max(y, y * 0)
        elif code == 2:
            for b in range(u0, u1):
                h[j, t + 1, b] = sigmoid_(a[j, ta, b] + bj)
        else:
            for b in range(u0, u1):
                h[j, t + 1, b] = a[j, ta, b] + bj


@nb.njit(**_INLINE)
def rnn_cell_backward(dh_rec, h, t, code, dz, b0, b1):
    """(2) backward: dz_t = dh_t ⊙ act′, written through the output h_t (slot t + 1)."""
    u0, u1 = _columns(b0, b1)
    H, B = dh_rec.shape
    for j in range(H):
        if code == 0:
            for b in range(u0, u1):
                y = h[j, t + 1, b]
                dz[j, t, b] = dh_rec[j, b] * (1 - y * y)
        elif code == 1:
            for b in range(u0, u1):
                dz[j, t, b] = dh_rec[j, b] if h[j, t + 1, b] > 0 else dh_rec[j, b] * 0
        elif code == 2:
            for b in range(u0, u1):
                y = h[j, t + 1, b]
                dz[j, t, b] = dh_rec[j, b] * y * (1 - y)
        else:
            for b in range(u0, u1):
                dz[j, t, b] = dh_rec[j, b]


@nb.njit(**_JIT)
def rnn_forward_loop(blas, own, A, k0, xh, a, bias, code, h, b0, b1):
    """The whole forward loop, as :func:`lstm_forward_loop`: step t's product (1),
    ``A @ xh[k0:, t]``, goes into the step's slot of ``a``: one ``(H, 1, B)`` slot when it takes
    the inputs too (``k0`` 0), else ``a (H, T, B)`` holds x W of all steps (``k0`` I, A = Uᵀ)."""
    H = h.shape[0]
    for t in range(h.shape[1] - 1):
        ta = _step_slot(a, h, t)
        _product(blas, own, A, 0, 0, H, A.shape[1], xh, k0, t, a, 0, ta, 1.0 if k0 else 0.0, b0, b1)
        rnn_cell_forward(a, ta, bias, code, h, t, 0, H, b0, b1)


@nb.njit(**_JIT)
def rnn_forward_loop_units(blas, own, A, xh, a, bias, code, h, flags, p, j0, j1):
    """:func:`rnn_forward_loop` with the product over ``[x_t; h_{t-1}]`` (``k0`` 0) as thread ``p``
    of two that split the hidden units, as ``lstm_inference_loop_units`` does."""
    B = h.shape[2]
    for t in range(h.shape[1] - 1):
        wait_for(flags, 1 - p, t)
        _product(blas, own, A, j0, 0, j1 - j0, A.shape[1], xh, 0, t, a, j0, 0, 0.0, 0, B)
        rnn_cell_forward(a, 0, bias, code, h, t, j0, j1, 0, B)
        publish(flags, p, t + 1)


@nb.njit(**_JIT)
def rnn_backward_loop(blas, own, dh, use_dh, U, Up, h, code, dh_rec, dz, b0, b1):
    H, B = dh_rec.shape
    dh_rec3 = dh_rec.reshape((H, 1, B))
    for t in range(h.shape[1] - 2, -1, -1):
        if use_dh:
            _add_step(dh_rec, dh, t, b0, b1)
        rnn_cell_backward(dh_rec, h, t, code, dz, b0, b1)
        _product_packed(blas, own, U, Up, 0, 0, H, H, dz, 0, t, dh_rec3, 0, 0, 0.0, b0, b1)


@nb.njit(**_JIT)
def rnn_step_forward(a, ta, bias, code, h, t):
    rnn_cell_forward(a, ta, bias, code, h, t, 0, h.shape[0], 0, h.shape[2])


@nb.njit(**_JIT)
def rnn_step_backward(dh, t, use_dh, dh_rec, h, code, dz):
    if use_dh:
        _add_step(dh_rec, dh, t, 0, dh_rec.shape[1])
    rnn_cell_backward(dh_rec, h, t, code, dz, 0, dh_rec.shape[1])
