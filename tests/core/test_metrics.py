"""ROC curve, AUC and accuracy, checked against brute-force definitions (and scikit-learn if present)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.metrics import accuracy, roc_auc, roc_curve


def brute_force_auc(y, s) -> float:
    """P(score of a random signal > score of a random background), ties counting 1/2, over all pairs."""
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def random_data(seed, n=300, levels=12):
    """Labels and scores with many ties (scores take only ``levels`` values)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(y * 1.0 + rng.normal(0, 1.5, n), 0).clip(-levels // 2, levels // 2) / 3.0
    return y, s


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count_with_ties(seed):
    y, s = random_data(seed)
    assert len(np.unique(s)) < 15  # really many ties
    assert roc_auc(y, s) == pytest.approx(brute_force_auc(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_auc_equals_trapezoidal_area_under_roc_curve(seed):
    y, s = random_data(seed)
    fpr, tpr, thresholds = roc_curve(y, s)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert roc_auc(y, s) == pytest.approx(area, abs=1e-12)


def test_perfect_inverted_and_constant_classifiers():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    assert roc_auc(y, np.zeros(5)) == 0.5
    assert accuracy(y, s) == 1.0
    assert accuracy(y, 1 - s) == 0.0


def test_roc_curve_shape_and_points():
    y = [0, 1, 0, 1, 1]
    s = [0.2, 0.9, 0.5, 0.5, 0.1]
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.2, 0.1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1, 1])
    # every point is (FP rate, TP rate) of "score >= threshold"
    ya, sa = np.array(y), np.array(s)
    for f, t, th in zip(fpr[1:], tpr[1:], thr[1:]):
        sel = sa >= th
        assert t == pytest.approx((sel & (ya == 1)).sum() / 3)
        assert f == pytest.approx((sel & (ya == 0)).sum() / 2)


def test_scores_may_be_a_column_and_labels_bool():
    y = np.array([True, False, True, False])
    s = np.array([[0.9], [0.2], [0.4], [0.6]])
    assert roc_auc(y, s) == 0.75
    assert accuracy(y, s) == 0.5
    assert accuracy(y, s[:, 0] - 0.5, threshold=0.0) == 0.5


def test_auc_against_sklearn():
    from sklearn import metrics  # the test extra's scikit-learn: a missing install fails, not skips
    for seed in range(3):
        y, s = random_data(seed)
        assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, s)
        fpr_s, tpr_s, _ = metrics.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(fpr, fpr_s)
        np.testing.assert_allclose(tpr, tpr_s)


# ──────────────────────────────────────────────────────────────────────────────────── errors


@pytest.mark.parametrize("fn", [roc_auc, roc_curve])
def test_single_class_is_an_error(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: y_true holds only label 1 \(signal\); a ROC curve needs both classes"):
        fn([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"holds only label 0 \(background\)"):
        fn([0, 0], [0.1, 0.2])


@pytest.mark.parametrize("fn", [roc_auc, roc_curve, accuracy])
def test_shape_and_value_errors(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: scores must have one value per label, shape \(3,\); got shape \(2,\)"):
        fn([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match=rf"{name}: scores must have shape \(n,\) or \(n, 1\); got shape \(3, 2\)"):
        fn([0, 1, 0], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=rf"{name}: scores contains NaN at index 1; every value must be finite"):
        fn([0, 1, 0], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match=rf"{name}: y_true contains NaN at index 0"):
        fn([np.nan, 1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=rf"{name}: y_true must hold labels 0 \(background\) and 1 \(signal\); got 2 at index 2"):
        fn([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=rf"{name}: y_true is empty"):
        fn([], [])
    with pytest.raises(ValueError, match=rf"{name}: scores must hold numbers; got dtype <U1"):
        fn([0, 1], ["a", "b"])


def test_accuracy_threshold_must_be_a_number():
    with pytest.raises(ValueError, match=r"accuracy: threshold must be a finite number \(0.5 for probabilities\); got nan"):
        accuracy([0, 1], [0.2, 0.7], threshold=float("nan"))
    with pytest.raises(ValueError, match=r"accuracy: threshold must be a finite number"):
        accuracy([0, 1], [0.2, 0.7], threshold="0.5")
