"""bptt's own float32 GEMM micro-kernel (bptt.kernels.microkernel) against np.matmul."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.kernels import microkernel
from bptt.kernels.microkernel import product2d
from bptt.settings import settings
from bptt.functional import _arrays

# The tiles follow the CPU: 8 x 32 and 16 x 16 with AVX-512, 4 x 16 without (see the module).
assert microkernel.TILES == (((8, 32), (16, 16)) if microkernel.WIDE else ((4, 16),))


# Shapes every CPU's tiles cover: 8 x 32 and 4 x 16 tiles alike, and (AVX-512) 16 x 16 tiles for N a
# multiple of 16 but not of 32 (a batch of 32 cut in two, or 48); then shapes only the 4 x 16 tile covers.
TILED = [(8, 1, 32), (8, 3, 64), (64, 10, 32), (256, 64, 256), (2048, 512, 32),
         (16, 1, 16), (16, 5, 16), (32, 7, 48), (2048, 512, 16), (512, 2048, 16)]
if not microkernel.WIDE:
    TILED += [(4, 1, 16), (12, 9, 48), (20, 33, 80)]


@pytest.mark.parametrize("M, K, N", TILED)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_own_product_matches_matmul(M, K, N, beta):
    rng = np.random.default_rng(M + K + N)
    A = rng.normal(size=(M, K)).astype(np.float32)
    X = rng.normal(size=(K, N)).astype(np.float32)
    C = rng.normal(size=(M, N)).astype(np.float32)
    expected = A.astype(np.float64) @ X.astype(np.float64) + beta * C.astype(np.float64)
    assert product2d(A, X, C, beta) is True
    scale = np.abs(A).astype(np.float64) @ np.abs(X).astype(np.float64) + np.abs(C)  # float32 error bound
    assert np.all(np.abs(C - expected) <= 4 * K * np.finfo(np.float32).eps * scale + 1e-30)


@pytest.mark.parametrize("M, N", [(8, 32), (8, 96), (16, 16)] + ([] if microkernel.WIDE else [(4, 16)]))
def test_beta_0_overwrites_garbage(M, N):
    A, X = np.ones((M, 3), np.float32), np.ones((3, N), np.float32)
    C = np.full((M, N), np.nan, np.float32)  # what an uninitialised workspace may hold
    assert product2d(A, X, C, 0.0) is True
    assert np.all(C == 3.0)


DECLINED = ([(12, 32, np.float32), (8, 48, np.float32), (8, 16, np.float32), (16, 24, np.float32)] if microkernel.WIDE
            else [(6, 16, np.float32), (4, 24, np.float32), (10, 32, np.float32), (8, 8, np.float32)])


@pytest.mark.parametrize("M, N, dtype", DECLINED + [(8, 32, np.float64), (3, 30, np.float32)])
def test_own_product_declines_what_it_cannot_tile(M, N, dtype):
    A, X = np.ones((M, 4), dtype), np.ones((4, N), dtype)
    C = np.full((M, N), 7.0, dtype)
    assert product2d(A, X, C, 0.0) is False  # the caller then uses BLAS or the hand-written loop
    assert np.all(C == 7.0)


def test_pack_rows_lays_panels_of_rows_side_by_side():
    P = microkernel.PANEL
    A = np.arange(2 * P * 3, dtype=np.float32).reshape(2 * P, 3)
    out = np.empty((2, 3, P), np.float32)
    microkernel.pack_rows(A, out)
    for p in range(2):
        for k in range(3):
            np.testing.assert_array_equal(out[p, k], A[p * P : (p + 1) * P, k])


# (rows of A, columns of A, r0, c0, M, K, N): whole matrices as the backward loops use them (U is
# H x G·H), and the column blocks of the reset-before GRU (U[:, 2H:] and U[:, :2H]), and row blocks.
PACKED = [(16, 16, 0, 0, 16, 16, 16), (64, 256, 0, 0, 64, 256, 256), (512, 2048, 0, 0, 512, 2048, 16),
          (128, 384, 0, 256, 128, 128, 32), (128, 384, 0, 0, 128, 256, 32), (64, 64, 16, 3, 32, 40, 48)]


@pytest.mark.parametrize("rows, cols, r0, c0, M, K, N", PACKED)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_packed_product_matches_matmul(rows, cols, r0, c0, M, K, N, beta):
    rng = np.random.default_rng(rows + cols + N)
    A = rng.normal(size=(rows, cols)).astype(np.float32)
    Ap = np.empty((rows // microkernel.PANEL, cols, microkernel.PANEL), np.float32)
    microkernel.pack_rows(A, Ap)
    X = rng.normal(size=(K, N)).astype(np.float32)
    C = rng.normal(size=(M, N)).astype(np.float32)
    block = A[r0 : r0 + M, c0 : c0 + K].astype(np.float64)
    expected = block @ X.astype(np.float64) + beta * C.astype(np.float64)
    scale = np.abs(block) @ np.abs(X).astype(np.float64) + np.abs(C)
    assert microkernel.product2d_packed(Ap, r0, c0, M, K, X, C, beta) is True
    assert np.all(np.abs(C - expected) <= 4 * K * np.finfo(np.float32).eps * scale + 1e-30)


@pytest.mark.parametrize("r0, M", [(8, 16), (0, 24)])
def test_packed_product_declines_rows_off_the_panels(r0, M):
    A = np.ones((32, 4), np.float32)
    Ap = np.empty((2, 4, microkernel.PANEL), np.float32)
    microkernel.pack_rows(A, Ap)
    X, C = np.ones((4, 32), np.float32), np.full((M, 32), 7.0, np.float32)
    assert microkernel.product2d_packed(Ap, r0, 0, M, 4, X, C, 0.0) is False
    assert np.all(C == 7.0)


# ─────────────────────────────────────────────── dot tiles: bptt.kernels.fast.nt_product (A Bᵀ)

# M and N around the main tile (6 x 4 with AVX-512, 2 x 4 without) and its edges; K below one
# vector, with a remainder of the vector width, over several blocks of NT_BLOCK.
DOT_SHAPES = [(1, 1, 1), (1, 4, 16), (3, 5, 17), (4, 4, 16), (5, 7, 33), (9, 3, 600), (8, 12, 1100),
              (94, 64, 515), (13, 1, 2 * 512 + 16 + 3)]


def _nt_expected(A, B):
    return A.astype(np.float64) @ B.astype(np.float64).T


def _ones_and_sums(n):
    from bptt.kernels.fast import NT_BLOCK

    return np.ones(NT_BLOCK, np.float32), np.full(n, np.nan, np.float32)


def _nt_bound(A, B):
    """The float32 error bound of a sum of K products (any order), as for the GEMM tiles above."""
    return 4 * A.shape[1] * np.finfo(np.float32).eps * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64).T)


@pytest.mark.parametrize("M, N, K", DOT_SHAPES)
def test_nt_product_matches_matmul_on_strided_rows(M, N, K):
    from bptt.kernels.fast import nt_product

    rng = np.random.default_rng(M * N + K)
    A = rng.normal(size=(M, K + 9)).astype(np.float32)[:, 3:K + 3]  # rows K + 9 apart, not aligned
    B = rng.normal(size=(N, K)).astype(np.float32)
    C = np.full((M, N + 5), np.nan, np.float32)  # an uninitialised output (overwritten) inside a wider array
    C[:, :2] = C[:, N + 2:] = 7.0
    out = C[:, 2:N + 2]
    ones, sums = _ones_and_sums(N)
    nt_product(A, B, out, 0, M, ones, sums)
    assert np.all(np.abs(out - _nt_expected(A, B)) <= _nt_bound(A, B) + 1e-30)
    assert np.all(C[:, :2] == 7.0) and np.all(C[:, N + 2:] == 7.0)  # nothing written beside it
    # B's row sums, from the same pass (the bias gradients)
    row_sums, bound = B.astype(np.float64).sum(axis=1), 4 * K * np.finfo(np.float32).eps * np.abs(B).sum(axis=1)
    assert np.all(np.abs(sums - row_sums) <= bound + 1e-30)
    nt_product(A, B, out, 0, M, ones, sums[:0])  # no sums asked: the product alone
    assert np.all(np.abs(out - _nt_expected(A, B)) <= _nt_bound(A, B) + 1e-30)


@pytest.mark.parametrize("M, N, K", [(9, 5, 1100), (94, 64, 515)])
def test_nt_product_writes_only_its_rows(M, N, K):
    """Two calls over the rows [0, m) and [m, M), as two threads run it, make the whole product;
    each leaves the other's rows alone."""
    from bptt.kernels.fast import nt_product

    rng = np.random.default_rng(K)
    A, B = rng.normal(size=(M, K)).astype(np.float32), rng.normal(size=(N, K)).astype(np.float32)
    out = np.full((M, N), np.nan, np.float32)
    m = M // 2
    ones, sums = _ones_and_sums(0)
    nt_product(A, B, out, m, M, ones, sums)
    assert np.isnan(out[:m]).all() and not np.isnan(out[m:]).any()
    nt_product(A, B, out, 0, m, ones, sums)
    assert np.all(np.abs(out - _nt_expected(A, B)) <= _nt_bound(A, B) + 1e-30)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("M, N, K", [(94, 64, 7680 // 16), (5, 3, 40), (97, 256, 1000)])
def test_dot_product_on_one_and_two_threads(M, N, K, threads, monkeypatch):
    from bptt import functional as F

    monkeypatch.setattr(settings, "loop_threads", int(threads))
    rng = np.random.default_rng(N)
    A = rng.normal(size=(M, K + 16)).astype(np.float32)[:, :K]
    B = rng.normal(size=(N, K)).astype(np.float32)
    assert np.all(np.abs(_arrays._dot_product(A, B) - _nt_expected(A, B)) <= _nt_bound(A, B) + 1e-30)
    product, sums = _arrays._dot_product(A, B, sums=True)
    assert np.all(np.abs(product - _nt_expected(A, B)) <= _nt_bound(A, B) + 1e-30)
    bound = 4 * K * np.finfo(np.float32).eps * np.abs(B).sum(axis=1)
    assert sums.shape == (N,) and np.all(np.abs(sums - B.astype(np.float64).sum(axis=1)) <= bound + 1e-30)
