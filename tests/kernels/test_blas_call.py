"""NumPy's BLAS GEMM called by address from compiled code (bptt.kernels.blas)."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from bptt.kernels.blas import gemm, gemm_address, gemm_symbol
from bptt.settings import settings


@nb.njit(cache=False)
def _sub_gemm(addr, A, r0, X, x0, C, c0, M, N, K, beta):
    """C[c0:c0+M, :N] (+)= A[r0:r0+M, :K] @ X[x0:x0+K, :N] on 2-D C-contiguous arrays."""
    gemm(addr, M, N, K, A, r0 * A.shape[1], A.shape[1], X, x0 * X.shape[1], X.shape[1], beta,
         C, c0 * C.shape[1], C.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_by_address_matches_numpy_on_offset_blocks(dtype, beta):
    addr = gemm_address(dtype)
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
    _sub_gemm(addr, A, r0, X, x0, C, c0, M, N, K, dtype(beta))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)  # and nothing outside the block changed


def test_bptt_blas_call_0_turns_the_call_off(monkeypatch):
    monkeypatch.setattr(settings, "blas_call", False)
    assert gemm_address(np.float32) == 0


def test_a_symbol_that_disagrees_with_numpy_is_not_used(monkeypatch):
    from bptt.kernels import blas

    monkeypatch.setattr(blas, "_found", {})
    monkeypatch.setattr(blas, "_names", {})
    monkeypatch.setattr(blas, "_agrees_with_numpy", lambda addr, dtype: False)
    assert gemm_address(np.float64) == 0 and gemm_symbol(np.float64) is None


def test_the_self_check_rejects_a_function_that_does_not_multiply():
    import ctypes

    from bptt.kernels import blas

    i64, ptr, real = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, i64, i64, i64, real, ptr, i64,
                             ptr, i64, real, ptr, i64)
    calls = []
    noop = proto(lambda *args: calls.append(args[3:6]))  # records M, N, K and computes nothing
    addr = ctypes.cast(noop, ctypes.c_void_p).value
    assert blas._agrees_with_numpy(addr, np.dtype(np.float32)) is False
    assert calls == [(3, 4, 5)]  # the sizes arrived intact as 64-bit integers


def test_on_apple_arm64_only_64_bit_integer_symbols_are_called(monkeypatch):
    import platform
    from types import SimpleNamespace

    from bptt.kernels import blas

    libs = blas.numpy_blas_libraries()
    real = next((getattr(lc.dynlib, n, None) for lc in libs for n in ("scipy_cblas_sgemm64_", "cblas_sgemm64_")
                 if getattr(lc.dynlib, n, None) is not None), None)
    if real is None:
        pytest.skip("no 64-bit-integer sgemm in NumPy's BLAS to stand in for a plain one")
    monkeypatch.setattr(blas, "_names", {})  # _lookup records the name it found
    # a library that offers the (working) GEMM only under the plain, 32-bit-integer name
    monkeypatch.setattr(blas, "numpy_blas_libraries", lambda: [SimpleNamespace(dynlib=SimpleNamespace(cblas_sgemm=real))])
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert blas._lookup(np.dtype(np.float32)) != 0
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert blas._lookup(np.dtype(np.float32)) == 0  # not called: the ABI would not carry 64-bit values there
