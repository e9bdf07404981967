"""NumPy's own BLAS GEMM, callable from compiled code.

The fast drivers run the whole time loop in one compiled call; for the recurrent product of the
larger sizes they call ``cblas_sgemm`` / ``cblas_dgemm`` of the BLAS library NumPy already loaded
(found through threadpoolctl), by address. So a step costs no Python, no Numba dispatch and no
temporary, and the product can accumulate straight into the step's slice of a strided array
(``beta = 1``), which ``np.matmul`` cannot.

:func:`gemm_address` returns ``(address, ilp64)`` for a dtype, or ``(0, False)`` when no known
symbol is found (another BLAS, or a NumPy without a bundled one); the drivers then use their
hand-written product (small sizes) or the Python loop with ``np.matmul`` (larger ones).
``BPTT_BLAS_CALL=0`` forces that fallback.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

ROW_MAJOR, NO_TRANS = 101, 111

# (prefix, suffix, ilp64) of the cblas symbol names NumPy's bundled OpenBLAS builds use (NumPy 2
# wheels: ``scipy_cblas_sgemm64_``), then plain reference-CBLAS names.
_NAMES = (("scipy_cblas_", "64_", True), ("cblas_", "64_", True), ("scipy_cblas_", "", False), ("cblas_", "", False))

_found: dict[str, tuple[int, bool]] = {}
_names: dict[str, str] = {}


def _numpy_blas_libraries() -> list:
    try:
        from threadpoolctl import ThreadpoolController

        found = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # pragma: no cover - threadpoolctl missing or failing
        return []
    return [lc for lc in found if "numpy" in (lc.filepath or "")] or list(found)


def gemm_address(dtype) -> tuple[int, bool]:
    """``(address of cblas_?gemm, whether it takes 64-bit integers)`` for float32/float64, or
    ``(0, False)`` when it cannot be called (see the module docstring)."""
    key = np.dtype(dtype).char
    if key not in _found:
        _found[key] = _lookup("s" if key == "f" else "d")
    if os.environ.get("BPTT_BLAS_CALL", "1") == "0":
        return 0, False
    return _found[key]


def gemm_symbol(dtype) -> str | None:
    """The name of the GEMM symbol :func:`gemm_address` found for ``dtype`` (None: none found)."""
    gemm_address(dtype)
    return _names.get(np.dtype(dtype).char)


def _lookup(letter: str) -> tuple[int, bool]:
    for lc in _numpy_blas_libraries():
        lib = getattr(lc, "dynlib", None)
        if lib is None:  # pragma: no cover - threadpoolctl without the handle
            continue
        for prefix, suffix, ilp64 in _NAMES:
            name = f"{prefix}{letter}gemm{suffix}"
            fn = getattr(lib, name, None)
            if fn is not None:
                _names["f" if letter == "s" else "d"] = name
                return ctypes.cast(fn, ctypes.c_void_p).value or 0, ilp64
    return 0, False


@intrinsic
def gemm(typingctx, addr, ilp64, M, N, K, A, a0, lda, X, x0, ldx, beta, C, c0, ldc):
    """``C[c0 …] = A[a0 …] @ X[x0 …] + beta · C[c0 …]``, row-major, through the cblas GEMM at
    ``addr``: ``A`` is M × K with row stride ``lda``, ``X`` K × N with ``ldx``, ``C`` M × N with
    ``ldc``; the offsets count elements from the arrays' starts. All three arrays share a dtype
    (float32 → sgemm, float64 → dgemm); ``addr`` must come from :func:`gemm_address` for it."""
    if not (isinstance(A, types.Array) and isinstance(X, types.Array) and isinstance(C, types.Array)):
        return None
    if not (A.dtype == X.dtype == C.dtype and A.dtype in (types.float32, types.float64)):
        return None
    dt = A.dtype
    sig = types.void(types.intp, types.boolean, types.intp, types.intp, types.intp, A, types.intp, types.intp,
                     X, types.intp, types.intp, dt, C, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        (addr_v, ilp64_v, M_v, N_v, K_v, A_v, a0_v, lda_v, X_v, x0_v, ldx_v, beta_v, C_v, c0_v, ldc_v) = args
        fty = context.get_value_type(dt)
        fp = fty.as_pointer()
        i32 = ir.IntType(32)

        def data(arrty, value, off):
            ptr = cgutils.create_struct_proxy(arrty)(context, builder, value=value).data
            return builder.gep(ptr, [off])

        pa, px, pc = data(A, A_v, a0_v), data(X, X_v, x0_v), data(C, C_v, c0_v)
        one = ir.Constant(fty, 1.0)
        enums = [ir.Constant(i32, ROW_MAJOR), ir.Constant(i32, NO_TRANS), ir.Constant(i32, NO_TRANS)]

        def call(ity):
            cast = (lambda v: v) if ity.width == 64 else (lambda v: builder.trunc(v, ity))
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, ity, ity, ity, fty, fp, ity, fp, ity, fty, fp, ity])
            fn = builder.inttoptr(addr_v, fnty.as_pointer())
            builder.call(fn, enums + [cast(M_v), cast(N_v), cast(K_v), one, pa, cast(lda_v), px, cast(ldx_v),
                                      beta_v, pc, cast(ldc_v)])

        with builder.if_else(ilp64_v) as (wide, narrow):
            with wide:
                call(ir.IntType(64))
            with narrow:
                call(i32)
        return context.get_dummy_value()

    return sig, codegen
