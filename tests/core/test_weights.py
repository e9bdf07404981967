"""Event weights in the losses and the metrics (issue 19): the weighted mean Σ w ℓ / Σ w against
scikit-learn's weighted metrics, its gradient against central differences, weight 2 against an
event given twice, and the messages for weights that cannot be used."""

import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

from bptt.gradcheck import numerical_gradient
from bptt.losses import make_loss
from bptt.metrics import accuracy, roc_auc

RNG = np.random.default_rng(19)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ─────────────────────────────────────────────────────────────────────────────────── losses


def test_weighted_bce_is_sklearns_weighted_log_loss():
    z = RNG.normal(size=12) * 2
    y = (RNG.random(12) < 0.5).astype(float)
    w = RNG.uniform(0.1, 3.0, size=12)
    value = make_loss("bce")(z, y, w)
    assert value == pytest.approx(log_loss(y, _sigmoid(z), sample_weight=w), rel=1e-12)
    # (B, 1) outputs: the same rows
    assert make_loss("bce")(z[:, None], y[:, None], w) == pytest.approx(value, rel=1e-14)


def test_weighted_bce_per_step_rows_are_their_steps_mean():
    z = RNG.normal(size=(4, 3))
    y = (RNG.random((4, 3)) < 0.5).astype(float)
    w = np.array([1.0, 2.0, 0.5, 4.0])
    rows = np.array([log_loss(y[b], _sigmoid(z[b]), labels=[0, 1]) for b in range(4)])
    assert make_loss("bce")(z, y, w) == pytest.approx(np.sum(w * rows) / w.sum(), rel=1e-12)


def test_weighted_softmax_ce_is_sklearns_weighted_log_loss():
    z = RNG.normal(size=(10, 3))
    k = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2, 1])
    w = RNG.uniform(0.1, 3.0, size=10)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = log_loss(k, p, sample_weight=w)
    ce = make_loss("softmax_ce")
    assert ce(z, k, w) == pytest.approx(expected, rel=1e-12)
    assert ce(z, np.eye(3)[k], w) == pytest.approx(expected, rel=1e-12)  # one-hot probabilities


def test_weighted_mse_is_sklearns_weighted_mse():
    z = RNG.normal(size=(9, 2))
    t = RNG.normal(size=(9, 2))
    w = RNG.uniform(0.1, 3.0, size=9)
    assert make_loss("mse")(z, t, w) == pytest.approx(mean_squared_error(t, z, sample_weight=w), rel=1e-12)
    assert make_loss("mse")(z[:, 0], t[:, 0], w) == pytest.approx(
        mean_squared_error(t[:, 0], z[:, 0], sample_weight=w), rel=1e-12
    )


