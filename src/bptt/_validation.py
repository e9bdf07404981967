"""Input checks shared by every public entry point.

Each failure raises ``ValueError`` with a message that names the function, the argument, what
was expected and what was received, and says what to do about it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NonFiniteError(ValueError):
    """An array holds NaN or Inf (a ``ValueError``, so callers that catch those still do)."""


def float_array(fn: str, name: str, value: Any, ndim: int, layout: str, finite: bool = True) -> np.ndarray:
    """``value`` as a finite float32/float64 array of rank ``ndim`` (``layout`` names its axes);
    ``finite`` False leaves the values to the caller to check."""
    if isinstance(value, np.ndarray):
        a = value
    else:
        try:
            a = np.asarray(value)
        except (TypeError, ValueError) as exc:  # ragged lists and the like
            raise ValueError(
                f"{fn}: {name} must be an array of shape {layout}; got {type(value).__name__} "
                f"that NumPy cannot turn into an array ({exc})"
            ) from None
    if a.dtype not in FLOAT_DTYPES:
        hint = f"; convert it with {name}.astype(np.float32) (or float64 for verification)"
        raise ValueError(
            f"{fn}: {name} must have dtype float32 or float64; got {a.dtype}"
            + (hint if a.dtype.kind in "biuf" else "")
        )
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be a {ndim}-D array of shape {layout}; got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{fn}: {name} must not have an empty axis; expected {layout}, got shape {a.shape}")
    if finite and not _all_finite(a):
        finite = np.isfinite(a)
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        what = "NaN" if np.isnan(a[where]) else "Inf"
        raise NonFiniteError(
            f"{fn}: {name} contains {what} at index {where}; every value must be finite "
            f"(check the data or the parameters for divergence)"
        )
    return a


def _all_finite(a: np.ndarray) -> bool:
    """Whether ``a`` holds no NaN and no Inf: by the compiled check of bptt.kernels.fast when that
    module is loaded (the fast path loads it; importing it here would load Numba for the reference
    path too) and ``a`` is C- or F-contiguous (the batch-major view of a feature-major array, as
    recurrent layers return), else by NumPy."""
    fast = sys.modules.get("bptt.kernels.fast")
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        a = a.T
    if fast is not None and a.flags.c_contiguous:
        return fast.all_finite(a)
    return bool(np.isfinite(a).all())


def expect_shape(fn: str, name: str, a: np.ndarray, expected: tuple[int, ...], why: str) -> None:
    """Raise unless ``a.shape == expected``; ``why`` says where the expected shape comes from."""
    if a.shape != tuple(expected):
        raise ValueError(f"{fn}: {name} must have shape {tuple(expected)} ({why}); got {a.shape}")


def same_dtype(fn: str, arrays: dict[str, np.ndarray]) -> np.dtype:
    """The one dtype all ``arrays`` share (the first named sets it)."""
    items = iter(arrays.items())
    first_name, first = next(items)
    for name, a in items:
        if a.dtype != first.dtype:
            raise ValueError(
                f"{fn}: {name} has dtype {a.dtype} but {first_name} has {first.dtype}; all arrays "
                f"must share one dtype: convert with .astype(np.{first.dtype})"
            )
    return first.dtype


def choice(fn: str, name: str, value: Any, allowed: tuple) -> Any:
    """Raise unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def sample_weight(fn: str, value: Any, n: int) -> np.ndarray | None:
    """``value`` as float64 per-event weights ``(n,)``, finite (any sign: TMVA's event weights may
    be negative; each caller says what it does with them), or None when ``value`` is None."""
    if value is None:
        return None
    try:
        w = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: sample_weight must be an array of shape ({n},); NumPy cannot convert it ({exc})") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: sample_weight must hold numbers, one weight per event; got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"{fn}: sample_weight must have one weight per event, shape ({n},); got shape {w.shape}")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{fn}: sample_weight contains {w[i]} at index {i}; every weight must be finite")
    return w
