"""The layer protocol shared by every layer."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from ..functional._arrays import _batch_major, _feature_major_view


class Layer:
    """A layer: ``forward(x, training)`` → y, then ``backward(dy)`` → dx.

    ``params`` maps parameter names to arrays; ``backward`` writes the matching gradients into
    ``grads`` (same names, same shapes; each call overwrites them). The cache that ``backward``
    needs is kept from the last ``forward(..., training=True)``.
    """

    #: Whether ``forward`` and ``backward`` take the batch-major view of a feature-major array
    #: (what the recurrent layers' fast path returns as outputs and ``dx``) as it is: the recurrent
    #: layers, whose fast path reads that layout directly. The other layers get it as a
    #: C-contiguous copy, one compiled pass (bptt.functional._arrays._batch_major): NumPy's
    #: products, reshapes and copies of such a view read one value per row of 4·T·B bytes (a copy
    #: of an LSTM's medium-row output: 1.1 ms, against 0.32 for the compiled pass;
    #: docs/performance.md, "Between layers").
    _feature_major_input = False

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        v.choice(type(self).__name__, "dtype", self.dtype, v.FLOAT_DTYPES)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None

    def _init_params(self, **params: np.ndarray) -> None:
        self.params = {k: np.ascontiguousarray(p, self.dtype) for k, p in params.items()}
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    __call__ = forward

    def astype(self, dtype) -> "Layer":
        """Convert parameters (and gradients, and any carried state) to ``dtype`` in place."""
        self.dtype = np.dtype(dtype)
        v.choice(type(self).__name__, "dtype", self.dtype, v.FLOAT_DTYPES)
        self._init_params(**self.params)
        self._cache = None
        return self

    # Carried state (recurrent layers with stateful=True); nothing for other layers.
    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def reset_states(self) -> None:
        pass

    def _input(self, x, ndim_min: int, layout: str) -> np.ndarray:
        """Validate a forward input: finite float array of rank ≥ ndim_min (in the layer's dtype, if
        it has parameters; layers without parameters pass either float dtype through)."""
        fn = f"{type(self).__name__}.forward"
        ndim = np.ndim(x)
        x = v.float_array(fn, "x", x, max(ndim, ndim_min), layout)
        if self.params and x.dtype != self.dtype:
            raise ValueError(
                f"{fn}: x has dtype {x.dtype} but the layer's parameters are {self.dtype}; convert "
                f"x with x.astype(np.{self.dtype}) or the layer with layer.astype(np.{x.dtype})"
            )
        return self._layout(x)

    def _layout(self, a: np.ndarray) -> np.ndarray:
        """``a`` as this layer computes on it (see :attr:`_feature_major_input`)."""
        if self._feature_major_input or _feature_major_view(a) is None:
            return a
        return _batch_major(a)

    def _grad_input(self, dy, shape) -> np.ndarray:
        """Validate ``dy`` for backward against the output shape of the last forward."""
        fn = f"{type(self).__name__}.backward"
        if self._cache is None:
            raise ValueError(f"{fn}: no forward pass to differentiate; call forward(x, training=True) first")
        dy = v.float_array(fn, "dy", dy, np.ndim(dy), str(tuple(shape)))
        v.expect_shape(fn, "dy", dy, shape, "the shape of the last forward output")
        if self.params and dy.dtype != self.dtype:
            raise ValueError(f"{fn}: dy has dtype {dy.dtype}; expected the layer's {self.dtype}")
        return self._layout(dy)