CASES = {
    "bce": lambda: (RNG.normal(size=(6, 1)), (RNG.random((6, 1)) < 0.5).astype(float)),
    "bce_steps": lambda: (RNG.normal(size=(5, 3)), RNG.random((5, 3))),
    "softmax_ce": lambda: (RNG.normal(size=(6, 4)), np.array([0, 3, 1, 1, 2, 0])),
    "softmax_ce_soft": lambda: (RNG.normal(size=(5, 3)), RNG.dirichlet(np.ones(3), size=5)),
    "mse": lambda: (RNG.normal(size=(6, 2)), RNG.normal(size=(6, 2))),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("weight_total", [None, 7.5])
def test_weighted_gradient_is_the_weighted_losss_central_difference(case, weight_total):
    x, t = CASES[case]()
    loss = make_loss(case.split("_steps")[0].replace("_soft", ""))
    w = RNG.uniform(-0.5, 2.0, size=len(x))
    w[0] = 3.0  # a positive sum, one negative weight at least in most draws
    w[1] = -0.4
    _, grad = loss.value_and_grad(x, t, w, weight_total=weight_total)
    numeric = numerical_gradient(lambda: loss(x, t, w, weight_total=weight_total), x)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_two_is_the_event_given_twice(case):
    x, t = CASES[case]()
    loss = make_loss(case.split("_steps")[0].replace("_soft", ""))
    w = np.ones(len(x))
    w[2] = 2.0
    twice = np.r_[np.arange(len(x)), 2]
    value, grad = loss.value_and_grad(x, t, w)
    value2, grad2 = loss.value_and_grad(x[twice], t[twice])
    assert value == pytest.approx(value2, rel=1e-13)
    folded = grad2[: len(x)].copy()
    folded[2] += grad2[-1]
    np.testing.assert_allclose(grad, folded, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", sorted(CASES))
def test_equal_weights_give_the_unweighted_loss_and_weight_total_divides(case):
    x, t = CASES[case]()
    loss = make_loss(case.split("_steps")[0].replace("_soft", ""))
    value, grad = loss.value_and_grad(x, t)
    wv, wg = loss.value_and_grad(x, t, np.full(len(x), 3.0))
    assert wv == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(wg, grad, rtol=1e-12)
    w = np.linspace(0.5, 2.0, len(x))
    tv, tg = loss.value_and_grad(x, t, w, weight_total=2.0)
    mv, mg = loss.value_and_grad(x, t, w)
    assert tv == pytest.approx(mv * w.sum() / 2.0, rel=1e-13)
    np.testing.assert_allclose(tg, mg * w.sum() / 2.0, rtol=1e-12)


@pytest.mark.parametrize("name, targets", [("bce", np.ones((4, 1))), ("mse", np.ones((4, 1))),
                                           ("softmax_ce", np.array([0, 0, 0, 0]))])
def test_weighted_gradient_keeps_the_outputs_dtype(name, targets):
    x = RNG.normal(size=(4, 1)).astype(np.float32)
    _, grad = make_loss(name).value_and_grad(x, targets, np.array([1, 2, 3, 4]))
    assert grad.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_weight": np.ones(3)}, "BinaryCrossEntropy: sample_weight must have one weight per event, shape (4,); got shape (3,)"),
        ({"sample_weight": np.ones((4, 1))}, "BinaryCrossEntropy: sample_weight must have one weight per event, shape (4,); got shape (4, 1)"),
        ({"sample_weight": [1, 2, np.nan, 1]}, "BinaryCrossEntropy: sample_weight contains nan at index 2; every weight must be finite"),
        ({"sample_weight": ["a", "b", "c", "d"]}, "BinaryCrossEntropy: sample_weight must hold numbers, one weight per event; got dtype <U1"),
        ({"sample_weight": [1.0, -1.0, 0.5, -0.5]}, "BinaryCrossEntropy: sample_weight sums to 0; a weighted mean needs a positive sum of weights"),
        ({"weight_total": 2.0}, "BinaryCrossEntropy: weight_total=2.0 needs sample_weight (it divides Σ w·loss); pass both or neither"),
        ({"sample_weight": np.ones(4), "weight_total": 0.0}, "BinaryCrossEntropy: weight_total must be a finite positive number (it divides Σ w·loss); got 0.0"),
        ({"sample_weight": np.ones(4), "weight_total": True}, "BinaryCrossEntropy: weight_total must be a finite positive number (it divides Σ w·loss); got True"),
        ({"sample_weight": np.ones(4), "weight_total": float("inf")}, "BinaryCrossEntropy: weight_total must be a finite positive number (it divides Σ w·loss); got inf"),
    ],
)
def test_unusable_weights_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        make_loss("bce").value_and_grad(np.zeros(4), np.ones(4), **kwargs)


def test_negative_weights_with_a_positive_sum_are_used_with_their_sign():
    z, y = np.array([1.0, -2.0, 0.5]), np.array([1.0, 0.0, 0.0])
    w = np.array([2.0, -0.5, 1.0])
    rows = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    assert make_loss("bce")(z, y, w) == pytest.approx(np.sum(w * rows) / 2.5, rel=1e-14)


# ─────────────────────────────────────────────────────────────────────────────────── metrics


