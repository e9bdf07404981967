"""Sequence arrays in memory and in ``.npz`` files: reading, writing, standardising, splitting, batching.

A data set is a pair ``(X, y)``: ``X`` float of shape ``(n, T, F)`` (n sequences of T time steps
with F features, batch-major as everywhere in bptt) and ``y`` of shape ``(n,)`` (1 = signal,
0 = background for classification).

Example::

    >>> import numpy as np
    >>> from bptt.data.arrays import Standardizer, iterate_batches, train_test_split
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(3.0, 2.0, size=(100, 5, 4)).astype(np.float32)
    >>> y = (np.arange(100) % 2).astype(np.float32)
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.2, seed=0)
    >>> X_tr.shape, X_te.shape, float(y_te.mean())
    ((80, 5, 4), (20, 5, 4), 0.5)
    >>> scaler = Standardizer().fit(X_tr)
    >>> Z = scaler.transform(X_tr)
    >>> bool(abs(Z.mean()) < 1e-5), bool(abs(Z.std() - 1) < 1e-4)
    (True, True)
    >>> [len(idx) for idx in iterate_batches(10, batch_size=4)]
    [4, 4, 2]
"""

from __future__ import annotations

import numbers
import os
import zipfile
from collections.abc import Iterator

import numpy as np

from .. import _validation as v
from .._files import atomic_write
from .ragged import check_lengths, pad_ragged

__all__ = [
    "pad_ragged",
    "read_npz",
    "write_npz",
    "check_xy",
    "Standardizer",
    "train_test_split",
    "iterate_batches",
]


