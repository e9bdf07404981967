"""Classification metrics: ROC curve, area under it (exact, ties as average ranks), accuracy.

Labels are 1 (signal, positive) and 0 (background); scores are larger for more signal-like events.
Scores may be ``(n,)`` or the ``(n, 1)`` output of a one-unit output layer.

Example::

    >>> from bptt.metrics import accuracy, roc_auc, roc_curve
    >>> y = [0, 0, 1, 1]
    >>> s = [0.1, 0.4, 0.35, 0.8]
    >>> roc_auc(y, s)
    0.75
    >>> fpr, tpr, thr = roc_curve(y, s)
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    >>> accuracy(y, s)
    0.75
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["roc_curve", "roc_auc", "accuracy"]


def _as_1d(fn: str, name: str, value, n: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: {name} must be a 1-D array of numbers; NumPy cannot convert it ({exc})") from None
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{fn}: {name} must have shape (n,) or (n, 1); got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: {name} must hold numbers; got dtype {a.dtype}")
    if len(a) == 0:
        raise ValueError(f"{fn}: {name} is empty; it needs at least one value")
    if n is not None and len(a) != n:
        raise ValueError(f"{fn}: {name} must have one value per label, shape ({n},); got shape {a.shape}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        what = "NaN" if np.isnan(a[i]) else "Inf"
        raise ValueError(f"{fn}: {name} contains {what} at index {i}; every value must be finite")
    return a


def _check(fn: str, y_true, scores, both_classes: bool) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d(fn, "y_true", y_true)
    s = _as_1d(fn, "scores", scores, len(y))
    not_binary = (y != 0) & (y != 1)
    if not_binary.any():
        i = int(np.argmax(not_binary))
        raise ValueError(f"{fn}: y_true must hold labels 0 (background) and 1 (signal); got {y[i]:g} at index {i}")
    if both_classes:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            present = "1 (signal)" if n_pos else "0 (background)"
            raise ValueError(
                f"{fn}: y_true holds only label {present}; a ROC curve needs both classes, so evaluate "
                f"on a sample with signal and background"
            )
    return y.astype(bool), s


def roc_curve(y_true, scores):
    """The ROC curve: false and true positive rates at every distinct score threshold.

    An event counts as positive when ``score >= threshold``. Thresholds are the distinct scores
    in decreasing order, preceded by ``+inf`` (nothing selected), so the curve starts at (0, 0)
    and ends at (1, 1); tied scores move both rates at once (a diagonal segment).

    Returns:
        ``(fpr, tpr, thresholds)``, 1-D float64 arrays of equal length (number of distinct
        scores + 1).
    """
    y, s = _check("roc_curve", y_true, scores, both_classes=True)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[last_of_group]
    fps = (last_of_group + 1) - tps
    n_pos, n_neg = tps[-1], fps[-1]
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s_sorted[last_of_group]]
    return fpr, tpr, thresholds


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``s`` in increasing order, tied values sharing the average of their ranks."""
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s_sorted)) + 1]
    ends = np.r_[starts[1:], len(s)]
    group_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 … end
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_auc(y_true, scores, sample_weight=None) -> float:
    """Area under the ROC curve, exactly: the Mann–Whitney U statistic over ``n_pos · n_neg``.

    It is the probability that a random signal event scores higher than a random background event,
    ties counting one half (ranks of tied scores are averaged). Equals the trapezoidal area under
    :func:`roc_curve`.

    With ``sample_weight`` ``(n,)`` every pair (signal i, background j) counts ``w_i · w_j``:
    ``Σ w_i w_j [s_i > s_j] (+ ½ when tied) / (W_signal · W_background)``, which is
    ``sklearn.metrics.roc_auc_score(y, s, sample_weight=w)``. Negative weights (TMVA's) count with
    their sign, and each class's total weight must be positive; the weighted ROC curve may then
    turn back, where scikit-learn refuses ("x is neither increasing nor decreasing") and this gives
    the same pair sum, the signed area under the curve.
    """
    y, s = _check("roc_auc", y_true, scores, both_classes=True)
    if sample_weight is not None:
        return _weighted_auc(y, s, _as_1d("roc_auc", "sample_weight", sample_weight, len(y)))
    ranks = _average_ranks(s)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _weighted_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """:func:`roc_auc` with weights: over the groups of tied scores in increasing order, each
    group's signal weight times (the background weight below it + half the group's own)."""
    order = np.argsort(s, kind="mergesort")
    starts = np.r_[0, np.flatnonzero(np.diff(s[order])) + 1]
    y_sorted, w_sorted = y[order], w[order]
    signal = np.add.reduceat(np.where(y_sorted, w_sorted, 0.0), starts)
    background = np.add.reduceat(np.where(y_sorted, 0.0, w_sorted), starts)
    totals = {"signal": float(signal.sum()), "background": float(background.sum())}
    for name, total in totals.items():
        if not total > 0:
            raise ValueError(
                f"roc_auc: the {name} events' sample_weight sums to {total:g}; the ROC AUC needs a positive "
                f"total weight per class (negative weights outweigh the positive ones: check the weights)"
            )
    below = np.cumsum(background) - background
    return float(np.sum(signal * (below + background / 2.0)) / (totals["signal"] * totals["background"]))


def accuracy(y_true, scores, threshold: float = 0.5, sample_weight=None) -> float:
    """Fraction of events classified correctly, an event being signal when ``score >= threshold``.

    Use ``threshold=0.5`` for probabilities, ``0.0`` for logits. With ``sample_weight`` ``(n,)``:
    the weighted fraction ``Σ w [correct] / Σ w`` (``sklearn.metrics.accuracy_score`` with
    ``sample_weight``); weights may be negative, their sum must be positive.
    """
    y, s = _check("accuracy", y_true, scores, both_classes=False)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ValueError(f"accuracy: threshold must be a finite number (0.5 for probabilities); got {threshold!r}")
    if sample_weight is None:
        return float(np.mean((s >= threshold) == y))
    w = _as_1d("accuracy", "sample_weight", sample_weight, len(y))
    total = float(w.sum())
    if not total > 0:
        raise ValueError(f"accuracy: sample_weight sums to {total:g}; a weighted fraction needs a positive sum of weights")
    return float(np.sum(w[(s >= threshold) == y]) / total)
