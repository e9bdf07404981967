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

Event weights (TMVA's per-event weights, scikit-learn's ``sample_weight``): with
``sample_weight=w`` of shape ``(B,)`` the value is ``Σ_b w_b ℓ_b / W``, ℓ_b being row b's loss (the
mean over its elements; for ``softmax_ce`` the row's cross-entropy), and ``W = Σ_b w_b`` by
default, the weighted mean (as ``sklearn.metrics.log_loss`` and ``mean_squared_error`` with
``sample_weight``): weights 2 count an event twice, weights 1 give the unweighted value. Weights may
be negative (TMVA's NLO events); the default W must be positive. ``weight_total=W`` sets the divisor
instead: :func:`bptt.train.fit` passes each batch's share of the training set's total weight, so
that the batches' losses add up to the training set's weighted mean.

Per-step outputs ``(B, T, K)`` of sequences with lengths: :func:`bptt.sequences.loss_and_grad`
takes the real steps as rows ``(N, K)``, each with its sequence's weight, and calls these losses on
them (the mean over the real steps; gradient 0 at padded steps).

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
    """Base class: ``value_and_grad(outputs, targets, sample_weight=None, *, weight_total=None)`` →
    (mean loss, dL/d outputs); ``loss(o, t)`` is the value alone. ``name`` is the canonical name
    for :func:`make_loss`. Weights: see the module's docstring."""

    name: str = ""

    def value_and_grad(self, outputs, targets, sample_weight=None, *, weight_total=None) -> tuple[float, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def __call__(self, outputs, targets, sample_weight=None, *, weight_total=None) -> float:
        return self.value_and_grad(outputs, targets, sample_weight, weight_total=weight_total)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # --- shared checks ---------------------------------------------------------------------
    def _row_factors(self, sample_weight, weight_total, x: np.ndarray) -> np.ndarray | None:
        """None without weights; else each row's factor ``w_b / W`` (float64, shape ``(B,)``), W
        being ``weight_total`` or, by default, ``Σ w``: the loss is ``Σ_b w_b ℓ_b / W``."""
        fn = type(self).__name__
        if sample_weight is None:
            if weight_total is not None:
                raise ValueError(f"{fn}: weight_total={weight_total!r} needs sample_weight (it divides Σ w·loss); pass both or neither")
            return None
        if x.ndim == 0:
            raise ValueError(f"{fn}: sample_weight needs outputs with a batch axis (B, ...); got a 0-D output")
        w = v.sample_weight(fn, sample_weight, x.shape[0])
        if weight_total is None:
            total = float(w.sum())
            if not total > 0:
                raise ValueError(
                    f"{fn}: sample_weight sums to {total:g}; a weighted mean needs a positive sum of weights "
                    f"(give weight_total, the positive number that divides Σ w·loss, for batches of mixed signs)"
                )
        else:
            ok = isinstance(weight_total, (int, float, np.integer, np.floating)) and not isinstance(weight_total, bool)
            total = float(weight_total) if ok else float("nan")
            if not (np.isfinite(total) and total > 0):
                raise ValueError(f"{fn}: weight_total must be a finite positive number (it divides Σ w·loss); got {weight_total!r}")
        return w / total

    @staticmethod
    def _element_factors(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Row factors spread over each row's elements: ``w_b / W / k``, k elements per row, shaped to
        broadcast against ``x`` (a row's loss is the mean of its elements' losses)."""
        k = x.size // x.shape[0]
        return (rows / k).reshape((x.shape[0],) + (1,) * (x.ndim - 1))

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

    def value_and_grad(self, outputs, targets, sample_weight=None, *, weight_total=None):
        x = self._outputs(outputs, "(B,) or (B, 1) logits")
        t = self._float_targets(targets, x)
        self._probability_targets(t)
        rows = self._row_factors(sample_weight, weight_total, x)
        n = x.size
        e = np.exp(-np.abs(x))  # e^−|x| in (0, 1]
        sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        if rows is None:
            value = float(np.mean(np.maximum(x, 0) - x * t + np.log1p(e)))
            grad = ((sig - t) / n).astype(x.dtype, copy=False)
            return value, grad
        f = self._element_factors(rows, x)
        value = float(np.sum(f * (np.maximum(x, 0) - x * t + np.log1p(e))))
        return value, (f * (sig - t)).astype(x.dtype, copy=False)


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

    def value_and_grad(self, outputs, targets, sample_weight=None, *, weight_total=None):
        x = self._outputs(outputs, "(B, C) logits", ndim=2)
        B, C = x.shape
        logp = _log_softmax(x)
        p = np.exp(logp)
        t_arr = np.asarray(targets)
        if t_arr.ndim == 1:
            k = self._class_indices(t_arr, B, C)
            rows = np.arange(B)
            losses = -logp[rows, k]  # (B,): each row's loss
            grad = p
            grad[rows, k] -= 1.0
        else:
            t = self._float_targets(targets, x)
            self._probability_targets(t)
            losses = -np.sum(t * logp, axis=1)
            grad = p * t.sum(axis=1, keepdims=True) - t
        factors = self._row_factors(sample_weight, weight_total, x)
        if factors is None:
            value = float(np.sum(losses) / B)
            grad /= B
        else:
            value = float(np.sum(factors * losses))
            grad *= factors[:, None]
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

    def value_and_grad(self, outputs, targets, sample_weight=None, *, weight_total=None):
        x = self._outputs(outputs, "outputs of any shape")
        t = self._float_targets(targets, x)
        rows = self._row_factors(sample_weight, weight_total, x)
        diff = x - t
        if rows is None:
            value = float(np.mean(diff * diff))
            grad = (diff * (2.0 / x.size)).astype(x.dtype, copy=False)
            return value, grad
        f = self._element_factors(rows, x)
        value = float(np.sum(f * diff * diff))
        return value, (f * 2.0 * diff).astype(x.dtype, copy=False)


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
