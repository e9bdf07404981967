"""bptt.sklearn with sequences of different lengths: ``lengths=`` on fit and every prediction, or
ragged sequences (a list of (len_i, F) arrays, an awkward array) padded by pad_ragged."""

import re

import awkward as ak
import numpy as np
import pytest

from bptt.sklearn import RecurrentClassifier, RecurrentRegressor

FAST = {"hidden_size": 5, "dense_units": 8, "batch_size": 16, "learning_rate": 0.02, "epochs": 4}
T, F = 7, 2


def ragged_task(n=120, seed=0):
    """Label 1 when the first feature's sum over the real steps is positive; padded steps hold
    garbage that would decide the label if they were read."""
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, size=n)
    X = rng.normal(size=(n, T, F))
    mask = np.arange(T)[None, :] < L[:, None]
    y = (np.where(mask, X[:, :, 0], 0).sum(axis=1) > 0).astype(int)
    G = np.where(mask[..., None], X, 1e6 * rng.choice([-1.0, 1.0], size=(n, T, F)))
    return np.where(mask[..., None], X, 0.0), G, y, L


@pytest.mark.parametrize("cls", [RecurrentClassifier, RecurrentRegressor])
def test_padded_steps_are_never_read_and_ragged_input_equals_padded_with_lengths(cls):
    X, G, y, L = ragged_task()
    target = y if cls is RecurrentClassifier else X[:, :, 0].sum(axis=1)
    a = cls(**FAST).fit(X, target, lengths=L)
    b = cls(**FAST).fit(G, target, lengths=L)
    predict = a.predict_proba if cls is RecurrentClassifier else a.predict
    np.testing.assert_array_equal(predict(X, lengths=L),
                                  (b.predict_proba if cls is RecurrentClassifier else b.predict)(G, lengths=L))
    seqs = [X[i, : L[i]] for i in range(len(X))]
    c = cls(**FAST).fit(seqs, target)
    assert c.sequence_shape_ == (T, F)
    np.testing.assert_allclose((c.predict_proba if cls is RecurrentClassifier else c.predict)(seqs),
                               predict(X, lengths=L), rtol=1e-6, atol=1e-7)  # float64 padding against X's
    awk = ak.Array([s.tolist() for s in seqs])
    np.testing.assert_allclose((c.predict_proba if cls is RecurrentClassifier else c.predict)(awk),
                               predict(X, lengths=L), rtol=1e-6, atol=1e-7)
    assert a.score(X, target, lengths=L) == b.score(G, target, lengths=L)


def test_the_input_standardisation_is_fitted_on_real_steps():
    X, G, y, L = ragged_task(seed=1)
    mask = np.arange(T)[None, :] < L[:, None]
    clf = RecurrentClassifier(**FAST, validation_split=0).fit(G, y, lengths=L)  # fitted on fit's training part
    np.testing.assert_allclose(clf.model_.standardizer.mean_, X[mask].mean(axis=0), rtol=1e-10)
    reg = RecurrentRegressor(**FAST).fit(G, X[:, 0, 0], lengths=L)
    np.testing.assert_allclose(reg.standardizer_.std_, X[mask].std(axis=0), rtol=1e-10)


def test_lengths_make_the_task_learnable():
    """Only the real steps decide the label; with garbage at the padded steps the network learns
    the task from the real steps (and cannot tell anything from the padded ones)."""
    X, G, y, L = ragged_task(600, seed=2)
    clf = RecurrentClassifier(cell="gru", hidden_size=8, dense_units=16, epochs=30, batch_size=32,
                              learning_rate=0.01, return_sequences=False)
    clf.fit(G[:400], y[:400], lengths=L[:400])
    assert clf.score(G[400:], y[400:], lengths=L[400:]) > 0.85


def test_lengths_errors_name_the_argument():
    X, G, y, L = ragged_task(20)
    clf = RecurrentClassifier(**FAST)
    with pytest.raises(ValueError, match=r"^RecurrentClassifier.fit: lengths must satisfy 1 <= length <= 7"):
        clf.fit(X, y, lengths=L + 1)
    clf.fit(X, y, lengths=L)
    with pytest.raises(ValueError, match=r"^RecurrentClassifier.decision_function: lengths must have shape \(3,\)"):
        clf.predict(X[:3], lengths=L)
    seqs = [X[i, : L[i]] for i in range(20)]
    message = ("RecurrentClassifier.fit: lengths are for sequences padded to (n, T, F); ragged sequences (a list of "
               "(len_i, F) arrays or an awkward array) carry their own: pass lengths=None")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        RecurrentClassifier(**FAST).fit(seqs, y, lengths=L)
