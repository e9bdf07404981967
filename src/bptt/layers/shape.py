"""Layers that only change the shape: Flatten and Reshape (TMVA's ``RESHAPE|FLAT``)."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .base import Layer


class Flatten(Layer):
    """``(B, d1, d2, …)`` → ``(B, d1·d2·…)``; no parameters."""

    def forward(self, x, training: bool = True):
        x = self._input(x, 2, "(B, ...)")
        if training:
            self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        in_shape = self._cache or (0,)
        dy = self._grad_input(dy, (in_shape[0], int(np.prod(in_shape[1:]))))
        return dy.reshape(in_shape)


class Reshape(Layer):
    """``(B, …)`` → ``(B, *shape)``; no parameters. ``shape`` may hold one ``-1``."""

    def __init__(self, shape, dtype=np.float32):
        super().__init__(dtype)
        shape = tuple(int(s) for s in shape)
        if not shape or any(s == 0 or s < -1 for s in shape) or shape.count(-1) > 1:
            raise ValueError(f"Reshape: shape must be positive sizes with at most one -1; got {shape}")
        self.shape = shape

    def forward(self, x, training: bool = True):
        x = self._input(x, 2, "(B, ...)")
        n = int(np.prod(x.shape[1:]))
        known = int(np.prod([s for s in self.shape if s != -1]))
        if n % known or (-1 not in self.shape and n != known):
            raise ValueError(
                f"Reshape.forward: x of shape {x.shape} has {n} values per sample, which cannot be "
                f"reshaped to {self.shape}"
            )
        y = x.reshape((x.shape[0],) + self.shape)
        if training:
            self._cache = (x.shape, y.shape)
        return y

    def backward(self, dy):
        in_shape, out_shape = self._cache or ((), ())
        dy = self._grad_input(dy, out_shape)
        return dy.reshape(in_shape)
