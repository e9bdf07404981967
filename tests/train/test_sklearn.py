"""bptt.sklearn: the scikit-learn estimator checks, pipelines, cloning, and learning a sequence task."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from bptt.sklearn import RecurrentClassifier, RecurrentRegressor

# Small, fast instances for scikit-learn's generic checks (2-D X, so T = 1). The regressor needs a
# few more epochs to reach the R² > 0.5 that check_regressors_train asks for.
FAST = {"hidden_size": 4, "dense_units": 16, "batch_size": 32, "learning_rate": 0.01}


@parametrize_with_checks(
    [RecurrentClassifier(epochs=2, **FAST), RecurrentRegressor(epochs=10, **FAST)],
    # Every applicable check passes but one, marked below. scikit-learn itself skips four of its
    # checks here (two per estimator): the pandas-input check, pandas not being a dependency of bptt
    # or of its tests, and the array-API check, which needs SCIPY_ARRAY_API=1 and array-api-compat;
    # the estimators take NumPy arrays (and what np.asarray accepts) only.
    expected_failed_checks=lambda est: {
        # as scikit-learn marks it for its own mini-batch estimators (SGDClassifier, MLPClassifier):
        # the weighted loss equals the repeated events' loss (tests/train/test_fit_weights.py checks
        # that with one batch), but repeated events change the mini-batches and the validation split
        "check_sample_weight_equivalence_on_dense_data": "mini-batch training: repeating events changes the batches",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _sequences(n=400, T=8, F=2, seed=0):
    """Label 1 when the first feature's running sum ends positive (a task that needs the whole sequence)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    return X, y


def test_learns_a_sequence_task():
    X, y = _sequences(600)
    clf = RecurrentClassifier(cell="lstm", hidden_size=6, dense_units=16, epochs=25, batch_size=32, learning_rate=0.01)
    clf.fit(X[:400], y[:400])
    proba = clf.predict_proba(X[400:])
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y[400:], proba[:, 1]) > 0.9
    assert clf.score(X[400:], y[400:]) > 0.8
    assert clf.n_features_in_ == 16 and clf.sequence_shape_ == (8, 2)
    assert 1 <= clf.n_iter_ <= 25


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_and_last_step_only(cell):
    X, y = _sequences(300)
    clf = RecurrentClassifier(cell=cell, hidden_size=6, dense_units=8, return_sequences=False, epochs=15,
                              batch_size=32, learning_rate=0.02).fit(X, y)
    assert type(clf.model_.layers[0]).__name__ == cell.upper()
    assert clf.model_.layers[0].return_sequences is False
    assert roc_auc_score(y, clf.predict_proba(X)[:, 1]) > 0.85


def test_flat_rows_with_sequence_shape_equal_sequences():
    X, y = _sequences(120, T=5, F=3)
    params = {"epochs": 3, "batch_size": 40, "hidden_size": 3, "dense_units": 4}
    a = RecurrentClassifier(**params).fit(X, y)
    b = RecurrentClassifier(sequence_shape=(5, 3), **params).fit(X.reshape(120, -1), y)
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X.reshape(120, -1)), rtol=1e-6, atol=1e-7)
    # a fitted estimator takes either layout
    np.testing.assert_allclose(a.predict_proba(X.reshape(120, -1)), a.predict_proba(X))
    assert b.sequence_shape_ == (5, 3) and b.n_features_in_ == 15


