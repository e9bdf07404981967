"""Lengths and per-step targets: the pieces :func:`bptt.train.fit`, the predictions and
:meth:`bptt.model.Sequential.evaluate` share (API.md, "Sequences").

**Lengths.** ``lengths (n,)``, integers with ``1 <= lengths[b] <= T``, say how many steps of
sequence b of ``X (n, T, F)`` are real; steps ``t >= lengths[b]`` are padding (None: every step
is real). Padded steps may hold anything (NaN included): they are set to 0 before anything reads
them (:func:`inputs`), and nothing computed at a real step depends on them.

**Per-step targets.** A network whose output keeps the time axis, ``(n, T, K)`` (a recurrent
layer with ``return_sequences=True`` followed by ``Dense``, TMVA's ``LSTM|H|F|T|0|1`` then
``DENSE`` without ``RESHAPE|FLAT``), has a target per step: ``y (n, T)`` (0/1 labels for ``bce``,
class indices for ``softmax_ce``, values for ``mse``) or ``(n, T, K)`` (``K`` labels, class
probabilities or values per step). Its loss is the mean over the real steps, each step's loss
weighted by its sequence's event weight ``w_b`` (Keras's masked mean)::

    L = Σ_{b, t < lengths[b]} w_b ℓ(out[b, t], y[b, t])  /  Σ_{b, t < lengths[b]} w_b

ℓ being one step's loss as :mod:`bptt.losses` defines a row's (the mean over its K outputs for
``bce`` and ``mse``, the cross-entropy of its C logits for ``softmax_ce``); without lengths every
step is real, without weights ``w_b = 1``. The gradient is 0 at padded steps. The metrics pool
the real steps of all sequences the same way (each step one prediction, weighted by ``w_b``).

Example::

    >>> import numpy as np
    >>> from bptt.losses import make_loss
    >>> out = np.array([[[0.0], [9.0]], [[0.0], [0.0]]])          # (n=2, T=2, K=1) logits
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])                     # (n, T) labels
    >>> value, grad = loss_and_grad(make_loss("bce"), out, y[..., None], lengths=np.array([1, 2]))
    >>> round(value, 6), float(grad[0, 1, 0])                      # log 2, over the 3 real steps
    (0.693147, 0.0)
"""

from __future__ import annotations

import numpy as np

from . import _validation as v

__all__ = ["check_lengths", "step_mask", "inputs", "targets", "expected_targets", "loss_and_grad", "real_rows",
           "units", "zero_padding"]


def check_lengths(fn: str, lengths, n: int, T: int) -> np.ndarray | None:
    """``lengths`` as int64 ``(n,)`` with ``1 <= lengths[b] <= T``, or None; a ValueError naming
    ``lengths``, what was expected and what was received otherwise (the one rule of
    :func:`bptt.data.ragged.check_lengths`)."""
    if lengths is None:
        return None
    from .data.ragged import check_lengths as check

    return check(fn, lengths, n, T)


