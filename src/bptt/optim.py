"""Optimizers. Each updates parameter arrays in place from gradient arrays of the same names."""

from __future__ import annotations

import numpy as np


class SGD:
    """Plain stochastic gradient descent: ``p ← p − lr · g``.

    Example::

        >>> import numpy as np
        >>> p = {"W": np.array([1.0, 2.0])}
        >>> SGD(lr=0.1).step(p, {"W": np.array([10.0, -10.0])})
        >>> p["W"]
        array([0., 3.])
    """

    def __init__(self, lr: float = 0.01):
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"SGD: lr must be a positive finite number; got {lr!r}")
        self.lr = float(lr)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            p -= self.lr * grads[name]
