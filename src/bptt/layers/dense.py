"""Fully connected layer, applied over the last axis."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .. import init
from .._threads import one_blas_thread_beside_loops
from ..kernels.activations import ELEMENTWISE, activate, activation_backward
from .base import Layer


class Dense(Layer):
    """``y = act(x W + b)`` over the last axis of ``x`` (so a ``(B, T, F)`` input is handled per step:
    after a recurrent layer with ``return_sequences=True`` it gives per-step outputs ``(B, T, K)``,
    which :func:`bptt.train.fit` trains on per-step targets, docs/sequences.md).

    Args:
        in_features, out_features: sizes of the last axis in and out.
        activation: ``"identity"`` (default), ``"tanh"``, ``"relu"``, ``"sigmoid"`` or ``"softmax"``.
        dtype: float32 (default) or float64.  seed: for the random initialisation of W.
        kernel_initializer, bias_initializer: names for :func:`bptt.init.get_initializer`
            (default ``"glorot_uniform"`` for W and ``"zeros"`` for b); kept as attributes.

    Example::

        >>> import numpy as np
        >>> layer = Dense(3, 2, activation="tanh", seed=0)
        >>> layer.forward(np.ones((4, 3), np.float32)).shape
        (4, 2)
    """

    ACTIVATIONS = ELEMENTWISE + ("softmax",)

    def __init__(self, in_features: int, out_features: int, activation: str = "identity", *, dtype=np.float32, seed=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        super().__init__(dtype)
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Dense: {name} must be a positive integer; got {n!r}")
        self.activation = v.choice("Dense", "activation", activation, self.ACTIVATIONS)
        init_W = init._lookup("Dense", "kernel_initializer", kernel_initializer)
        init_b = init._lookup("Dense", "bias_initializer", bias_initializer)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        rng = np.random.default_rng(seed)
        W = init_W((in_features, out_features), rng, self.dtype)
        self._init_params(W=W, b=init_b((out_features,), rng, self.dtype))

    def forward(self, x, training: bool = True):
        x = self._input(x, 2, "(B, ..., in_features)")
        n_in = self.params["W"].shape[0]
        if x.shape[-1] != n_in:
            raise ValueError(f"Dense.forward: x must have last axis {n_in} (in_features); got shape {x.shape}")
        with one_blas_thread_beside_loops():
            z = x @ self.params["W"]
        y = activate(self.activation, z + self.params["b"], out=None)
        if training:
            self._cache = (x, y)
        return y

    def backward(self, dy):
        x, y = self._cache if self._cache is not None else (None, None)
        dy = self._grad_input(dy, y.shape if y is not None else ())
        dz = activation_backward(self.activation, dy, y)
        n_in, n_out = self.params["W"].shape
        with one_blas_thread_beside_loops():
            self.grads["W"][...] = x.reshape(-1, n_in).T @ dz.reshape(-1, n_out)
            self.grads["b"][...] = dz.reshape(-1, n_out).sum(axis=0)
            return dz @ self.params["W"].T