def check_xy(fn: str, X, y, per_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate a data set: ``X`` finite float ``(n, T, F)``, ``y`` finite ``(n,)`` with the same n
    (``per_step``: also ``(n, T)`` or ``(n, T, K)``, one target per step).

    ``y`` is returned as float32 (integer and boolean labels are converted); ``X`` keeps its dtype.
    """
    X = v.float_array(fn, "X", X, 3, "(n, T, F)")
    y_arr = np.asarray(y)
    if y_arr.dtype.kind in "biu":
        y_arr = y_arr.astype(np.float32)
    if y_arr.dtype.kind != "f":
        raise ValueError(f"{fn}: y must hold numbers (labels 0/1); got dtype {y_arr.dtype}")
    if per_step and y_arr.ndim in (2, 3):
        if y_arr.shape[:2] != X.shape[:2]:
            raise ValueError(f"{fn}: per-step targets y must have shape (n, T) = {X.shape[:2]} (or (n, T, K)) like "
                             f"X's first two axes; got shape {y_arr.shape}")
    elif y_arr.ndim != 1:
        raise ValueError(f"{fn}: y must be a 1-D array of shape (n,)"
                         + (" or per-step targets (n, T) / (n, T, K)" if per_step else "") + f"; got shape {y_arr.shape}")
    if len(y_arr) != len(X):
        raise ValueError(
            f"{fn}: y must have one label per sequence of X, shape ({len(X)},); got shape {y_arr.shape}"
        )
    if not np.isfinite(y_arr).all():
        i = int(np.argmax(~np.isfinite(y_arr)))
        raise ValueError(f"{fn}: y contains {y_arr[i]} at index {i}; every label must be finite")
    return X, y_arr.astype(np.float32, copy=False)


# ───────────────────────────────────────────────────────────────────────────────── npz files


def read_npz(path: str | os.PathLike, *, with_lengths: bool = False):
    """Read ``(X, y)`` from an ``.npz`` file with arrays ``x`` (or ``X``) and ``y``.

    ``X`` must be float32/float64 of shape ``(n, T, F)`` (integer ``X`` is converted to float32);
    ``y`` is returned as float32 ``(n,)``. Pickled objects are never loaded.

    Ragged sequences: the file may hold an array ``lengths`` (n,) (``1 <= lengths[i] <= T``, the
    steps after are padding) and then per-step targets ``y`` of shape ``(n, T)`` or ``(n, T, K)``;
    read it with ``with_lengths=True``, which returns ``(X, y, lengths)`` (``lengths`` None when the
    file has none). A file with ``lengths`` read without ``with_lengths`` is refused (the lengths
    would be lost).
    """
    fn = "read_npz"
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{fn}: no such file: {path!r}; check the path (it is relative to {os.getcwd()!r})")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{fn}: {path!r} is not a NumPy .npz file ({type(exc).__name__}: {exc}); write one with "
            f"bptt.data.write_npz(path, X, y) or numpy.savez(path, x=X, y=y)"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{fn}: {path!r} holds a single array (.npy), not an .npz archive; save X and y with "
            f"numpy.savez(path, x=X, y=y)"
        )
    with npz:
        keys = list(npz.keys())
        x_keys = [k for k in ("x", "X") if k in keys]
        if len(x_keys) != 1 or "y" not in keys:
            if len(x_keys) == 2:
                problem = "both 'x' and 'X'"
            elif not x_keys:
                problem = "no array named 'x' (or 'X')"
            else:
                problem = "no array named 'y'"
            raise ValueError(
                f"{fn}: {path!r} must hold arrays 'x' (or 'X') of shape (n, T, F) and 'y' of shape (n,); "
                f"it has {problem} (arrays present: {', '.join(map(repr, keys)) or 'none'})"
            )
        try:
            X = npz[x_keys[0]]
            y = npz["y"]
            lengths = npz["lengths"] if "lengths" in keys else None
        except ValueError as exc:  # object arrays need pickle
            raise ValueError(f"{fn}: {path!r}: cannot load without pickle ({exc}); store plain numeric arrays") from None
    if lengths is not None and not with_lengths:
        raise ValueError(f"{fn}: {path!r} holds ragged sequences (an array 'lengths'); read it with "
                         f"read_npz(path, with_lengths=True), which returns (X, y, lengths)")
    if X.dtype.kind in "biu":
        X = X.astype(np.float32)
    X, y = check_xy(f"{fn}({path!r})", X, y, per_step=lengths is not None)
    if not with_lengths:
        return X, y
    if lengths is not None:
        lengths = check_lengths(f"{fn}({path!r})", lengths, len(X), X.shape[1])
    return X, y, lengths


def write_npz(path: str | os.PathLike, X, y, compressed: bool = True, *, lengths=None) -> str:
    """Write ``X (n, T, F)`` and ``y (n,)`` as arrays ``x`` and ``y`` of an ``.npz`` file, atomically;
    with ``lengths`` (ragged sequences: int ``(n,)``, ``1 <= lengths[i] <= T``) also the array
    ``lengths``, and ``y`` may then be per-step targets ``(n, T)`` or ``(n, T, K)``.

    Returns ``path`` as a string. ``np.savez`` would append ``.npz`` to a name without it; this
    writes exactly ``path``.
    """
    X, y = check_xy("write_npz", X, y, per_step=lengths is not None)
    arrays = {"x": X, "y": y}
    if lengths is not None:
        arrays["lengths"] = check_lengths("write_npz", lengths, len(X), X.shape[1])
    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: save(f, **arrays))


# ─────────────────────────────────────────────────────────────────────────── standardisation


def _ndim(X) -> int:
    """2 for ``(n, F)`` rows, else 3 (what the checks then ask for)."""
    return 2 if np.ndim(X) == 2 else 3


class Standardizer:
    """Per-feature standardisation ``(x - mean) / std`` with statistics over samples and time steps.

    ``fit`` computes, for each of the F features, the mean and standard deviation over all ``n·T``
    values of the training data (``(n, T, F)`` sequences, or ``(n, F)`` rows for dense networks) (a feature with zero spread gets std 1, so it maps to 0).
    ``transform`` keeps the input's dtype. ``to_dict``/``from_dict`` round-trip through JSON.

    >>> import json, numpy as np
    >>> X = np.array([[[1.0, 5.0], [3.0, 5.0]]])
    >>> s = Standardizer().fit(X)
    >>> s.mean_.tolist(), s.std_.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    >>> Standardizer.from_dict(json.loads(json.dumps(s.to_dict()))).transform(X)[0].tolist()
    [[-1.0, 0.0], [1.0, 0.0]]
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    @property
    def n_features(self) -> int | None:
        return None if self.mean_ is None else len(self.mean_)

    def fit(self, X) -> Standardizer:
        """Compute per-feature mean and std from ``X (n, T, F)`` (or ``(n, F)``); return self."""
        X = v.float_array("Standardizer.fit", "X", X, _ndim(X), "(n, T, F) or (n, F)")
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        std[std == 0] = 1.0
        self.mean_, self.std_ = mean, std
        return self

    def transform(self, X) -> np.ndarray:
        """Standardise ``X (n, T, F)`` with the fitted statistics; the result has ``X``'s dtype."""
        fn = "Standardizer.transform"
        if self.mean_ is None:
            raise ValueError(f"{fn}: this Standardizer is not fitted; call fit(X_train) (or from_dict) first")
        X = v.float_array(fn, "X", X, _ndim(X), "(n, T, F) or (n, F)")
        if X.shape[-1] != self.n_features:
            raise ValueError(
                f"{fn}: X must have {self.n_features} features (the number seen in fit), shape "
                f"(n, T, {self.n_features}) or (n, {self.n_features}); got shape {X.shape}"
            )
        return ((X - self.mean_) / self.std_).astype(X.dtype, copy=False)

    def fit_transform(self, X) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> np.ndarray:
        """Undo :meth:`transform`."""
        fn = "Standardizer.inverse_transform"
        if self.mean_ is None:
            raise ValueError(f"{fn}: this Standardizer is not fitted; call fit(X_train) (or from_dict) first")
        Z = v.float_array(fn, "Z", Z, _ndim(Z), "(n, T, F) or (n, F)")
        if Z.shape[-1] != self.n_features:
            raise ValueError(f"{fn}: Z must have {self.n_features} features; got shape {Z.shape}")
        return (Z * self.std_ + self.mean_).astype(Z.dtype, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` as plain Python floats (JSON-serialisable)."""
        if self.mean_ is None:
            raise ValueError("Standardizer.to_dict: this Standardizer is not fitted; call fit(X_train) first")
        return {"mean": [float(m) for m in self.mean_], "std": [float(s) for s in self.std_]}

    @classmethod
    def from_dict(cls, d) -> Standardizer:
        """Rebuild a fitted Standardizer from :meth:`to_dict` output."""
        fn = "Standardizer.from_dict"
        if not isinstance(d, dict) or set(d) != {"mean", "std"}:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{fn}: d must be a dict with exactly the keys 'mean' and 'std'; got {got}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{fn}: 'mean' and 'std' must be lists of numbers; got {d!r}") from None
        if mean.ndim != 1 or std.shape != mean.shape or len(mean) == 0:
            raise ValueError(
                f"{fn}: 'mean' and 'std' must be non-empty lists of equal length; got lengths "
                f"{mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError(f"{fn}: 'mean' must be finite and 'std' finite and positive; got {d!r}")
        s = cls()
        s.mean_, s.std_ = mean, std
        return s

    def __repr__(self) -> str:
        state = "unfitted" if self.mean_ is None else f"n_features={self.n_features}"
        return f"Standardizer({state})"


# ─────────────────────────────────────────────────────────────────────── splitting, batching


def _rng(fn: str, name: str, seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"{fn}: {name} must be a non-negative integer, a numpy Generator or None; got {seed!r}")


def train_test_split(X, y, test_fraction: float = 0.2, seed=0, stratify: bool = True):
    """Split ``(X, y)`` into shuffled training and test parts.

    Args:
        X: ``(n, T, F)``.  y: ``(n,)``.
        test_fraction: fraction of the sequences that go to the test part, in (0, 1).
        seed: int (reproducible), numpy Generator, or None.
        stratify: keep each label's share the same in both parts (each label's count is split
            as ``round(test_fraction · count)``).

    Returns:
        ``X_train, X_test, y_train, y_test``.
    """
    fn = "train_test_split"
    X, y = check_xy(fn, X, y)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"{fn}: test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}")
    rng = _rng(fn, "seed", seed)
    n = len(y)
    if stratify:
        test_parts = []
        train_parts = []
        for label in np.unique(y):
            idx = np.flatnonzero(y == label)
            idx = idx[rng.permutation(len(idx))]
            k = int(round(test_fraction * len(idx)))
            test_parts.append(idx[:k])
            train_parts.append(idx[k:])
        test = np.concatenate(test_parts)
        train = np.concatenate(train_parts)
    else:
        perm = rng.permutation(n)
        k = int(round(test_fraction * n))
        test, train = perm[:k], perm[k:]
    if len(test) == 0 or len(train) == 0:
        raise ValueError(
            f"{fn}: test_fraction={test_fraction} of {n} sequences leaves an empty "
            f"{'test' if len(test) == 0 else 'training'} part; use more data or a test_fraction "
            f"closer to 0.5"
        )
    test = test[rng.permutation(len(test))]
    train = train[rng.permutation(len(train))]
    return X[train], X[test], y[train], y[test]


def iterate_batches(n: int, batch_size: int, rng=None, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Yield index arrays that cover ``range(n)`` in batches of ``batch_size``.

    In order when ``rng`` is None; shuffled (a fresh permutation per call) when ``rng`` is a numpy
    Generator or an int seed. The last batch is shorter unless ``drop_last`` is true, in which case
    it is left out.

    >>> [b.tolist() for b in iterate_batches(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in iterate_batches(5, 2, drop_last=True)]
    [[0, 1], [2, 3]]
    """
    fn = "iterate_batches"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{fn}: n must be a non-negative integer (number of samples); got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be an integer >= 1; got {batch_size!r}")
    order = np.arange(n) if rng is None else _rng(fn, "rng", rng).permutation(n)
    stop = n - n % batch_size if drop_last else n
    # a plain function returning a generator, so that bad arguments raise at the call
    return (order[start : start + batch_size] for start in range(0, stop, batch_size))