def test_pipeline_and_cross_val_score():
    X, y = _sequences(300, T=6, F=2)
    pipe = make_pipeline(
        StandardScaler(),
        RecurrentClassifier(sequence_shape=(6, 2), hidden_size=4, dense_units=8, epochs=10, batch_size=32, learning_rate=0.02),
    )
    scores = cross_val_score(pipe, X.reshape(300, -1), y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and scores.mean() > 0.8


def test_clone_and_params():
    clf = RecurrentClassifier(cell="gru", hidden_size=7, sequence_shape=(3, 2), random_state=4)
    params = clf.get_params()
    assert params["cell"] == "gru" and params["hidden_size"] == 7 and params["sequence_shape"] == (3, 2)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == params
    twin.set_params(hidden_size=2, epochs=1)
    assert twin.hidden_size == 2 and clf.hidden_size == 7
    X, y = _sequences(60, T=3, F=2)
    fitted = clone(twin).fit(X, y)
    assert not hasattr(clone(fitted), "model_")  # clone gives an unfitted copy


def test_same_random_state_same_model():
    X, y = _sequences(100, T=4, F=2)
    p1 = RecurrentClassifier(epochs=3, random_state=3).fit(X, y).decision_function(X)
    p2 = RecurrentClassifier(epochs=3, random_state=3).fit(X, y).decision_function(X)
    p3 = RecurrentClassifier(epochs=3, random_state=4).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_multiclass_string_labels():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4, 2))
    s = X[:, :, 0].sum(axis=1)
    y = np.where(s < -1, "low", np.where(s > 1, "high", "mid"))
    clf = RecurrentClassifier(hidden_size=6, dense_units=16, epochs=30, batch_size=32, learning_rate=0.02).fit(X, y)
    assert clf.classes_.tolist() == ["high", "low", "mid"]
    assert clf.model_.loss.name == "softmax_ce"
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.decision_function(X).shape == (300, 3)
    assert set(clf.predict(X)) <= set(clf.classes_)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.8


def test_binary_decision_function_and_labels():
    X, y = _sequences(100, T=4, F=2)
    labels = np.array(["bkg", "sig"])[y]
    clf = RecurrentClassifier(epochs=3).fit(X, labels)
    d = clf.decision_function(X)
    assert d.shape == (100,) and clf.model_.loss.name == "bce"
    np.testing.assert_array_equal(clf.predict(X), np.where(d > 0, "sig", "bkg"))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-d)))


def test_regressor_single_and_multi_output():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5, 2))
    y1 = 100.0 + 20.0 * X[:, :, 0].mean(axis=1)
    Y = np.column_stack([y1, -5.0 * X[:, -1, 1]])
    params = {"hidden_size": 6, "dense_units": 16, "epochs": 40, "batch_size": 30, "learning_rate": 0.01}
    reg = RecurrentRegressor(**params).fit(X, y1)
    assert reg.predict(X).shape == (300,) and reg.n_outputs_ == 1
    assert reg.score(X, y1) > 0.85
    multi = RecurrentRegressor(**params).fit(X, Y)
    assert multi.predict(X).shape == (300, 2) and multi.n_outputs_ == 2
    assert multi.score(X, Y) > 0.85


def test_small_data_trains_without_validation_split():
    X, y = _sequences(3, T=2, F=1)
    y = np.array([0, 1, 1])
    clf = RecurrentClassifier(epochs=2, validation_split=0.2).fit(X, y)
    assert np.isnan(clf.history_.val_loss).all()  # nothing was held out: 0.2 of 1 or 2 per class rounds to 0


@pytest.mark.parametrize(
    "params, match",
    [
        ({"cell": "transformer"}, r"RecurrentClassifier.fit: cell must be one of \['gru', 'lstm', 'rnn'\]; got 'transformer'"),
        ({"hidden_size": 0}, r"RecurrentClassifier.fit: hidden_size must be a positive integer; got 0"),
        ({"learning_rate": -1.0}, r"learning_rate must be a positive number; got -1.0"),
        ({"validation_split": 1.0}, r"validation_split must be a number in \[0, 1\); got 1.0"),
        ({"sequence_shape": (4, 4)}, r"sequence_shape=\(4, 4\) needs flat rows of T·F = 16 features; got X with 8 features"),
        ({"sequence_shape": (4,)}, r"sequence_shape must be None or a tuple \(T, F\)"),
    ],
)
def test_bad_hyperparameters_raise_at_fit(params, match):
    X, y = _sequences(20, T=4, F=2)
    clf = RecurrentClassifier(epochs=1, **params)  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        clf.fit(X.reshape(20, -1), y)


def test_prediction_input_errors():
    X, y = _sequences(40, T=4, F=2)
    with pytest.raises(NotFittedError):
        RecurrentClassifier().predict(X)
    clf = RecurrentClassifier(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"RecurrentClassifier.decision_function: X must have shape \(n, 4, 2\) \(T, F as in fit\); got \(3, 5, 2\)"):
        clf.predict(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="X has 7 features, but RecurrentClassifier is expecting 8 features"):
        clf.predict(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="only 1 class|at least 2 classes"):
        RecurrentClassifier(epochs=1).fit(X, np.zeros(40))
