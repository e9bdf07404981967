"""Loss functions: value and gradient with respect to the network's outputs, mean reduction.

Each loss has ``value_and_grad(outputs, targets) -> (float, ndarray)``, where the gradient has
the shape and dtype of ``outputs``; calling the loss returns the value only. The values equal
PyTorch's losses with their default ``reduction="mean"``:

=========================  ==================================================================
class (``make_loss`` name)  L for outputs x and targets y, N elements (B rows for softmax_ce)
=========================  ==================================================================
``BinaryCrossEntropy``      mean of  max(x, 0) − x·y + log(1 + e^−|x|)      (x are logits)
(``"bce"``)                 dL/dx = (σ(x) − y) / N          = ``nn.BCEWithLogitsLoss``
``SoftmaxCrossEntropy``     (1/B) Σ_b −Σ_c y_bc · log softmax(x_b)_c        (x are logits)
(``"softmax_ce"``)          dL/dx = (softmax(x)·Σ_c y_c − y) / B   = ``nn.CrossEntropyLoss``
``MeanSquaredError``        mean of (x − y)²
(``"mse"``)                 dL/dx = 2 (x − y) / N           = ``nn.MSELoss``
=========================  ==================================================================

Both cross-entropies work on logits, never on probabilities, so they stay finite and exact for
any logit (log(1 + e^−|x|) and the log-sum-exp with the maximum subtracted cannot overflow); use
:func:`sigmoid_probability` / :func:`softmax_probability` to turn logits into probabilities.

Example::

    >>> import numpy as np
    >>> loss = make_loss("binary_crossentropy")
    >>> value, grad = loss.value_and_grad(np.array([0.0, 50.0]), np.array([1.0, 1.0]))
    >>> round(value, 6), grad                     # (log 2 + ~0) / 2;  (σ(x) − y) / 2
    (0.346574, array([-0.25,  0.  ]))
"""

from __future__ import annotations

import numpy as np

from . import _validation as v

__all__ = [
    "Loss",
    "BinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "MeanSquaredError",
    "make_loss",
    "sigmoid_probability",
    "softmax_probability",
    "LOSSES",
]


