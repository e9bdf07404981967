"""What the cells' fused kernels share: the float32 activations, the finite check, the dot tiles
of the weight gradients, the recurrent product and the layout copies.

Transcendentals: in float32, tanh is Eigen's rational approximation (accurate to a few float32
ulps, its argument clamped at ±7.9053, where it gives ±(1 − 2.4e-7)), exactly ±1 from |x| = 9.0109
on, where tanh rounds to ±1, and σ(x) = ½ tanh(x/2) + ½, plain arithmetic that LLVM vectorises
(Numba has no vector math library). Both are accurate in absolute terms (≤ 4 ulps of 1); near
saturation, derivatives formed from them (1 − y², y(1 − y)) carry a relative error of up to a few
1e-4, like any float32 tanh (PyTorch's: ~4e-5), and at saturation they are exactly 0, as the
reference's: inputs of ~1e4 would otherwise turn derivatives of 2.4e-7 into weight gradients of
~0.1 where the exact ones are 0 (tests/core/test_saturation.py). In float64 they are libm's ``tanh``
and ``exp``: the float64 path is the verification path.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from ..blas import gemm
from ..microkernel import (DOT_NR, DOT_ROWS, LANES, MR, NC, dot_column_0, dot_column_1, dot_column_2, dot_column_3,
                           dot_tile_0, dot_tile_1, dot_tile_2, dot_tile_3, own_product, own_product_at, own_product_p_at)

#: The fingerprint of the modules compiled into this module's kernels (see bptt.kernels.fingerprint;
#: ``python -m bptt.kernels.fingerprint`` updates it; tests/kernels/test_kernel_cache.py checks it).
COMPILED_DEPENDENCIES = "9a0e5bb6b3c3fdf9"

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
    change the answer, and they vectorise: faster than ``np.isfinite(a).all()`` at every size
    measured (docs/performance.md, "The finite check")."""
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
def _matmul_at(A, r0, c0, M, K, X, x0, xb, out, o0, ob, beta, n):
    """out[o0 + m, ob + i] = Σ_k A[r0 + m, c0 + k] · X[x0 + k, xb + i]  (+ out[o0 + m, ob + i] when
    ``beta`` is 1) for m < M, i < n: a small GEMM vectorised over the columns, of 2-D arrays whose
    columns start at ``xb`` and ``ob``. Four k at a time (register blocking), so each output
    element is loaded and stored once per four multiply-adds rather than once per one: 1.3-1.8x
    faster for the sizes that use it (H = 10 to 16)."""
    u0, u1 = _columns(0, n)
    xb, ob = np.uint64(xb), np.uint64(ob)
    for m in range(M):
        k = 0
        if K >= 4:
            a0, a1, a2, a3 = A[r0 + m, c0], A[r0 + m, c0 + 1], A[r0 + m, c0 + 2], A[r0 + m, c0 + 3]
            if beta == 0:
                for i in range(u0, u1):
                    out[o0 + m, ob + i] = (a0 * X[x0, xb + i] + a1 * X[x0 + 1, xb + i] + a2 * X[x0 + 2, xb + i]
                                           + a3 * X[x0 + 3, xb + i])
            else:
                for i in range(u0, u1):
                    out[o0 + m, ob + i] += (a0 * X[x0, xb + i] + a1 * X[x0 + 1, xb + i] + a2 * X[x0 + 2, xb + i]
                                            + a3 * X[x0 + 3, xb + i])
            k = 4
        elif beta == 0:
            for i in range(u0, u1):
                out[o0 + m, ob + i] = 0
        while k + 4 <= K:
            a0, a1 = A[r0 + m, c0 + k], A[r0 + m, c0 + k + 1]
            a2, a3 = A[r0 + m, c0 + k + 2], A[r0 + m, c0 + k + 3]
            for i in range(u0, u1):
                out[o0 + m, ob + i] += (a0 * X[x0 + k, xb + i] + a1 * X[x0 + k + 1, xb + i]
                                        + a2 * X[x0 + k + 2, xb + i] + a3 * X[x0 + k + 3, xb + i])
            k += 4
        while k < K:
            a = A[r0 + m, c0 + k]
            for i in range(u0, u1):
                out[o0 + m, ob + i] += a * X[x0 + k, xb + i]
            k += 1