def test_weighted_roc_auc_is_sklearns_with_ties():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 60)
        s = np.round(rng.normal(size=60) + y, 1)  # rounded: many tied scores, across classes too
        w = rng.uniform(0.0, 3.0, size=60)
        assert roc_auc(y, s, sample_weight=w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), rel=1e-12)
        assert len(np.unique(s)) < 60


def test_weighted_roc_auc_hand_numbers():
    # signal at 0.8 (w 2) and 0.4 (w 1); background at 0.4 (w 1) and 0.1 (w 3)
    y, s, w = [1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1], [2.0, 1.0, 1.0, 3.0]
    # pairs: 0.8 beats both (2·4), 0.4 ties 0.4 (½·1·1) and beats 0.1 (1·3): (8 + 0.5 + 3) / (3·4)
    assert roc_auc(y, s, sample_weight=w) == pytest.approx(11.5 / 12, rel=1e-15)
    assert roc_auc(y, s, sample_weight=np.ones(4)) == roc_auc(y, s) == pytest.approx(3.5 / 4)


def test_weighted_roc_auc_with_negative_weights():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    s = rng.normal(size=40) + y
    w = rng.uniform(0.5, 2.0, size=40)
    w[:3] = -0.3  # negative signal weights: the curve's x (background efficiency) still rises
    assert roc_auc(y, s, sample_weight=w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), rel=1e-12)
    w[25] = -0.4  # a negative background weight can turn the curve back: scikit-learn refuses it
    pairs = sum(
        w[i] * w[j] * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
        for i in range(20) for j in range(20, 40)
    )
    expected = pairs / (w[:20].sum() * w[20:].sum())
    assert roc_auc(y, s, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_roc_auc_refuses_a_class_without_positive_weight():
    message = "roc_auc: the background events' sample_weight sums to -1; the ROC AUC needs a positive total weight per class"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        roc_auc([1, 0, 0], [0.9, 0.2, 0.1], sample_weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("roc_auc: the signal events' sample_weight sums to 0")):
        roc_auc([1, 0], [0.9, 0.2], sample_weight=[0.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("roc_auc: sample_weight must have one value per label, shape (2,)")):
        roc_auc([1, 0], [0.9, 0.2], sample_weight=[1.0])


def test_weighted_accuracy_is_sklearns():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 50)
    p = rng.random(50)
    w = rng.uniform(-0.5, 3.0, size=50)
    assert accuracy(y, p, sample_weight=w) == pytest.approx(accuracy_score(y, p >= 0.5, sample_weight=w), rel=1e-12)
    assert accuracy(y, p, 0.3, sample_weight=w) == pytest.approx(accuracy_score(y, p >= 0.3, sample_weight=w), rel=1e-12)
    # hand numbers: right, wrong, right with weights 1, 3, 2
    assert accuracy([1, 0, 0], [0.9, 0.7, 0.1], sample_weight=[1, 3, 2]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="^" + re.escape("accuracy: sample_weight sums to 0; a weighted fraction needs a positive sum")):
        accuracy([1, 0], [0.9, 0.1], sample_weight=[1.0, -1.0])


# ── the weighted accuracy's own survivors (mutation testing of metrics.py, issue 19)

def test_weighted_accuracy_names_its_weights_when_their_length_is_wrong():
    import re

    import pytest

    from bptt import metrics

    message = "accuracy: sample_weight must have one value per label, shape (3,); got shape (2,)"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        metrics.accuracy([1, 0, 1], [0.9, 0.1, 0.4], sample_weight=[1.0, 2.0])


def test_weighted_accuracy_with_weights_summing_below_one_and_a_score_at_the_threshold():
    from bptt import metrics

    # events: signal at exactly the threshold (counts as signal: correct), background at 0.2
    # (correct), signal at 0.3 (wrong); weights 0.1, 0.2, 0.2 sum to 0.5
    value = metrics.accuracy([1, 0, 1], [0.5, 0.2, 0.3], sample_weight=[0.1, 0.2, 0.2])
    assert value == (0.1 + 0.2) / 0.5