def sigmoid_probability(logits) -> np.ndarray:
    """σ(x) = 1 / (1 + e^−x), computed without overflow and accurate in the tails.

    For x ≥ 0 it evaluates 1 / (1 + e^−x); for x < 0, e^x / (1 + e^x) — so σ(−50) ≈ 1.9e-22 keeps
    its relative precision instead of rounding to 0. Float inputs keep their dtype.

    Example::

        >>> sigmoid_probability(np.array([-800.0, 0.0, 800.0]))
        array([0. , 0.5, 1. ])
    """
    x = v.float_array("sigmoid_probability", "logits", logits, max(np.ndim(logits), 1), "(B, ...)")
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def softmax_probability(logits) -> np.ndarray:
    """softmax over the last axis, ``e^(x − max x) / Σ e^(x − max x)`` (no overflow); keeps the dtype.

    Example::

        >>> softmax_probability(np.array([[0.0, 0.0], [1000.0, 0.0]]))
        array([[0.5, 0.5],
               [1. , 0. ]])
    """
    x = v.float_array("softmax_probability", "logits", logits, max(np.ndim(logits), 1), "(B, ..., C)")
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    """Base class: ``value_and_grad(outputs, targets)`` → (mean loss, dL/d outputs); ``loss(o, t)``
    is the value alone. ``name`` is the canonical name for :func:`make_loss`."""

    name: str = ""

    def value_and_grad(self, outputs, targets) -> tuple[float, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def __call__(self, outputs, targets) -> float:
        return self.value_and_grad(outputs, targets)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # --- shared checks ---------------------------------------------------------------------
    def _outputs(self, outputs, layout: str, ndim: int | None = None) -> np.ndarray:
        fn = f"{type(self).__name__}"
        return v.float_array(fn, "outputs", outputs, np.ndim(outputs) if ndim is None else ndim, layout)

    def _float_targets(self, targets, x: np.ndarray) -> np.ndarray:
        """Real-valued targets of the outputs' shape, finite, converted to the outputs' dtype."""
        fn = type(self).__name__
        t = np.asarray(targets)
        if t.dtype.kind not in "biuf":
            raise ValueError(f"{fn}: targets must be a numeric array; got dtype {t.dtype}")
        if t.shape != x.shape:
            raise ValueError(
                f"{fn}: targets must have the shape of outputs {x.shape}; got {t.shape}"
                + ("; reshape them with targets.reshape(outputs.shape)" if t.size == x.size else "")
            )
        t = t.astype(x.dtype, copy=False)
        bad = ~np.isfinite(t)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{fn}: targets contain {t[where]} at index {where}; every target must be finite")
        return t

    def _probability_targets(self, t: np.ndarray) -> None:
        bad = (t < 0) | (t > 1)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{type(self).__name__}: targets must be probabilities in [0, 1]; got {t[where]} at index {where}"
            )


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits (= ``torch.nn.BCEWithLogitsLoss()``), mean over all elements.

        ℓ(x, y) = −y log σ(x) − (1−y) log(1 − σ(x)) = max(x, 0) − x·y + log(1 + e^−|x|)
        L = mean ℓ        dL/dx = (σ(x) − y) / N

    ``outputs`` are logits of shape ``(B,)`` or ``(B, 1)`` (any shape works: every element is one
    binary prediction); ``targets`` have the same shape, values in [0, 1] (0/1 labels or soft
    targets; bool and int labels are accepted).

    Example::

        >>> import numpy as np
        >>> bce = BinaryCrossEntropy()
        >>> round(bce(np.array([[2.0], [-1.0]]), np.array([[1.0], [0.0]])), 6)
        0.220095
    """

    name = "bce"

    def value_and_grad(self, outputs, targets):
        x = self._outputs(outputs, "(B,) or (B, 1) logits")
        t = self._float_targets(targets, x)
        self._probability_targets(t)
        n = x.size
        e = np.exp(-np.abs(x))  # e^−|x| in (0, 1]
        value = float(np.mean(np.maximum(x, 0) - x * t + np.log1p(e)))
        sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        grad = ((sig - t) / n).astype(x.dtype, copy=False)
        return value, grad


class SoftmaxCrossEntropy(Loss):
    """Categorical cross-entropy on logits (= ``torch.nn.CrossEntropyLoss()``), mean over the batch.

        log p_bc = x_bc − log Σ_k e^x_bk                    (log-softmax, max subtracted first)
        class indices k_b:         L = −(1/B) Σ_b log p_b,k_b
        class probabilities y_bc:  L = −(1/B) Σ_b Σ_c y_bc log p_bc
        dL/dx_bc = (p_bc · Σ_k y_bk − y_bc) / B             (= (p − onehot(k)) / B for indices)

    ``outputs`` are logits ``(B, C)``; ``targets`` are either integer class indices ``(B,)`` in
    [0, C) (whole-number floats are accepted too) or class probabilities ``(B, C)`` in [0, 1].

    Example::

        >>> import numpy as np
        >>> ce = SoftmaxCrossEntropy()
        >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> value, grad = ce.value_and_grad(logits, np.array([0, 2]))
        >>> round(value, 6), grad.shape            # (log(1 + 2e⁻²) + log 3) / 2
        (0.669079, (2, 3))
    """

    name = "softmax_ce"

    def value_and_grad(self, outputs, targets):
        fn = type(self).__name__
        x = self._outputs(outputs, "(B, C) logits", ndim=2)
        B, C = x.shape
        logp = _log_softmax(x)
        p = np.exp(logp)
        t_arr = np.asarray(targets)
        if t_arr.ndim == 1:
            k = self._class_indices(t_arr, B, C)
            rows = np.arange(B)
            value = float(-np.mean(logp[rows, k]))
            grad = p
            grad[rows, k] -= 1.0
            grad /= B
        else:
            t = self._float_targets(targets, x)
            self._probability_targets(t)
            value = float(-np.sum(t * logp) / B)
            grad = (p * t.sum(axis=1, keepdims=True) - t) / B
        return value, grad.astype(x.dtype, copy=False)

    def _class_indices(self, t: np.ndarray, B: int, C: int) -> np.ndarray:
        fn = type(self).__name__
        if t.shape != (B,):
            raise ValueError(
                f"{fn}: class-index targets must have shape (B,) = ({B},) for outputs of shape ({B}, {C}); got {t.shape}"
            )
        if t.dtype.kind == "f":
            if not (np.isfinite(t).all() and (t == np.round(t)).all()):
                raise ValueError(
                    f"{fn}: class-index targets must be whole numbers; got non-integer floats such as "
                    f"{t[~(np.isfinite(t) & (t == np.round(t)))][0].item()} (pass probabilities as a (B, C) array)"
                )
        elif t.dtype.kind not in "iu":
            raise ValueError(f"{fn}: class-index targets must be integers; got dtype {t.dtype}")
        bad = (t < 0) | (t >= C)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{fn}: class index out of range: targets[{i}] = {t[i].item()}; expected 0 <= index < {C} (C)")
        return t.astype(np.intp)


class MeanSquaredError(Loss):
    """Mean squared error (= ``torch.nn.MSELoss()``): L = mean (x − y)², dL/dx = 2 (x − y) / N.

    ``outputs`` and ``targets`` have the same shape (any rank); N is their number of elements.

    Example::

        >>> import numpy as np
        >>> MeanSquaredError().value_and_grad(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
        (2.5, array([1., 2.]))
    """

    name = "mse"

    def value_and_grad(self, outputs, targets):
        x = self._outputs(outputs, "outputs of any shape")
        t = self._float_targets(targets, x)
        diff = x - t
        value = float(np.mean(diff * diff))
        grad = (diff * (2.0 / x.size)).astype(x.dtype, copy=False)
        return value, grad


#: Loss names and aliases (for :func:`make_loss`) → classes.
LOSSES: dict[str, type[Loss]] = {
    "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "cross_entropy_binary": BinaryCrossEntropy,
    "softmax_ce": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
    "mse": MeanSquaredError,
}


def make_loss(name: str) -> Loss:
    """The loss called ``name`` (case-insensitive): ``"bce"`` (aliases ``"binary_crossentropy"``,
    ``"cross_entropy_binary"``), ``"softmax_ce"`` (``"categorical_crossentropy"``,
    ``"cross_entropy"``) or ``"mse"``.

    Example::

        >>> make_loss("Cross_Entropy").name
        'softmax_ce'
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in LOSSES:
        raise ValueError(f"make_loss: name must be one of {', '.join(LOSSES)} (case-insensitive); got {name!r}")
    return LOSSES[key]()