@nb.njit(**_INLINE)
def _rows(a):
    """A C-contiguous 3-D ``(F, S, B)`` array as the 2-D ``(F, S·B)`` one of the same memory: slot t's
    column b is column ``t·B + b``."""
    return a.reshape((a.shape[0], a.shape[1] * a.shape[2]))


@nb.njit(**_INLINE)
def _matmul(A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """out[o0 + m, to, b] = Σ_k A[r0 + m, c0 + k] · X[x0 + k, t, b]  (+ out[o0 + m, to, b] when
    ``beta`` is 1) for m < M, b in ``[b0, b1)``: :func:`_matmul_at` over the slots' columns."""
    _matmul_at(A, r0, c0, M, K, _rows(X), x0, t * X.shape[2] + b0, _rows(out), o0, to * out.shape[2] + b0, beta,
               b1 - b0)


@nb.njit(**_INLINE)
def _product_at(blas, own, A, r0, c0, M, K, X, x0, xb, out, o0, ob, beta, n):
    """``out[o0 + m, ob + i] = A[r0 + m, c0:c0 + K] @ X[x0:x0 + K, xb + i]`` (+ out when ``beta`` is
    1) for m < M, i < n, ``X`` and ``out`` 2-D C-contiguous: by bptt's own float32 micro-kernel
    when the mode ``own`` and the shapes suit it (bptt.kernels.microkernel: 0 never, 1 forward
    shapes, 2 all), else by NumPy's BLAS GEMM when ``blas`` is its address (bptt.kernels.blas),
    else by the hand-written loop."""
    ldx, ldo = X.shape[1], out.shape[1]
    if own_product_at(own, A, r0, c0, M, K, X, x0 * ldx + xb, ldx, out, o0 * ldo + ob, ldo, beta, n):
        return
    if blas != 0:
        lda = A.shape[1]
        gemm(blas, M, n, K, A, r0 * lda + c0, lda, X, x0 * ldx + xb, ldx, beta, out, o0 * ldo + ob, ldo)
    else:
        _matmul_at(A, r0, c0, M, K, X, x0, xb, out, o0, ob, beta, n)


@nb.njit(**_INLINE)
def _product_packed_at(blas, own, A, Ap, r0, c0, M, K, X, x0, xb, out, o0, ob, beta, n):
    """:func:`_product_at` with A also given packed (as :func:`_product_packed`)."""
    ldx, ldo = X.shape[1], out.shape[1]
    if Ap.shape[0] != 0 and own_product_p_at(own, Ap, r0, c0, M, K, X, x0 * ldx + xb, ldx, out, o0 * ldo + ob, ldo,
                                             beta, n):
        return
    _product_at(blas, own, A, r0, c0, M, K, X, x0, xb, out, o0, ob, beta, n)


@nb.njit(**_INLINE)
def _product(blas, own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """:func:`_product_at` over slots: ``out[o0 + m, to, b0:b1] = A[r0 + m, c0:c0 + K] @
    X[x0:x0 + K, t, b0:b1]``, ``A`` 2-D, ``X`` and ``out`` 3-D, all C-contiguous; ``beta`` 0
    overwrites, 1 accumulates."""
    _product_at(blas, own, A, r0, c0, M, K, _rows(X), x0, t * X.shape[2] + b0, _rows(out), o0, to * out.shape[2] + b0,
                beta, b1 - b0)


@nb.njit(**_INLINE)
def _product_packed(blas, own, A, Ap, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    """:func:`_product` with A also given packed (``Ap``, bptt.kernels.microkernel.pack_rows; an
    empty array when not packed), which the micro-kernel reads as one stream instead of a tile's
    rows far apart: the backward loops' products ``dz_t Uᵀ``, whose rows of A hold G·H values.
    (The forward loops gained nothing from it: same-process A/B of the LSTM loops on the grid's
    medium to large rows within ±3 %, the packing included.)"""
    _product_packed_at(blas, own, A, Ap, r0, c0, M, K, _rows(X), x0, t * X.shape[2] + b0, _rows(out), o0,
                       to * out.shape[2] + b0, beta, b1 - b0)


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
      and appends one value to each of 16 rows (faster than the paths below on every grid shape:
      docs/performance.md, "Feature-major copies").
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


@nb.njit(**_JIT)
def from_feature_major(a, out):
    """out[b, t, j] = a[j, t, b]: a feature-major ``(F, T, B)`` array (the array behind a fast
    call's ``h`` or ``dx``, whose batch-major view a layer hands on) into a new batch-major
    ``(B, T, F)`` one, as the backward loops and NumPy's products read it. Per step, in blocks of
    16 features, b outer: each b writes 16 adjacent values (one cache line) and reads one from
    each of 16 rows, each row in order; NumPy's copy of the view read one value per row of 4·T·B
    bytes (7 ns a value at (256, 30, 128), against 0.3-0.7: docs/performance.md, "Feature-major
    views"). Unsigned loop bounds as in :func:`_columns`."""
    F, T, B = a.shape
    F16 = F - F % 16
    for t in range(T):
        for j0 in range(0, F16, 16):
            for b in range(np.uint64(0), np.uint64(B)):
                for r in range(16):
                    out[b, t, j0 + r] = a[j0 + r, t, b]
        for b in range(np.uint64(0), np.uint64(B)):
            for j in range(F16, F):
                out[b, t, j] = a[j, t, b]


#: :func:`to_feature_major`'s blocks of 16 features for batches up to this size ...
BLOCKS_MAX_BATCH = 128
#: ... and up to this many features.
BLOCKS_MAX_FEATURES = 256


@nb.njit(**_JIT)
def transpose_into(src, out, c0):
    """``out[m, c0 + k] = src[k, m]``: ``src (K, M)`` transposed into columns ``[c0, c0 + K)`` of
    ``out``. In blocks of 16 output rows, k outer: each k reads 16 adjacent values of src (one
    cache line) and appends one value to each of 16 output rows: several times faster than
    NumPy's strided copy (docs/performance.md, "Transposes")."""
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
    thread; docs/performance.md, "dh read in the loop")."""
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


# ─────────────────────────────────────────────────────── shared by the cells' drivers


@nb.njit(**_INLINE)
def _step_slot(a, h, t):
    """The slot of step t in a per-step array ``a``: t when it has a slot for every step of the
    states ``h (H, T + 1, B)``, else 0 (one slot, reused by every step)."""
    return t if a.shape[1] == h.shape[1] - 1 else 0


@nb.njit(**_INLINE)
def _dz_array(dz, gates):
    """The array the backward kernels write dz into: ``dz``, or ``gates`` itself when ``dz`` is
    None (a spent cache, see :func:`.lstm.lstm_cell_backward`). Numba compiles each case apart (the test
    on a None-typed argument is decided at compile time), so in place the kernels index one array."""
    if dz is None:
        return gates
    return dz


@nb.njit(**_INLINE)
def _add_columns(acc, ab, a, cb, n0, n1):
    """``acc[j, ab + i] += a[j, cb + i]`` for every row j and i in ``[n0, n1)`` (2-D arrays)."""
    u0, u1 = _columns(n0, n1)
    ab, cb = np.uint64(ab), np.uint64(cb)
    for j in range(acc.shape[0]):
        for i in range(u0, u1):
            acc[j, ab + i] += a[j, cb + i]


@nb.njit(**_INLINE)
def _dx_step(blas, own, Wp, dz, xb, dx, n):
    """``dx[:, xb:xb + n] = Wp @ dz[:, xb:xb + n]`` (2-D arrays) when ``Wp`` is given (W's rows
    padded, ``bptt.functional._dx_in_loop``), else nothing: the backward loops' dx of a step while
    its dz is in cache."""
    if Wp.shape[0] != 0:
        _product_at(blas, own, Wp, 0, 0, Wp.shape[0], dz.shape[0], dz, 0, xb, dx, 0, xb, 0.0, n)
