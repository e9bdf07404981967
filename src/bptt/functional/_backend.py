"""Which backend runs a call: the compiled kernels (bptt.kernels.fast, loaded on first use) or
the plain NumPy reference loops (bptt.kernels.reference)."""

from __future__ import annotations

import functools
import importlib

from .. import _validation as v
from ..settings import BACKENDS, settings

_fast_kernels = None


@functools.cache
def _kernel(name: str):
    """The module bptt.kernels.<name> (microkernel, blas, sync: Numba's, loaded on first use), in
    0.1 µs where an ``import`` statement in a function takes 0.7."""
    return importlib.import_module(f"bptt.kernels.{name}")


def _fast():
    """The compiled kernels (imported on first use, so that ``import bptt`` stays light)."""
    global _fast_kernels
    if _fast_kernels is None:
        from .._memory import keep_freed_memory
        from ..kernels import fast

        keep_freed_memory()  # see bptt._memory: 40 % of a mid-size training step was page faults
        _fast_kernels = fast
    return _fast_kernels


def _backend(fn: str, backend) -> str:
    if backend is None:
        return default_backend()
    return v.choice(fn, "backend", backend, BACKENDS)


def default_backend() -> str:
    """``"fast"`` when Numba is importable, else ``"reference"``; ``settings.backend``
    (``BPTT_BACKEND``) overrides."""
    if settings.backend:
        return settings.backend
    try:
        _fast()
    except ImportError:  # pragma: no cover - numba is a dependency; this is the last resort
        return "reference"
    return "fast"
