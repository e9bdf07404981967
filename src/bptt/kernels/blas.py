"""NumPy's own BLAS GEMM, callable from compiled code.

The fast drivers run the whole time loop in one compiled call; for the recurrent product of the
larger sizes they call ``cblas_sgemm`` / ``cblas_dgemm`` of the BLAS library NumPy already loaded
(found through threadpoolctl), by address. So a step costs no Python, no Numba dispatch and no
temporary, and the product can accumulate straight into the step's slice of a strided array
(``beta = 1``), which ``np.matmul`` cannot.

:func:`gemm_address` returns the address for a dtype, or 0 when no known symbol is found (another
BLAS, or a NumPy without a bundled one) or the symbol fails a one-time check against
``np.matmul``; the drivers then use their hand-written product (small sizes) or the Python loop
with ``np.matmul`` (larger ones). ``settings.blas_call = False`` (bptt.settings) forces that fallback.

Integer width. NumPy's own OpenBLAS takes 64-bit integers (``…64_`` symbols), a plain CBLAS 32-bit
ones. The call always passes 64-bit values: on x86-64 (System V and Windows) and Linux AArch64
every integer argument travels in its own 64-bit register or 8-byte stack slot, and a callee
expecting a 32-bit ``int`` reads the low half, which holds the same value (on Apple's arm64, which
packs stack arguments by size, only the ``…64_`` symbols are used). So a library
whose integer width the symbol name does not reveal is called correctly either way, and the
self-check confirms it before first use.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..settings import settings
from .._threads import numpy_blas_libraries

ROW_MAJOR, NO_TRANS = 101, 111

# (prefix, suffix) of the cblas symbol names NumPy's bundled OpenBLAS builds use (NumPy 2 wheels:
# ``scipy_cblas_sgemm64_``), then plain reference-CBLAS names.
_NAMES = (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("scipy_cblas_", ""), ("cblas_", ""))

_found: dict[str, int] = {}
_names: dict[str, str] = {}


def gemm_address(dtype) -> int:
    """The address of ``cblas_sgemm``/``cblas_dgemm`` for float32/float64, or 0 when it cannot be
    called (see the module docstring)."""
    key = np.dtype(dtype).char
    if key not in _found:
        _found[key] = _lookup(np.dtype(dtype))
    if not settings.blas_call:
        return 0
    return _found[key]


def gemm_symbol(dtype) -> str | None:
    """The name of the GEMM symbol :func:`gemm_address` found for ``dtype`` (None: none found)."""
    gemm_address(dtype)
    return _names.get(np.dtype(dtype).char)


def _wide_ints_safe_for_int_callees() -> bool:
    """Whether 64-bit integer arguments reach a callee declared with 32-bit ``int`` intact: every
    argument in its own register or 8-byte stack slot (x86-64, Linux AArch64). Apple's arm64 ABI
    packs stack arguments by their size, so there only ``…64_`` (64-bit integer) symbols are used."""
    import platform

    return not (platform.system() == "Darwin" and platform.machine() in ("arm64", "aarch64"))


def _lookup(dtype: np.dtype) -> int:
    letter = "s" if dtype == np.float32 else "d"
    names = [(p, x) for p, x in _NAMES if x or _wide_ints_safe_for_int_callees()]
    for lc in numpy_blas_libraries():
        lib = getattr(lc, "dynlib", None)
        if lib is None:  # pragma: no cover - threadpoolctl without the handle
            continue
        for prefix, suffix in names:
            name = f"{prefix}{letter}gemm{suffix}"
            fn = getattr(lib, name, None)
            if fn is not None:
                addr = ctypes.cast(fn, ctypes.c_void_p).value or 0
                if addr and _agrees_with_numpy(addr, dtype):
                    _names[dtype.char] = name
                    return addr
    return 0


def _agrees_with_numpy(addr: int, dtype: np.dtype) -> bool:
    """Call the GEMM at ``addr`` once, through ctypes with the arguments the compiled call uses, on
    an offset 3 × 4 block with row strides unlike the sizes, and compare with ``np.matmul``."""
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, i64, i64, i64, real, ptr, i64,
                             ptr, i64, real, ptr, i64)
    rng = np.random.default_rng(0)
    A, X = rng.normal(size=(4, 6)).astype(dtype), rng.normal(size=(7, 5)).astype(dtype)
    C = np.zeros((5, 7), dtype)
    at = lambda a, r, c: a.ctypes.data + (r * a.shape[1] + c) * a.itemsize  # noqa: E731
    proto(addr)(ROW_MAJOR, NO_TRANS, NO_TRANS, 3, 4, 5, 1.0, at(A, 1, 0), 6, at(X, 2, 0), 5, 0.0, at(C, 1, 0), 7)
    expected = np.zeros_like(C)
    expected[1:4, :4] = A[1:4, :5] @ X[2:7, :4]
    return bool(np.allclose(C, expected, rtol=1e-4, atol=1e-5))


@intrinsic
def gemm(typingctx, addr, M, N, K, A, a0, lda, X, x0, ldx, beta, C, c0, ldc):
    """``C[c0 …] = A[a0 …] @ X[x0 …] + beta · C[c0 …]``, row-major, through the cblas GEMM at
    ``addr``: ``A`` is M × K with row stride ``lda``, ``X`` K × N with ``ldx``, ``C`` M × N with
    ``ldc``; the offsets count elements from the arrays' starts. All three arrays share a dtype
    (float32 → sgemm, float64 → dgemm); ``addr`` must come from :func:`gemm_address` for it."""
    if not (isinstance(A, types.Array) and isinstance(X, types.Array) and isinstance(C, types.Array)):
        return None
    if not (A.dtype == X.dtype == C.dtype and A.dtype in (types.float32, types.float64)):
        return None
    dt = A.dtype
    sig = types.void(types.intp, types.intp, types.intp, types.intp, A, types.intp, types.intp,
                     X, types.intp, types.intp, dt, C, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        (addr_v, M_v, N_v, K_v, A_v, a0_v, lda_v, X_v, x0_v, ldx_v, beta_v, C_v, c0_v, ldc_v) = args
        fty = context.get_value_type(dt)
        fp = fty.as_pointer()
        i32 = ir.IntType(32)

        def data(arrty, value, off):
            ptr = cgutils.create_struct_proxy(arrty)(context, builder, value=value).data
            return builder.gep(ptr, [off])

        pa, px, pc = data(A, A_v, a0_v), data(X, X_v, x0_v), data(C, C_v, c0_v)
        one = ir.Constant(fty, 1.0)
        enums = [ir.Constant(i32, ROW_MAJOR), ir.Constant(i32, NO_TRANS), ir.Constant(i32, NO_TRANS)]

        i64 = ir.IntType(64)  # 64-bit integers for either kind of library: see the module docstring
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fty, fp, i64, fp, i64, fty, fp, i64])
        fn = builder.inttoptr(addr_v, fnty.as_pointer())
        builder.call(fn, enums + [M_v, N_v, K_v, one, pa, lda_v, px, ldx_v, beta_v, pc, ldc_v])
        return context.get_dummy_value()

    return sig, codegen


#: OpenBLAS core types (as threadpoolctl reports them, lower-cased) whose kernels use AVX-512.
AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def blas_kernels() -> dict[str, Any]:
    """Which kernels NumPy's BLAS runs, and whether they are narrower than the CPU's vectors.

    OpenBLAS picks its kernels for the CPU it finds unless ``OPENBLAS_CORETYPE`` names others; a
    core type without AVX-512 on a CPU with it can run GEMMs far below the CPU's rate
    (docs/performance.md, "BLAS core types"). bptt leaves such a setting alone; the bench reports it, since it moves both
    the bptt timings and the GEMM floor, and the time loops take it into account (see
    ``bptt.functional._own_kernel``). Read once per process, as OpenBLAS reads the variable."""
    info: dict[str, Any] = {"library": None, "version": None, "core": None,
                            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    libs = numpy_blas_libraries()
    if libs:
        with contextlib.suppress(Exception):
            d = libs[0].info()
            info.update(library=d.get("internal_api"), version=d.get("version"), core=d.get("architecture"))
    info["cpu_avx512"] = "avx512f" in _cpu_flags()
    # how bptt's time loops reach it: by address from compiled code, or np.matmul per step
    info["loop_gemm"] = gemm_symbol(np.float32) if gemm_address(np.float32) else None
    core = (info["core"] or "").lower()
    info["narrower_than_cpu"] = bool(info["library"] == "openblas" and core and info["cpu_avx512"]
                                     and core not in AVX512_CORES)
    return info
