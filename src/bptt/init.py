"""Weight initialisers. Each takes a shape, a ``numpy.random.Generator`` and a dtype."""

from __future__ import annotations

import numpy as np


def zeros(shape, rng=None, dtype=np.float32) -> np.ndarray:
    return np.zeros(shape, dtype)


def glorot_uniform(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(−a, a) with a = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); fan_in = shape[0]."""
    fan_in, fan_out = shape[0], shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """A matrix with orthonormal rows or columns (Saxe et al. 2014), from the QR of a Gaussian."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique, hence uniformly distributed
    return (q if rows >= cols else q.T).astype(dtype)


def recurrent_orthogonal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """For a state weight ``U (H, G·H)``: each gate's ``(H, H)`` block orthogonal on its own."""
    H, GH = shape
    return np.concatenate([orthogonal((H, H), rng, dtype) for _ in range(GH // H)], axis=1)
