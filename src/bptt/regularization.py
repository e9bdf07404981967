"""Weight regularisation (L1/L2, TMVA's ``Regularization=`` option) and gradient-norm clipping.

Both work on the ``params`` / ``grads`` dicts the optimizers take (``{name: array}``) and change
the gradients in place, so a training step reads::

    loss, dy = loss_fn.value_and_grad(model_output, targets)
    ...backward...                                  # fills grads
    loss += penalty_and_grad(params, grads, "L2", weight_decay)
    clip_grad_norm(grads, max_norm)
    optimizer.step(params, grads)

Regularisation applies to weight matrices only (arrays with ``ndim >= 2``: ``W``, ``U``), never
to biases, as in TMVA (``TMVA::DNN::TLayer`` regularises its weights, not its biases).

Example::

    >>> import numpy as np
    >>> params = {"0.W": np.array([[1.0, -2.0]]), "0.b": np.array([5.0])}
    >>> grads = {"0.W": np.zeros((1, 2)), "0.b": np.zeros(1)}
    >>> penalty_and_grad(params, grads, "L2", 0.1)     # 0.1/2 · (1 + 4)
    0.25
    >>> grads["0.W"], grads["0.b"]
    (array([[ 0.1, -0.2]]), array([0.]))
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["penalty_and_grad", "clip_grad_norm", "REGULARIZATIONS"]

#: Accepted values of ``kind`` (case-insensitive; ``None`` means no regularisation).
REGULARIZATIONS = (None, "none", "l1", "l2")


def _check_grads(fn: str, params: dict, grads: dict) -> None:
    for k, p in params.items():
        if k not in grads:
            raise ValueError(f"{fn}: grads has no entry for parameter {k!r}; got grads for {sorted(grads)}")
        g = grads[k]
        if not isinstance(g, np.ndarray) or g.shape != np.shape(p):
            got = g.shape if isinstance(g, np.ndarray) else type(g).__name__
            raise ValueError(f"{fn}: grads[{k!r}] must be an array of the parameter's shape {np.shape(p)}; got {got}")


def penalty_and_grad(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], kind: str | None, weight_decay: float) -> float:
    """Add the regularisation gradient into ``grads`` (in place) and return the penalty.

    Over the weight matrices w (parameters with ``ndim >= 2``; biases are left alone), with
    λ = ``weight_decay``:

        ``"L2"``:  penalty = λ/2 · Σ w²     grads[w] += λ · w
        ``"L1"``:  penalty = λ · Σ |w|      grads[w] += λ · sign(w)    (sign(0) = 0)
        ``None`` / ``"none"`` (or λ = 0): penalty 0, grads untouched.

    Scale conventions differ: TMVA's ``L2`` penalty (like Keras' ``l2(λ)``) is λ·Σw² with gradient
    2λ·w, so TMVA's ``WeightDecay=λ`` is ``weight_decay=2λ`` here; ours is the penalty whose
    gradient is PyTorch's ``weight_decay`` term λ·w. For ``L1`` all three agree.

    Args:
        params, grads: ``{name: array}`` with the same keys (grads may have more).
        kind: ``None``, ``"none"``, ``"L1"`` or ``"L2"`` (case-insensitive).
        weight_decay: λ ≥ 0, finite.

    Returns:
        The penalty (a Python float) to add to the loss.
    """
    fn = "penalty_and_grad"
    key = kind.lower() if isinstance(kind, str) else kind
    if key not in REGULARIZATIONS:
        raise ValueError(f"{fn}: kind must be one of None, 'none', 'L1', 'L2' (case-insensitive); got {kind!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float, np.integer, np.floating)) or not (
        math.isfinite(weight_decay) and weight_decay >= 0
    ):
        raise ValueError(f"{fn}: weight_decay must be a finite number >= 0; got {weight_decay!r}")
    wd = float(weight_decay)
    if key in (None, "none") or wd == 0.0:
        return 0.0
    _check_grads(fn, params, grads)
    terms = []
    for k, w in params.items():
        if np.ndim(w) < 2:
            continue  # biases (and any other vector) are not regularised
        g = grads[k]
        if key == "l2":
            terms.append(0.5 * wd * float(np.sum(np.square(w, dtype=np.float64))))
            g += wd * w
        else:
            terms.append(wd * float(np.sum(np.abs(w), dtype=np.float64)))
            g += wd * np.sign(w)
    return math.fsum(terms)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: with n = √(Σ_arrays Σ g²) (the norm over every
    gradient together), when c = max_norm / (n + 1e-6) < 1 every gradient is multiplied by c.
    Returns n, the norm before clipping. If n is not finite (a diverged step), the gradients are
    left as they are and the NaN or Inf is returned, so the caller can detect it (PyTorch would
    multiply them by 0 or NaN).

    Example::

        >>> import numpy as np
        >>> grads = {"W": np.array([[3.0, 4.0]]), "b": np.array([0.0])}
        >>> clip_grad_norm(grads, 1.0)
        5.0
        >>> np.round(grads["W"], 6)
        array([[0.6, 0.8]])
    """
    fn = "clip_grad_norm"
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer, np.floating)) or not (
        math.isfinite(max_norm) and max_norm > 0
    ):
        raise ValueError(f"{fn}: max_norm must be a positive finite number; got {max_norm!r}")
    for k, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise ValueError(f"{fn}: grads[{k!r}] must be a float array; got {getattr(g, 'dtype', type(g).__name__)}")
    norms = [float(np.linalg.norm(g.reshape(-1))) for g in grads.values()]
    total = float(np.linalg.norm(np.array(norms))) if norms else 0.0
    if not math.isfinite(total):
        return total
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total
