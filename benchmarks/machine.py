"""The machine a benchmark runs on, as BENCHMARKS.md asks it be recorded: CPU, cores, threads,
NumPy's BLAS and its kernel set, and the measured single-GEMM rate."""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import bptt
from bptt.kernels.blas import blas_kernels
from grid import DTYPE
from timing import MIN_WARMUP

__all__ = ["GEMM_N", "blas_warning", "child_env", "gemm_rate", "loadavg", "machine_info"]

GEMM_N = 1024


def gemm_rate(repeats: int = 20, n: int = GEMM_N) -> float:
    """Single-GEMM rate in flop/s: median time of an ``n×n @ n×n`` float32 NumPy matmul (2·n³ flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=DTYPE)
    b = rng.standard_normal((n, n), dtype=DTYPE)
    out = np.empty((n, n), DTYPE)
    for _ in range(MIN_WARMUP):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / float(np.median(times))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _openblas_threads() -> int | None:
    """NumPy's OpenBLAS thread count, read from the bundled library (best effort, else None)."""
    base = Path(np.__file__).resolve().parent
    candidates = glob.glob(str(base.parent / "numpy.libs" / "*openblas*")) + glob.glob(
        str(base / ".dylibs" / "*openblas*")
    )
    names = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
             "openblas_get_num_threads")
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def blas_warning(blas: dict[str, Any]) -> str | None:
    """A one-paragraph warning when NumPy's OpenBLAS runs kernels without AVX-512 on a CPU with it."""
    if not blas.get("narrower_than_cpu"):
        return None
    why = (f"OPENBLAS_CORETYPE={blas['OPENBLAS_CORETYPE']} is set in the environment"
           if blas.get("OPENBLAS_CORETYPE") else "OpenBLAS chose them for this CPU")
    return (f"note: NumPy's OpenBLAS runs its {blas['core']} kernels (no AVX-512) on a CPU with AVX-512: {why}. "
            "Its GEMMs, and so bptt's, may run well below this CPU's rate (on an AMD Zen 5: at about half), and "
            "the GEMM rate and floor below are those of these kernels. PyTorch's oneDNN is not affected. Unset OPENBLAS_CORETYPE (or set "
            "it to SkylakeX) before starting Python to compare with OpenBLAS's AVX-512 kernels.")


def machine_info(torch, rate: float) -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    threads: dict[str, Any] = {
        "openblas": _openblas_threads(),
        "torch": torch.get_num_threads() if torch else None,
        "torch_interop": torch.get_num_interop_threads() if torch else None,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                               "NUMBA_NUM_THREADS")},
    }
    if "numba" in sys.modules:
        with contextlib.suppress(Exception):
            threads["numba"] = sys.modules["numba"].get_num_threads()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "bptt": bptt.__version__,
        "threads": threads,
        "blas": blas_kernels(),
        "loadavg_at_start": loadavg(),
        "gemm_gflops": rate / 1e9,
        "gemm": f"median of {GEMM_N}x{GEMM_N} @ {GEMM_N}x{GEMM_N} float32 numpy matmul",
    }


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra`` set, for a child Python that imports these
    benchmark modules and this very bptt (both put in front of ``PYTHONPATH``)."""
    env = dict(os.environ)
    env.update(extra)
    paths = [str(Path(__file__).resolve().parent), str(Path(bptt.__file__).resolve().parents[1])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