def step_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """``(n, T)`` bool: True at the real steps, ``t < lengths[b]``."""
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def zero_padding(a: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """``a (n, T, ...)`` with its padded steps set to 0 (a new array; ``a`` itself when there are
    no lengths or no padded step)."""
    if lengths is None or (lengths == a.shape[1]).all():
        return a
    mask = step_mask(lengths, a.shape[1]).reshape(a.shape[:2] + (1,) * (a.ndim - 2))
    return np.where(mask, a, a.dtype.type(0))


def inputs(fn: str, X, lengths) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X, lengths)`` checked: ``X`` as an array (with lengths: float ``(n, T, F)``, padded steps
    set to 0 whatever they held), ``lengths`` as :func:`check_lengths` gives them. ``X`` is not
    checked further here (the callers check it as they did without lengths)."""
    if lengths is None:
        return X, None
    try:
        a = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: X must be an array of shape (n, T, F); NumPy cannot convert it ({exc})") from None
    if a.ndim != 3:
        raise ValueError(
            f"{fn}: lengths count the steps of sequences X of shape (n, T, F); got X of shape {a.shape}: pass "
            f"lengths=None for (n, F) rows"
        )
    L = check_lengths(fn, lengths, a.shape[0], a.shape[1])
    return (zero_padding(a, L) if a.dtype in v.FLOAT_DTYPES else a), L


def expected_targets(loss: str, tail: tuple[int, ...]) -> str:
    """The shapes of ``y`` a network with outputs ``(n, *tail)`` and loss ``loss`` trains on, in words."""
    if len(tail) == 2:
        T, K = tail
        if loss == "softmax_ce":
            return f"(n, {T}) class indices per step or (n, {T}, {K}) class probabilities per step"
        what = "0/1 labels" if loss == "bce" else "values"
        return f"(n, {T}) {what} per step (or (n, {T}, 1))" if K == 1 else f"(n, {T}, {K}) {what} per step"
    if len(tail) == 1:
        (K,) = tail
        if loss == "softmax_ce":
            return f"(n,) class indices or (n, {K}) class probabilities"
        what = "0/1 labels" if loss == "bce" else "values"
        return f"(n,) {what} (or (n, 1))" if K == 1 else f"(n, {K}) {what}"
    return "(n, " + ", ".join(map(str, tail)) + ")" if tail else "(n,)"


def targets(fn: str, loss: str, y, n: int, tail: tuple[int, ...], dtype, lengths=None) -> np.ndarray:
    """``y`` checked against the network's outputs ``(n, *tail)``, in the shape given: the outputs'
    shape, or that shape without the output axis (class indices for ``softmax_ce``, kept as given
    for the loss to check; one label or value per sequence or step where the output has one unit).
    Float targets are converted to ``dtype``. Targets at padded steps (per-step targets with
    ``lengths``) are set to 0 first."""
    try:
        t = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: y must be an array of numbers; NumPy cannot convert it ({exc})") from None
    if t.dtype.kind == "O":  # e.g. Fractions: numbers NumPy can convert
        try:
            t = t.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if t.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: y must hold numbers ({expected_targets(loss, tail)}); got dtype {t.dtype}")
    out_shape = (n,) + tuple(tail)
    if loss == "softmax_ce" and len(tail) == 1 and tail[0] != 1 and t.shape == (n, 1):
        t = t.reshape(n)  # a column of class indices
    short = bool(tail) and t.shape == out_shape[:-1]  # (n,) or (n, T): without the output axis
    if not (t.shape == out_shape or (short and (loss == "softmax_ce" or tail[-1] == 1))):
        raise ValueError(
            f"{fn}: y must have shape {expected_targets(loss, tail)} for this network's outputs of shape "
            f"(n, {', '.join(map(str, tail))}) with n = {n}; got shape {t.shape}"
        )
    if not (loss == "softmax_ce" and short):  # class indices stay as given; the loss checks them
        t = t.astype(np.dtype(dtype))
    if len(tail) == 2 and lengths is not None:
        t = zero_padding(t, lengths)
    if t.dtype.kind == "f":
        bad = ~np.isfinite(t)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{fn}: y contains {t[where]} at index {where}; every target of a real step must be finite")
    return t


def units(out_shape: tuple[int, ...], lengths) -> int:
    """The number of terms a loss on outputs of ``out_shape`` averages: the real steps of a
    per-step output ``(n, T, K)``, else the rows ``n``."""
    if len(out_shape) != 3:
        return int(out_shape[0])
    return int(out_shape[0] * out_shape[1]) if lengths is None else int(np.sum(lengths))


def real_rows(out: np.ndarray, y: np.ndarray, lengths=None, sample_weight=None):
    """``(out_rows, y_rows, w_rows, mask)``: the real steps of a per-step output ``(n, T, K)`` as
    rows ``(N, K)`` with their targets and their sequences' weights (None without weights), and the
    ``(n, T)`` mask (None without lengths); other outputs as they are."""
    if out.ndim != 3:
        return out, y, sample_weight, None
    n, T, K = out.shape
    if lengths is None:
        w = None if sample_weight is None else np.repeat(sample_weight, T)
        return out.reshape(n * T, K), y.reshape((n * T,) + y.shape[2:]), w, None
    mask = step_mask(lengths, T)
    w = None if sample_weight is None else np.repeat(sample_weight, lengths)
    return out[mask], y[mask], w, mask


def loss_and_grad(loss, out, y, lengths=None, sample_weight=None, *, weight_total=None) -> tuple[float, np.ndarray]:
    """``loss.value_and_grad`` over the real steps of a per-step output ``(n, T, K)`` (the masked
    mean of the module's docstring; ``weight_total``, as the losses take it, divides the weighted
    sum instead of the steps' total weight) and the gradient, 0 at padded steps; any other output
    goes to the loss as it is."""
    rows, t, w, mask = real_rows(out, y, lengths, sample_weight)
    if w is None and weight_total is None:
        value, g = loss.value_and_grad(rows, t)
    else:
        value, g = loss.value_and_grad(rows, t, w, weight_total=weight_total)
    if out.ndim != 3:
        return value, g
    if mask is None:
        return value, g.reshape(out.shape)
    grad = np.zeros_like(out)
    grad[mask] = g
    return value, grad
