"""bptt's own float32 GEMM for the recurrent product: an 8 × 32 register-tile micro-kernel.

The per-step product of a time loop, ``out (M, B) = A (M, K) @ h_t (K, B)`` in the feature-major
layout, has the batch contiguous in both ``h_t`` and ``out``. :func:`_tile` computes an 8-row ×
32-column block of it with every partial sum in registers: per k it loads 32 values of the row
``h_t[k]`` (two 16-float vectors), broadcasts eight values of A's column k, and does 16 vector
fused multiply-adds into 16 accumulators, written out once at the end (``beta`` 0 stores them,
1 adds them to what is there). It is emitted as LLVM IR with explicit ``<16 x float>`` vectors,
which LLVM compiles for the machine's CPU (AVX-512: one register each; AVX2: two).

Why: NumPy's OpenBLAS may run kernels narrower than the CPU (``OPENBLAS_CORETYPE=Haswell`` on an
AVX-512 machine), and a per-step GEMM run single-threaded to avoid waking OpenBLAS's threads
uses one core at that rate. Measured on this project's 2-core AMD Zen 5 machine with Haswell
kernels, single-threaded: 190-227 GFLOP/s here against OpenBLAS's 87-98 (one thread) and
99-205 (two), for the per-step shapes of the benchmark grid.

A 16 × 16 variant (:data:`_tile16`: one vector of ``h_t`` and 16 broadcasts per k, the same 16
accumulators) serves parts of 16 columns, the halves of a batch of 32 run on two threads:
178 GFLOP/s on one core for the large row's forward product.

:func:`own_product` tiles a whole product with them when the shapes allow (float32; M a multiple
of 8 and B of 32, or both multiples of 16) and returns False otherwise, so the caller falls back
to BLAS or the hand loop.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

MR, NC, LANES = 8, 32, 16  # tile rows, tile columns, float32 lanes per vector


def _tile_kernel(MR: int, NC: int):
    """An ``MR × NC`` register-tile kernel: ``C[c0 + r·ldc + j] = Σ_k A[a0 + r·lda + k] ·
    X[x0 + k·ldx + j] (+ C[…] if beta)`` for r < MR, j < NC; offsets and strides in elements of
    the float32 arrays A, X, C. MR · NC / 16 vector accumulators (16 for both shapes used)."""

    def tile(typingctx, A, a0, lda, X, x0, ldx, C, c0, ldc, K, beta):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, X, C)):
            return None
        sig = types.void(A, types.intp, types.intp, X, types.intp, types.intp, C, types.intp, types.intp,
                         types.intp, types.float32)

        def codegen(context, builder, signature, args):
            A_v, a0_v, lda_v, X_v, x0_v, ldx_v, C_v, c0_v, ldc_v, K_v, beta_v = args
            f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
            vt = ir.VectorType(f32, LANES)
            nv = NC // LANES
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]), "llvm.fma.v16f32")

            def data(arrty, value, off):
                return builder.gep(cgutils.create_struct_proxy(arrty)(context, builder, value=value).data, [off])

            def splat(x):
                undef = ir.Constant(vt, ir.Undefined)
                one = builder.insert_element(undef, x, ir.Constant(i32, 0))
                return builder.shuffle_vector(one, undef, ir.Constant(ir.VectorType(i32, LANES), [0] * LANES))

            def vec(base, off):
                return builder.bitcast(builder.gep(base, [ir.Constant(i64, off)]), vt.as_pointer())

            pa, px, pc = data(A, A_v, a0_v), data(X, X_v, x0_v), data(C, C_v, c0_v)
            # accumulators as allocas of vector type: LLVM promotes them to registers
            acc = [[cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * LANES)) for _ in range(nv)]
                   for _ in range(MR)]
            rows = [builder.gep(pa, [builder.mul(lda_v, ir.Constant(i64, r))]) for r in range(MR)]
            with cgutils.for_range(builder, K_v) as loop:
                k = loop.index
                xrow = builder.gep(px, [builder.mul(k, ldx_v)])
                xs = [builder.load(vec(xrow, v * LANES), align=4) for v in range(nv)]
                for r in range(MR):
                    a = splat(builder.load(builder.gep(rows[r], [k])))
                    for v in range(nv):
                        builder.store(builder.call(fma, [a, xs[v], builder.load(acc[r][v])]), acc[r][v])
            overwrite = builder.fcmp_ordered("==", beta_v, ir.Constant(f32, 0.0))
            b = splat(beta_v)
            for r in range(MR):
                crow = builder.gep(pc, [builder.mul(ldc_v, ir.Constant(i64, r))])
                for v in range(nv):
                    p, total = vec(crow, v * LANES), builder.load(acc[r][v])
                    with builder.if_else(overwrite) as (store, add):
                        with store:
                            builder.store(total, p, align=4)
                        with add:
                            builder.store(builder.call(fma, [b, builder.load(p, align=4), total]), p, align=4)
            return context.get_dummy_value()

        return sig, codegen

    tile.__name__ = tile.__qualname__ = f"_tile_{MR}x{NC}"
    return intrinsic(tile)


_tile = _tile_kernel(8, 32)  # the main kernel: two vectors of X per k, 8 broadcasts of A
_tile16 = _tile_kernel(16, 16)  # for 16-column parts (a batch of 32 cut in two): one vector, 16 broadcasts


#: ``own`` modes: use the micro-kernel for every product that suits it, or only for products with
#: at least as many rows as terms (M ≥ K: the forward ones). With rows of X strided by T·B (the
#: step slices), it reaches 184-214 GFLOP/s single-threaded on the forward products of the grid
#: but 130-155 on the backward ones (M = H, K = G·H: X re-read from far-apart rows for every 8
#: rows of A), where OpenBLAS's Haswell kernels on two threads reach 151-176.
ALL, FORWARD_SHAPES = 2, 1


def own_product(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):  # pragma: no cover - compiled only
    """out[o0 + m, to, b0:b1] = A[r0 + m, c0:c0 + K] @ X[x0:x0 + K, t, b0:b1] (+ out when beta is 1), m < M,
    by :func:`_tile` (M a multiple of 8, b1 − b0 of 32) or :func:`_tile16` (both multiples of 16);
    True when done, False when the mode, dtype or shapes do not suit it."""
    raise NotImplementedError


@overload(own_product, inline="always", jit_options={"fastmath": True})
def _ol_own_product(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, X, out)):
        return lambda own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1: False

    def impl(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
        B = X.shape[2]
        if own == 0 or (own == FORWARD_SHAPES and M < K):
            return False
        lda, ldx, ldc = A.shape[1], X.shape[1] * B, out.shape[1] * B
        bf = np.float32(beta)
        x, o = (x0 * X.shape[1] + t) * B, (o0 * out.shape[1] + to) * B
        if M % MR == 0 and (b1 - b0) % NC == 0:
            for m in range(0, M, MR):
                for n in range(b0, b1, NC):
                    _tile(A, (r0 + m) * lda + c0, lda, X, x + n, ldx, out, o + m * ldc + n, ldc, K, bf)
            return True
        if M % 16 == 0 and (b1 - b0) % 16 == 0:  # e.g. the 16-column parts of a batch of 32 cut in two
            for m in range(0, M, 16):
                for n in range(b0, b1, 16):
                    _tile16(A, (r0 + m) * lda + c0, lda, X, x + n, ldx, out, o + m * ldc + n, ldc, K, bf)
            return True
        return False

    return impl


@nb.njit(cache=True, fastmath=True, nogil=True)
def product2d(A, X, out, beta):
    """``out = A @ X (+ out)`` for 2-D float32 C-contiguous arrays by :func:`own_product` (for tests
    and measurement); False when the shapes do not suit it."""
    M, K = A.shape
    return own_product(ALL, A, 0, 0, M, K, X.reshape((K, 1, X.shape[1])), 0, 0,
                       out.reshape((M, 1, out.shape[1])), 0, 0, beta, 0, X.shape[1])
