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


# ──────────────────────────── TMVA's figures: weighted efficiencies, Kolmogorov–Smirnov test of histograms

__all__ += ["efficiency_curve", "signal_efficiency_at", "kolmogorov_probability", "ks_test_binned"]


def _event_weights(fn: str, sample_weight, n: int) -> np.ndarray:
    """``sample_weight`` as float64 ``(n,)`` (ones when None); finite, negative weights allowed (TMVA's)."""
    if sample_weight is None:
        return np.ones(n)
    return _as_1d(fn, "sample_weight", sample_weight, n)


def efficiency_curve(y_true, scores, sample_weight=None):
    """TMVA's efficiencies at every cut: background efficiency ε_B, signal efficiency ε_S, the cut.

    An event is selected when ``score >= cut``; ε_S (ε_B) is the selected fraction of the signal
    (background) weight. Cuts are the distinct scores in decreasing order after ``+inf`` (nothing
    selected), so the curve runs from (0, 0) to (1, 1); it is :func:`roc_curve` with event weights
    (``sklearn.metrics.roc_curve(..., sample_weight=w, drop_intermediate=False)``). Weights may be
    negative, as TMVA allows; each class's total weight must be positive.

    Returns:
        ``(eff_b, eff_s, cuts)``, float64 arrays of equal length (distinct scores + 1).
    """
    fn = "efficiency_curve"
    y, s = _check(fn, y_true, scores, both_classes=True)
    w = _event_weights(fn, sample_weight, len(y))
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted, w_sorted = s[order], y[order], w[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    signal = np.cumsum(np.where(y_sorted, w_sorted, 0.0))[last_of_group]
    background = np.cumsum(np.where(y_sorted, 0.0, w_sorted))[last_of_group]
    for name, total in (("signal", signal[-1]), ("background", background[-1])):
        if not total > 0:
            raise ValueError(
                f"{fn}: the {name} events' sample_weight sums to {total:g}; efficiencies need a positive "
                f"total weight per class, so check the weights (negative weights outweigh the positive ones)"
            )
    eff_s = np.r_[0.0, signal / signal[-1]]
    eff_b = np.r_[0.0, background / background[-1]]
    return eff_b, eff_s, np.r_[np.inf, s_sorted[last_of_group]]


def _level(fn: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{fn}: background_efficiency must be a number in (0, 1), e.g. 0.01 for 1 %; got {value!r}")
    return float(value)


def signal_efficiency_at(y_true, scores, background_efficiency, sample_weight=None) -> float:
    """Signal efficiency at a background efficiency ε_B (TMVA's "@B=0.01" columns), unbinned.

    Read off :func:`efficiency_curve`: along the curve from (0, 0), the last point with
    ``eff_b <= ε_B`` and the next one, linearly interpolated at ε_B (at a point where several
    cuts give exactly ε_B, the highest ε_S). Between two cuts the straight line is what choosing
    either cut at random gives. TMVA reads the same curve from 10 000-bin histograms and splines.
    """
    fn = "signal_efficiency_at"
    level = _level(fn, background_efficiency)
    eff_b, eff_s, _ = efficiency_curve(y_true, scores, sample_weight)
    i = int(np.argmax(eff_b > level))  # the first point past ε_B: eff_b ends at 1 > level
    x0, x1, y0, y1 = eff_b[i - 1], eff_b[i], eff_s[i - 1], eff_s[i]
    return float(y0 + (y1 - y0) * (level - x0) / (x1 - x0))


def kolmogorov_probability(z) -> float:
    """The Kolmogorov distribution's survival function Q(z) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2 k² z²):
    the asymptotic probability that the scaled Kolmogorov–Smirnov distance exceeds ``z`` (ROOT's
    ``TMath::KolmogorovProb``, ``scipy.special.kolmogorov``). For z < 1 the equivalent series
    Q = 1 − √(2π)/z Σ_{k≥1} exp(−(2k−1)² π² / (8 z²)) converges faster and is used instead."""
    if isinstance(z, bool) or not isinstance(z, numbers.Real) or math.isnan(z):
        raise ValueError(f"kolmogorov_probability: z must be a number; got {z!r}")
    z = abs(float(z))
    if z < 1.0:
        if z < 0.05:  # the sum is below 1e-200
            return 1.0
        k = np.arange(1, 6)  # the 6th term is below exp(-149)
        terms = np.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * z * z))
        return float(1.0 - math.sqrt(2 * math.pi) / z * terms.sum())
    k = np.arange(1, 11)  # the 11th term is below exp(-242)
    return float(2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * z * z)))


def _histogram(fn: str, name: str, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a 1-D array of bin contents; got {type(value).__name__}") from None
    if a.ndim != 1 or len(a) == 0 or not np.isfinite(a).all():
        raise ValueError(f"{fn}: {name} must be a non-empty 1-D array of finite bin contents; got shape {a.shape}")
    return a


def ks_test_binned(counts1, counts2, sumw2_1=None, sumw2_2=None) -> tuple[float, float]:
    """The Kolmogorov–Smirnov test of two histograms with the same bins, as ROOT's
    ``TH1::KolmogorovTest`` without options computes it (under- and overflow left out).

    D is the largest distance between the two cumulative distributions (each histogram normalised
    to its sum); each histogram's effective number of entries is ``(Σ w)² / Σ w²`` (``sumw2``, the
    sum of squared weights per bin; None means unweighted counts, Σ w² = Σ w); the probability is
    :func:`kolmogorov_probability` of ``D · √(n₁ n₂ / (n₁ + n₂))``. Binning makes it conservative
    (too high) when the bins are coarse; it is the figure TMVA's overtraining check reports.

    Returns:
        ``(probability, D)``.
    """
    fn = "ks_test_binned"
    c1, c2 = _histogram(fn, "counts1", counts1), _histogram(fn, "counts2", counts2)
    if c1.shape != c2.shape:
        raise ValueError(f"{fn}: counts1 and counts2 must have the same bins; got {len(c1)} and {len(c2)} bins")
    s1 = c1 if sumw2_1 is None else _histogram(fn, "sumw2_1", sumw2_1)
    s2 = c2 if sumw2_2 is None else _histogram(fn, "sumw2_2", sumw2_2)
    if s1.shape != c1.shape or s2.shape != c2.shape:
        raise ValueError(f"{fn}: sumw2_1 and sumw2_2 must have one value per bin, {len(c1)}; got {len(s1)} and {len(s2)}")
    sum1, sum2 = c1.sum(), c2.sum()
    if not (sum1 > 0 and sum2 > 0):
        raise ValueError(f"{fn}: each histogram needs a positive sum of contents; got {sum1:g} and {sum2:g}")
    n1, n2 = sum1 * sum1 / s1.sum(), sum2 * sum2 / s2.sum()
    distance = float(np.max(np.abs(np.cumsum(c1) / sum1 - np.cumsum(c2) / sum2)))
    return kolmogorov_probability(distance * math.sqrt(n1 * n2 / (n1 + n2))), distance
