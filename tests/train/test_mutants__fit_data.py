"""Tests written against surviving mutants of bptt/_fit_data.py (tools/mutation.py, full profile):
the labels a validation split stratifies on, the split and the event weights with lengths, the
per-step weights, the VarTransform fitted on the real steps, the targets' dtype and the
fingerprint's. Expected values from the definitions in the module's docstrings, computed here
with NumPy."""

import numpy as np
import pytest

from bptt import _fit_data as D
from bptt.layers import LSTM, Dense
from bptt.model import Sequential
from bptt.transforms import VarTransform


def _model(loss="bce", K=1, per_step=False, dtype=np.float64):
    return Sequential([LSTM(2, 3, return_sequences=per_step, dtype=dtype, seed=0), Dense(3, K, dtype=dtype, seed=1)],
                      loss=loss)


def test_strata_one_class_per_sequence_or_none():
    y = np.array([1.0, 0.0, 1.0, 1.0])
    assert D._strata(_model("mse"), y, (1,)) is None  # regression
    assert D._strata(_model("bce"), y[:, None, None] * np.ones((4, 5, 1)), (5, 1)) is None  # per-step targets
    assert D._strata(_model("bce"), y, (1,)).tolist() == y.tolist()
    got = D._strata(_model("bce"), y[:, None], (1,))
    assert got.shape == (4,) and got.tolist() == y.tolist()  # a column of labels
    onehot = np.eye(3)[[2, 0, 1, 2]]
    assert D._strata(_model("softmax_ce", 3), onehot, (3,)).tolist() == [2, 0, 1, 2]
    assert D._strata(_model("softmax_ce", 3), np.array([2, 0, 1, 2]), (3,)).tolist() == [2, 0, 1, 2]
    assert D._strata(_model("bce", 2), np.array([[1.0, 0.0], [0.0, 1.0]]), (2,)) is None  # two labels per event
    # per-step class indices (n, T) of a softmax over 3 classes: no label per sequence
    assert D._strata(_model("softmax_ce", 3, per_step=True), np.array([[2, 0, 1], [1, 1, 0]]), (3, 3)) is None


def test_the_validation_split_keeps_the_classes_in_proportion():
    """80 events, 20 of class 1, validation_split 0.25: 5 of the 20 held out, every seed."""
    X = np.random.default_rng(0).normal(size=(80, 3, 2))
    y = np.r_[np.ones(20), np.zeros(60)]
    counts = {int(D.split(_model(), X, y, None, 0.25, seed, None, False).yv.sum()) for seed in range(8)}
    assert counts == {5}


def test_weights_of_zero_leave_their_events_and_lengths_out():
    X = np.arange(5 * 4 * 2, dtype=np.float64).reshape(5, 4, 2)
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    L = np.array([4, 1, 2, 3, 4])
    data = D.split(_model(), X, y, None, 0.0, 0, np.array([1.0, 0.0, 2.0, 1.0, -1.0]), True, lengths=L)
    assert data.Lt.tolist() == [4, 2, 3] and data.yt.tolist() == [1.0, 1.0, 0.0]  # 0 and negative weights out
    Xv, yv, wv, Lv = D._validation_data("fit", _model(), (X, y, np.array([1.0, -1.0, 0.0, 2.0, 1.0])), True, L)
    assert Lv.tolist() == [4, 2, 3, 4] and wv.tolist() == [1.0, 0.0, 2.0, 1.0]  # negative out, zero stays
    # one event left, of weight 2: equal weights train as no weights
    one = D.split(_model(), X[:2], y[:2], None, 0.0, 0, np.array([0.0, 2.0]), False)
    assert one.wt is None and len(one.Xt) == 1


def test_validation_lengths_need_validation_data():
    X, y = np.zeros((4, 3, 2)), np.array([1.0, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"^fit: validation_lengths are the lengths of validation_data's sequences; "
                                         r"got validation_lengths without validation_data \(validation_split splits "
                                         r"lengths with the rows by itself\)$"):
        D.split(_model(), X, y, None, 0.25, 0, None, False, validation_lengths=np.array([1, 2]))


def test_step_weights_count_each_sequence_once_per_real_step():
    X = np.zeros((2, 4, 2))
    w = np.array([1.0, 3.0])
    # without lengths each sequence has 4 steps: Σ steps = 8, Σ w·steps = 16
    np.testing.assert_allclose(D.step_weights(w, None, X, True), [0.5, 1.5])
    # lengths 4 and 1: Σ steps = 5, Σ w·steps = 7
    np.testing.assert_allclose(D.step_weights(w, np.array([4, 1]), X, True), [5 / 7, 15 / 7])
    assert D.step_weights(w, None, X, False) is w and D.step_weights(None, None, X, True) is None


def test_an_unfitted_var_transform_is_fitted_on_the_real_steps_of_the_training_signal():
    """TMVA's N_Signal: each step-variable's min and max over the signal events that have that step."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 4, 2))
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    L = np.array([4, 1, 2, 4, 3, 1])
    garbage = X.copy()
    garbage[np.arange(4)[None, :] >= L[:, None]] = 1e6  # padded steps: not data
    model = _model()
    model.input_transform = VarTransform("N_Signal")
    data = D.split(model, garbage, y, None, 0.0, 0, None, False, lengths=L)
    D.fit_input_transform(model, data, standardize=False)
    assert model.input_transform.fitted
    step = model.input_transform.steps_[0]
    want_min, want_max = [], []
    for t in range(4):
        for f in range(2):
            vals = [X[b, t, f] for b in range(6) if y[b] == 1 and L[b] > t]
            want_min.append(min(vals))
            want_max.append(max(vals))
    np.testing.assert_allclose(step["min"], want_min, rtol=0, atol=1e-12)
    np.testing.assert_allclose(step["max"], want_max, rtol=0, atol=1e-12)


def test_targets_take_the_models_dtype_and_the_fingerprint_float32():
    X = np.zeros((4, 3, 2), np.float32)
    y = np.array([1, 0, 1, 0])  # integer labels
    _, t, _, _ = D._checked("fit", _model(dtype=np.float32), X, y, None)
    assert t.dtype == np.float32
    # a float64 network: its targets are float64, the fingerprint covers them as float32 (as before
    # per-step targets, so older checkpoints resume)
    data = D.split(_model(), X.astype(np.float64), y, None, 0.0, 0, None, False)
    assert data.yt.dtype == np.float64
    fp = D.fingerprint_arrays(data)
    assert fp[1].dtype == np.float32 and fp[1].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_an_empty_feature_axis_is_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"^fit: X must not have an empty axis; expected \(n, T, F\), got shape "
                                         r"\(4, 3, 0\)$"):
        D._checked("fit", _model(), np.zeros((4, 3, 0)), np.zeros(4), None)
