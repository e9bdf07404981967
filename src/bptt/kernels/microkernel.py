"""bptt's own float32 GEMM for the recurrent product: register-tile micro-kernels.

The per-step product of a time loop, ``out (M, B) = A (M, K) @ h_t (K, B)`` in the feature-major
layout, has the batch contiguous in both ``h_t`` and ``out``. A tile kernel computes an MR-row ×
NC-column block of it with every partial sum in registers: per k it loads NC values of the row
``h_t[k]`` (NC / LANES vectors), broadcasts MR values of A's column k, and does MR · NC / LANES
vector fused multiply-adds into as many accumulators, written out once at the end (``beta`` 0
stores them, 1 adds them to what is there). It is emitted as LLVM IR with explicit vectors.

The tile follows the CPU's vector registers (:data:`TILES`, chosen once from LLVM's view of the
host CPU, the same view Numba compiles and keys its disk cache by):

* AVX-512 (32 registers of 16 floats): 8 × 32 (16 accumulators), and 16 × 16 for parts of 16
  columns (the halves of a batch of 32 run on two threads).
* otherwise (AVX2 and narrower: 16 registers of 8 floats): 4 × 16 (8 accumulators, 2 vectors of
  ``h_t`` and one broadcast per k, 11 registers). The 8 × 32 tile would need 32 accumulators and
  spills. The tiles tried and their rates: docs/performance.md, "Micro-kernel tiles".

:func:`own_product` tiles a whole product with them when the shapes allow (float32; M a multiple
of a tile's rows, the column count of its columns) and returns False otherwise, so the caller falls
back to BLAS or the hand loop.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def _host_has_avx512() -> bool:
    """Whether the CPU LLVM compiles for has AVX-512F registers (False when it cannot tell)."""
    try:
        from llvmlite import binding as llvm

        return bool(llvm.get_host_cpu_features().get("avx512f", False))
    except Exception:  # pragma: no cover - an llvmlite without the query: the narrow tile is safe
        return False


#: True on a CPU with AVX-512: the wide tiles below; else the AVX2-sized one.
WIDE = _host_has_avx512()
#: float32 lanes per vector the tiles are written with.
LANES = 16 if WIDE else 8
#: (rows, columns) of the tile kernels, in the order :func:`own_product` tries them.
TILES = ((8, 32), (16, 16)) if WIDE else ((4, 16),)
MR, NC = TILES[0]  # the main tile


def can_tile(M: int, N: int) -> bool:
    """Whether a product with M rows over N columns is covered by one of the tiles."""
    return any(M % mr == 0 and N % nc == 0 for mr, nc in TILES)


def _tile_kernel(MR: int, NC: int):
    """An ``MR × NC`` register-tile kernel: ``C[c0 + r·ldc + j] = Σ_k A[a0 + r·lda + k·ska] ·
    X[x0 + k·ldx + j] (+ C[…] if beta)`` for r < MR, j < NC; offsets and strides in elements of
    the float32 arrays A, X, C (``ska`` 1: A row-major; ``lda`` 1 and ``ska`` :data:`PANEL`: A
    packed by :func:`pack_rows`, the MR values of one k side by side). MR · NC / LANES vector
    accumulators."""

    def tile(typingctx, A, a0, lda, ska, X, x0, ldx, C, c0, ldc, K, beta):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, X, C)):
            return None
        sig = types.void(A, types.intp, types.intp, types.intp, X, types.intp, types.intp, C, types.intp,
                         types.intp, types.intp, types.float32)

        def codegen(context, builder, signature, args):
            A_v, a0_v, lda_v, ska_v, X_v, x0_v, ldx_v, C_v, c0_v, ldc_v, K_v, beta_v = args
            f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
            vt = ir.VectorType(f32, LANES)
            nv = NC // LANES
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.v{LANES}f32")

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
                ka = builder.mul(k, ska_v)
                xrow = builder.gep(px, [builder.mul(k, ldx_v)])
                xs = [builder.load(vec(xrow, v * LANES), align=4) for v in range(nv)]
                for r in range(MR):
                    a = splat(builder.load(builder.gep(rows[r], [ka])))
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


_tile = _tile_kernel(*TILES[0])  # the main kernel
_tile2 = _tile_kernel(*TILES[-1])  # AVX-512: 16 x 16 for 16-column parts (a batch of 32 cut in two)
MR2, NC2 = TILES[-1]


#: ``own`` modes: use the micro-kernel for every product that suits it, or only for products with
#: at least as many rows as terms (M ≥ K: the forward ones): with rows of X strided by T·B (the
#: step slices) it is slower on the backward products (M = H, K = G·H: X re-read from far-apart
#: rows for every 8 rows of A) than on the forward ones (docs/performance.md). The backward loops
#: also pass A packed (:func:`own_product_p`), which a tile reads as one stream.
ALL, FORWARD_SHAPES = 2, 1


def own_product(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):  # pragma: no cover - compiled only
    """out[o0 + m, to, b0:b1] = A[r0 + m, c0:c0 + K] @ X[x0:x0 + K, t, b0:b1] (+ out when beta is 1), m < M,
    by the tiles of :data:`TILES` (M a multiple of a tile's rows, b1 − b0 of its columns); True
    when done, False when the mode, dtype or shapes do not suit it."""
    raise NotImplementedError


#: Rows per panel of a packed A (:func:`pack_rows`): a multiple of every tile's rows.
PANEL = 16


@nb.njit(cache=True, nogil=True)
def pack_rows(A, out):
    """``out[p, k, r] = A[p·PANEL + r, k]``: A (M, K), M a multiple of :data:`PANEL`, in panels of
    PANEL rows with the values of one k side by side, so a tile reads A as one stream."""
    P = out.shape[2]
    for p in range(out.shape[0]):  # rows of A read in order (ten times faster than k outside r)
        for r in range(P):
            for k in range(out.shape[1]):
                out[p, k, r] = A[p * P + r, k]


def own_product_p(own, Ap, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):  # pragma: no cover - compiled only
    """:func:`own_product` of A given packed by :func:`pack_rows` (``Ap (M / PANEL, K, PANEL)``).
    Row-major, a tile reads MR rows of A far apart (the backward product ``dz_t Uᵀ``: rows of
    G·H values); packed, it reads them as one stream, faster at every shape measured
    (docs/performance.md, "Micro-kernel tiles")."""
    raise NotImplementedError


def _tiles(A, a0, lda, ska, M, X, x, ldx, out, o, ldc, K, bf, b0, b1):  # pragma: no cover - compiled only
    raise NotImplementedError


@overload(_tiles, inline="always", jit_options={"fastmath": True})
def _ol_tiles(A, a0, lda, ska, M, X, x, ldx, out, o, ldc, K, bf, b0, b1):
    """The product of rows ``a0 + m·lda`` (m < M; k stride ``ska``) of A over the columns
    ``[b0, b1)`` in the first tile of :data:`TILES` that fits; False when none does."""

    def impl(A, a0, lda, ska, M, X, x, ldx, out, o, ldc, K, bf, b0, b1):
        if M % MR == 0 and (b1 - b0) % NC == 0:
            for m in range(0, M, MR):
                for n in range(b0, b1, NC):
                    _tile(A, a0 + m * lda, lda, ska, X, x + n, ldx, out, o + m * ldc + n, ldc, K, bf)
            return True
        if WIDE and M % MR2 == 0 and (b1 - b0) % NC2 == 0:  # e.g. the 16-column parts of a batch of 32
            for m in range(0, M, MR2):
                for n in range(b0, b1, NC2):
                    _tile2(A, a0 + m * lda, lda, ska, X, x + n, ldx, out, o + m * ldc + n, ldc, K, bf)
            return True
        return False

    return impl


def own_product_at(own, A, r0, c0, M, K, X, x, ldx, out, o, ldc, beta, n):  # pragma: no cover - compiled only
    """:func:`own_product` with the columns given as flat offsets: ``out[o + m·ldc + i] = Σ_k
    A[r0 + m, c0 + k] · X[x + k·ldx + i] (+ out when beta is 1)`` for m < M, i < n, any arrays
    of rows (X's and out's first columns need not match: the packed layout of
    bptt.functional._packed reads a step's block of X and writes the running columns)."""
    raise NotImplementedError


def own_product_p_at(own, Ap, r0, c0, M, K, X, x, ldx, out, o, ldc, beta, n):  # pragma: no cover - compiled only
    """:func:`own_product_at` with A packed (:func:`own_product_p`)."""
    raise NotImplementedError


def _own_at_overload(packed: bool):
    def ol(own, A, r0, c0, M, K, X, x, ldx, out, o, ldc, beta, n):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, X, out)):
            return lambda own, A, r0, c0, M, K, X, x, ldx, out, o, ldc, beta, n: False

        def impl(own, A, r0, c0, M, K, X, x, ldx, out, o, ldc, beta, n):
            if own == 0 or (own == FORWARD_SHAPES and M < K):
                return False
            bf = np.float32(beta)
            if not packed:
                ld = A.shape[1]
                return _tiles(A, r0 * ld + c0, ld, 1, M, X, x, ldx, out, o, ldc, K, bf, 0, n)
            if r0 % PANEL or M % PANEL:
                return False
            Ktot = A.shape[1]  # a panel is Ktot · PANEL values; row r0 + m starts panel (r0 + m) / PANEL
            panels = A.reshape(A.size)
            for p in range(M // PANEL):
                a0 = ((r0 // PANEL + p) * Ktot + c0) * PANEL
                if not _tiles(panels, a0, 1, PANEL, PANEL, X, x, ldx, out, o + p * PANEL * ldc, ldc, K, bf, 0, n):
                    return False
            return True

        return impl

    return ol


overload(own_product_at, inline="always", jit_options={"fastmath": True})(_own_at_overload(False))
overload(own_product_p_at, inline="always", jit_options={"fastmath": True})(_own_at_overload(True))


def _own_overload(packed: bool):
    """:func:`own_product` (``packed``: :func:`own_product_p`): the slots' columns as flat offsets
    for :func:`own_product_at`."""
    def ol(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, X, out)):
            return lambda own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1: False
        at = own_product_p_at if packed else own_product_at

        def impl(own, A, r0, c0, M, K, X, x0, t, out, o0, to, beta, b0, b1):
            B = X.shape[2]
            Bo = out.shape[2]  # out's rows may be shorter than X's (a projection of the first T of S slots)
            x, o = (x0 * X.shape[1] + t) * B + b0, (o0 * out.shape[1] + to) * Bo + b0
            return at(own, A, r0, c0, M, K, X, x, X.shape[1] * B, out, o, out.shape[1] * Bo, beta, b1 - b0)

        return impl

    return ol


overload(own_product, inline="always", jit_options={"fastmath": True})(_own_overload(False))
overload(own_product_p, inline="always", jit_options={"fastmath": True})(_own_overload(True))


@nb.njit(cache=True, fastmath=True, nogil=True)
def product2d(A, X, out, beta):
    """``out = A @ X (+ out)`` for 2-D float32 C-contiguous arrays by :func:`own_product` (for tests
    and measurement); False when the shapes do not suit it."""
    M, K = A.shape
    return own_product(ALL, A, 0, 0, M, K, X.reshape((K, 1, X.shape[1])), 0, 0,
                       out.reshape((M, 1, out.shape[1])), 0, 0, beta, 0, X.shape[1])


@nb.njit(cache=True, fastmath=True, nogil=True)
def product2d_packed(Ap, r0, c0, M, K, X, out, beta):
    """``out = A[r0:r0 + M, c0:c0 + K] @ X (+ out)`` with A packed by :func:`pack_rows` (for tests
    and measurement); False when the shapes do not suit it."""
    return own_product_p(ALL, Ap, r0, c0, M, K, X.reshape((K, 1, X.shape[1])), 0, 0,
                         out.reshape((M, 1, out.shape[1])), 0, 0, beta, 0, X.shape[1])


# ────────────────────────────────────────────────────────────── dot tiles: the weight gradients


def _dot_tile_kernel(MR: int, NR: int):
    """An ``MR × NR`` tile of inner products over rows that are contiguous in k: ``C[c0 + r·ldc + s]
    = Σ_{k < K} A[a0 + r·lda + k] · B[b0 + s·ldb + k] (+ C[…] if beta)`` for r < MR, s < NR, with
    K a multiple of :data:`LANES` (offsets and strides in elements of the float32 arrays A, B, C).
    MR · NR vector accumulators over k, summed across their lanes at the end. Both operands are
    read as the rows they are, so nothing is packed (see bptt.kernels.fast.nt_product)."""

    def tile(typingctx, A, a0, lda, B, b0, ldb, C, c0, ldc, K, beta):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, B, C)):
            return None
        sig = types.void(A, types.intp, types.intp, B, types.intp, types.intp, C, types.intp, types.intp,
                         types.intp, types.float32)

        def codegen(context, builder, signature, args):
            A_v, a0_v, lda_v, B_v, b0_v, ldb_v, C_v, c0_v, ldc_v, K_v, beta_v = args
            f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
            vt = ir.VectorType(f32, LANES)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                                                 f"llvm.fma.v{LANES}f32")

            def data(arrty, value, off):
                return builder.gep(cgutils.create_struct_proxy(arrty)(context, builder, value=value).data, [off])

            def vec(base, off):
                return builder.bitcast(builder.gep(base, [off]), vt.as_pointer())

            pa, pb, pc = data(A, A_v, a0_v), data(B, B_v, b0_v), data(C, C_v, c0_v)
            acc = [[cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * LANES)) for _ in range(NR)]
                   for _ in range(MR)]
            rows_a = [builder.gep(pa, [builder.mul(lda_v, ir.Constant(i64, r))]) for r in range(MR)]
            rows_b = [builder.gep(pb, [builder.mul(ldb_v, ir.Constant(i64, s))]) for s in range(NR)]
            with cgutils.for_range(builder, builder.udiv(K_v, ir.Constant(i64, LANES))) as loop:
                k = builder.mul(loop.index, ir.Constant(i64, LANES))
                av = [builder.load(vec(row, k), align=4) for row in rows_a]
                bv = [builder.load(vec(row, k), align=4) for row in rows_b]
                for r in range(MR):
                    for s in range(NR):
                        builder.store(builder.call(fma, [av[r], bv[s], builder.load(acc[r][s])]), acc[r][s])
            overwrite = builder.fcmp_ordered("==", beta_v, ir.Constant(f32, 0.0))
            for r in range(MR):
                crow = builder.gep(pc, [builder.mul(ldc_v, ir.Constant(i64, r))])
                for s in range(NR):
                    v, n = builder.load(acc[r][s]), LANES
                    while n > 1:  # the lanes' sum, halving
                        n //= 2
                        lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, n), list(range(n))))
                        hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, n), list(range(n, 2 * n))))
                        v = builder.fadd(lo, hi)
                    total, p = builder.extract_element(v, ir.Constant(i32, 0)), builder.gep(crow, [ir.Constant(i64, s)])
                    with builder.if_else(overwrite) as (store, add):
                        with store:
                            builder.store(total, p)
                        with add:
                            builder.store(builder.fadd(builder.load(p), total), p)
            return context.get_dummy_value()

        return sig, codegen

    tile.__name__ = tile.__qualname__ = f"_dot_tile_{MR}x{NR}"
    return intrinsic(tile)


#: Row counts of the dot tiles, the main one's first: with AVX-512's 32 registers 6 × 4 (24
#: accumulators), the bands of fewer rows at the end of C in tiles of 4, 2 and 1 rows (94 rows: 15
#: tiles of 6 and one of 4); with AVX2's 16, 2 × 4 and 1 × 4 (6 × 4 against 4 × 4:
#: docs/performance.md, "Micro-kernel tiles").
DOT_ROWS = (6, 4, 2, 1) if WIDE else (2, 1, 1, 1)
#: Columns of the dot tiles; the last ``N mod DOT_NR`` columns of C take tiles of one column.
DOT_NR = 4
dot_tile_0, dot_tile_1, dot_tile_2, dot_tile_3 = (_dot_tile_kernel(r, DOT_NR) for r in DOT_ROWS)
dot_column_0, dot_column_1, dot_column_2, dot_column_3 = (_dot_tile_kernel(r, 1) for r in DOT_ROWS)
