"""Dropout: inverted dropout in training, the identity at inference."""

from __future__ import annotations

import copy
import math

import numpy as np

from .base import Layer


class Dropout(Layer):
    """Inverted dropout (Srivastava et al. 2014), as ``torch.nn.Dropout``; no parameters.

    In training each element is kept with probability 1 − rate and scaled so the expectation is
    unchanged; at inference (``training=False``) the layer is the identity:

        m ~ Bernoulli(1 − rate) elementwise;   y = x ⊙ m / (1 − rate);   dx = dy ⊙ m / (1 − rate)

    The mask of the last training forward is kept (``mask``: the 0/1 mask as the input's dtype)
    for ``backward``. The layer draws its masks from its own ``numpy.random.Generator(PCG64(seed))``
    (``seed=None``: fresh OS entropy); :meth:`get_rng_state` / :meth:`set_rng_state` save and restore
    that generator as a JSON-serialisable dict, so a checkpointed run resumes with the same masks.
    Works on inputs of any rank (for ``(B, T, F)`` sequences each step has its own mask) and passes
    float32 and float64 through.

    Args:
        rate: the probability of dropping an element, in [0, 1) (0: the identity in training too).
            TMVA's ``DropConfig`` gives the probability of *keeping* a node, i.e. 1 − rate.
        seed: seed of the layer's generator.

    Example::

        >>> import numpy as np
        >>> drop = Dropout(0.5, seed=0)
        >>> y = drop.forward(np.ones((2, 4)))          # kept elements are scaled by 1/(1 − 0.5)
        >>> y
        array([[2., 0., 0., 0.],
               [2., 2., 2., 2.]])
        >>> bool((drop.backward(np.ones((2, 4))) == y).all()), drop.forward(np.ones(3), training=False)
        (True, array([1., 1., 1.]))
    """

    def __init__(self, rate: float, *, seed=None):
        super().__init__()
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not (
            math.isfinite(rate) and 0.0 <= rate < 1.0
        ):
            raise ValueError(f"Dropout: rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self.mask: np.ndarray | None = None

    def forward(self, x, training: bool = True):
        x = self._input(x, 1, "(B, ...)")
        if not training:
            return x
        if self.rate == 0.0:
            scaled = np.ones_like(x)
            self.mask = scaled
        else:
            keep = self._rng.random(x.shape) >= self.rate  # P(keep) = 1 − rate
            self.mask = keep.astype(x.dtype)
            scaled = self.mask * x.dtype.type(1.0 / (1.0 - self.rate))
        self._cache = scaled
        return x * scaled

    def backward(self, dy):
        scaled = self._cache
        dy = self._grad_input(dy, scaled.shape if scaled is not None else ())
        if dy.dtype != scaled.dtype:
            raise ValueError(
                f"Dropout.backward: dy has dtype {dy.dtype} but the last forward input was {scaled.dtype}; "
                f"convert dy with dy.astype(np.{scaled.dtype})"
            )
        return dy * scaled

    def get_rng_state(self) -> dict:
        """The generator's state (``bit_generator.state``: plain dicts, strings and ints; JSON-safe)."""
        return copy.deepcopy(self._rng.bit_generator.state)

    def set_rng_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_rng_state`; the next masks repeat those drawn after it."""
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            got = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"Dropout.set_rng_state: state must be a PCG64 state dict from get_rng_state(); got {got!r}"
            )
        try:
            self._rng.bit_generator.state = copy.deepcopy(state)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"Dropout.set_rng_state: state is not a valid PCG64 state ({exc})") from None
