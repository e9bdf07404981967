"""NumPy's BLAS GEMM called by address from compiled code (bptt.kernels.blas)."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from bptt.kernels.blas import gemm, gemm_address, gemm_symbol


@nb.njit(cache=False)
def _sub_gemm(addr, ilp64, A, r0, X, x0, C, c0, M, N, K, beta):
    """C[c0:c0+M, :N] (+)= A[r0:r0+M, :K] @ X[x0:x0+K, :N] on 2-D C-contiguous arrays."""
    gemm(addr, ilp64, M, N, K, A, r0 * A.shape[1], A.shape[1], X, x0 * X.shape[1], X.shape[1], beta,
         C, c0 * C.shape[1], C.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_by_address_matches_numpy_on_offset_blocks(dtype, beta):
    addr, ilp64 = gemm_address(dtype)
    if not addr:
        pytest.skip("NumPy's BLAS has no cblas GEMM bptt can call")
    assert gemm_symbol(dtype)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(9, 7)).astype(dtype)
    X = rng.normal(size=(8, 11)).astype(dtype)
    C = rng.normal(size=(10, 11)).astype(dtype)
    M, N, K, r0, x0, c0 = 4, 6, 5, 3, 2, 5
    expected = C.copy()
    expected[c0 : c0 + M, :N] = A[r0 : r0 + M, :K] @ X[x0 : x0 + K, :N] + beta * C[c0 : c0 + M, :N]
    _sub_gemm(addr, ilp64, A, r0, X, x0, C, c0, M, N, K, dtype(beta))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)  # and nothing outside the block changed


def test_bptt_blas_call_0_turns_the_call_off(monkeypatch):
    monkeypatch.setenv("BPTT_BLAS_CALL", "0")
    assert gemm_address(np.float32) == (0, False)
