"""Elementwise activations and their derivatives, written in place where possible.

Every derivative here is expressed through the activation's *output* ``y`` (not its input),
because that is what the forward pass keeps in its cache:

    sigmoid   y = 1 / (1 + e^-z)     dy/dz = y (1 - y)
    tanh      y = tanh z             dy/dz = 1 - y²
    relu      y = max(z, 0)          dy/dz = [y > 0]
    identity  y = z                  dy/dz = 1

The softmax (over the last axis) has a full Jacobian; its vector-Jacobian product is
``dz = y ⊙ (dy − Σ_k dy_k y_k)``.
"""

from __future__ import annotations

import numpy as np

#: Elementwise activations every recurrent cell and dense layer understands.
ELEMENTWISE = ("tanh", "sigmoid", "relu", "identity")


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(z) = ½ (1 + tanh(z/2)), which never overflows for large |z|.

    It equals 1/(1+e^-z) to within an absolute error of about one unit in the last place of 1
    (≈ 6e-8 in float32, 1e-16 in float64); far in the negative tail, where σ is smaller than
    that, it returns 0 (float32: z ≲ −17; float64: z ≲ −37) instead of the tiny exact value."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def activate(name: str, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Apply activation ``name`` to ``z`` (into ``out`` if given, which may be ``z`` itself)."""
    if name == "tanh":
        return np.tanh(z, out=out)
    if name == "sigmoid":
        return sigmoid(z, out=out)
    if name == "relu":
        return np.maximum(z, 0.0, out=out)
    if name == "identity":
        if out is None:
            return z.copy()
        if out is not z:
            out[...] = z
        return out
    if name == "softmax":
        shifted = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=-1, keepdims=True)
        return shifted
    raise ValueError(f"activation must be one of {ELEMENTWISE + ('softmax',)}; got {name!r}")


def activation_backward(name: str, dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz given dL/dy and the activation's output y (a new array)."""
    if name == "tanh":
        return dy * (1.0 - y * y)
    if name == "sigmoid":
        return dy * y * (1.0 - y)
    if name == "relu":
        return dy * (y > 0)
    if name == "identity":
        return dy.copy()
    if name == "softmax":
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    raise ValueError(f"activation must be one of {ELEMENTWISE + ('softmax',)}; got {name!r}")
