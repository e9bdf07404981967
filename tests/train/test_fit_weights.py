"""Event weights in training and evaluation (issue 19): fit minimises Σ w ℓ / Σ w (TMVA's
weighted training), weight 2 trains as the event given twice, weight 0 as the event absent,
IgnoreNegWeightsInTraining, the validation part keeping its weights, checkpoints, evaluate's
weighted figures and the scikit-learn estimators' sample_weight. Oracles: scikit-learn's weighted
metrics, central differences, and runs on the repeated or reduced data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

from bptt import _fit_data, train
from bptt.gradcheck import numerical_gradient
from bptt.model import Sequential
from bptt.sklearn import RecurrentClassifier, RecurrentRegressor


def data(n, seed=0, T=5, Fe=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, Fe))
    y = (X[:, :, 0].mean(axis=1) + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def net(seed=2, loss="bce", out="LINEAR"):
    return Sequential.from_tmva(f"LSTM|4|3|5|0|0,{out}", "5|3", seed=seed, dtype=np.float64, loss=loss)


PLAIN = dict(optimizer="sgd", learning_rate=0.3, validation_split=0.0, standardize=False, shuffle=False,
             early_stopping=None, restore_best=False, verbose=False)


def same_parameters(a, b, **tol):
    for k, p in a.parameters().items():
        if tol:
            np.testing.assert_allclose(b.parameters()[k], p, err_msg=k, **tol)
        else:
            np.testing.assert_array_equal(b.parameters()[k], p, err_msg=k)


# ─────────────────────────────────────────────────────────────────────────────── fit


def test_weight_two_trains_as_the_event_given_twice():
    X, y = data(20, seed=1)
    w = np.ones(20)
    w[[3, 7, 8]] = 2.0
    repeated = np.r_[np.arange(20), 3, 7, 8]
    weighted, twice = net(), net()
    hw = weighted.fit(X, y, sample_weight=w, epochs=4, batch_size=64, **PLAIN)  # one batch per epoch
    ht = twice.fit(X[repeated], y[repeated], epochs=4, batch_size=64, **PLAIN)
    np.testing.assert_allclose(hw.loss, ht.loss, rtol=1e-12)
    same_parameters(twice, weighted, rtol=1e-10, atol=1e-13)
    unweighted = net()
    unweighted.fit(X, y, epochs=4, batch_size=64, **PLAIN)
    assert not np.allclose(unweighted.parameters()["0.W"], weighted.parameters()["0.W"], rtol=1e-6)


def test_fits_weighted_gradient_is_the_central_difference_of_the_weighted_loss():
    """One SGD step of fit on one batch moves every parameter by −lr · ∂/∂θ [Σ w ℓ / Σ w], the loss
    being scikit-learn's weighted log-loss, differentiated numerically; weights of both signs."""
    X, y = data(12, seed=2)
    w = np.random.default_rng(3).uniform(-0.5, 2.0, size=12)
    w[0] = 4.0
    start, stepped = net(seed=4), net(seed=4)
    lr = 1e-3
    stepped.fit(X, y, sample_weight=w, epochs=1, batch_size=12, **dict(PLAIN, learning_rate=lr))

    def weighted_loss():
        z = start.forward(X, training=False)[:, 0]
        return log_loss(y, 1 / (1 + np.exp(-z)), sample_weight=w)

    for k, p in start.parameters().items():
        numeric = numerical_gradient(weighted_loss, p)
        np.testing.assert_allclose((p - stepped.parameters()[k]) / lr, numeric, rtol=1e-5, atol=1e-8, err_msg=k)


def test_mini_batch_losses_add_up_to_the_weighted_mean():
    """Each batch's loss is Σ_batch w ℓ over its share (batch size · mean w) of the total weight:
    with a learning rate near 0 the epoch's recorded loss is the weighted mean over all events."""
    X, y = data(30, seed=5)
    w = np.random.default_rng(6).uniform(0.1, 3.0, size=30)
    model = net()
    h = model.fit(X, y, sample_weight=w, epochs=1, batch_size=7, **dict(PLAIN, learning_rate=1e-14))
    p = model.predict_proba(X)
    assert h.loss[0] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-10)


def test_the_validation_loss_is_weighted():
    X, y = data(30, seed=7)
    Xv, yv = data(11, seed=8)
    wv = np.random.default_rng(9).uniform(0.1, 3.0, size=11)
    model = net()
    h = model.fit(X, y, validation_data=(Xv, yv, wv), epochs=2, batch_size=8, **PLAIN)
    assert h.val_loss[-1] == pytest.approx(log_loss(yv, model.predict_proba(Xv), sample_weight=wv), rel=1e-10)
    plain = net()
    h = plain.fit(X, y, validation_data=(Xv, yv), epochs=2, batch_size=8, **PLAIN)
    assert h.val_loss[-1] == pytest.approx(log_loss(yv, plain.predict_proba(Xv)), rel=1e-10)


def test_the_split_keeps_each_events_weight():
    X, y = data(40, seed=10)
    w = 1.0 + np.arange(40) / 40  # each event's weight names it
    d = _fit_data.split(net(), X, y, None, 0.25, 5, w, False)
    Xt, yt, Xv, yv, wt, wv = d.Xt, d.yt, d.Xv, d.yv, d.wt, d.wv
    d0 = _fit_data.split(net(), X, y, None, 0.25, 5, None, False)
    Xt0, Xv0 = d0.Xt, d0.Xv
    np.testing.assert_array_equal(Xt, Xt0)  # the same split as without weights
    np.testing.assert_array_equal(Xv, Xv0)
    row = {X[i].tobytes(): i for i in range(40)}
    it, iv = [row[x.tobytes()] for x in Xt], [row[x.tobytes()] for x in Xv]
    np.testing.assert_array_equal(yt, y[it])
    np.testing.assert_allclose(wt, w[it] / w[it].mean(), rtol=1e-14)  # normalised to a mean of 1
    np.testing.assert_allclose(wv, w[iv] / w[iv].mean(), rtol=1e-14)
    model = net()
    h = model.fit(X, y, sample_weight=w, validation_split=0.25, seed=5, epochs=1, batch_size=8,
                  **{k: a for k, a in PLAIN.items() if k != "validation_split"})
    assert h.val_loss[0] == pytest.approx(log_loss(y[iv], model.predict_proba(X[iv]), sample_weight=w[iv]), rel=1e-10)


def test_weight_zero_is_the_event_absent_and_equal_weights_are_no_weights():
    X, y = data(30, seed=11)
    w = np.random.default_rng(12).uniform(0.5, 2.0, size=30)
    w[[2, 9, 10, 17]] = 0.0
    kw = dict(PLAIN, validation_split=0.2, shuffle=True, standardize=True, epochs=2, batch_size=6)
    with_zeros, without = net(), net()
    with_zeros.fit(X, y, sample_weight=w, **kw)
    keep = w != 0
    without.fit(X[keep], y[keep], sample_weight=w[keep], **kw)
    same_parameters(without, with_zeros)
    equal, none = net(), net()
    equal.fit(X, y, sample_weight=np.full(30, 0.7), **kw)
    none.fit(X, y, **kw)
    same_parameters(none, equal)


def test_ignore_negative_weights_leaves_those_events_out():
    X, y = data(30, seed=13)
    w = np.random.default_rng(14).uniform(-1.0, 2.0, size=30)
    w[4] = 0.0  # left out too
    kw = dict(PLAIN, validation_split=0.2, shuffle=True, epochs=2, batch_size=6)
    ignored, kept_out, signed = net(), net(), net()
    ignored.fit(X, y, sample_weight=w, ignore_negative_weights=True, **kw)
    positive = w > 0
    kept_out.fit(X[positive], y[positive], sample_weight=w[positive], **kw)
    same_parameters(kept_out, ignored)
    signed.fit(X, y, sample_weight=w, **kw)  # TMVA's default: negative weights count with their sign
    assert not np.allclose(signed.parameters()["0.W"], ignored.parameters()["0.W"])
    # the validation data too
    Xv, yv = data(9, seed=15)
    wv = np.r_[-1.0, np.linspace(0.5, 2.0, 8)]
    h = net().fit(X, y, validation_data=(Xv, yv, wv), ignore_negative_weights=True, **dict(PLAIN, epochs=1, batch_size=6))
    h1 = net().fit(X, y, validation_data=(Xv[1:], yv[1:], wv[1:]), **dict(PLAIN, epochs=1, batch_size=6))
    assert h.val_loss == h1.val_loss
    h2 = net().fit(X, y, validation_data=(Xv, yv, wv), **dict(PLAIN, epochs=1, batch_size=6))
    assert h2.val_loss != h1.val_loss  # without the option the negative weight counts


def test_ignore_negative_weights_keeps_validation_events_of_weight_zero():
    """They add nothing to the loss, but in a stateful network they hold their place in the batches."""
    X, y = data(16, seed=25)
    Xv, yv = data(7, seed=26)
    wv = np.array([0.0, -1.0, 1.0, 2.0, 0.5, 1.0, 1.5])
    stateful = lambda: Sequential.from_tmva("LSTM|4|3|5|1|0,LINEAR", "5|3", seed=2, dtype=np.float64)  # noqa: E731
    kw = dict(PLAIN, epochs=1, batch_size=3)
    h = stateful().fit(X, y, validation_data=(Xv, yv, wv), ignore_negative_weights=True, **kw)
    keep = wv >= 0
    h0 = stateful().fit(X, y, validation_data=(Xv[keep], yv[keep], wv[keep]), **kw)
    assert h.val_loss == h0.val_loss
    positive = wv > 0
    h1 = stateful().fit(X, y, validation_data=(Xv[positive], yv[positive], wv[positive]), **kw)
    assert h1.val_loss != h0.val_loss  # the place of the event of weight 0 matters here


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_weight": np.ones(5)}, "fit: sample_weight must have one weight per event, shape (12,); got shape (5,)"),
        ({"sample_weight": np.r_[np.ones(6), -np.ones(6)]},
         "fit: the training part's sample_weight sums to 0 over 12 events; the weighted loss Σ w·loss / Σ w needs a "
         "positive sum: check the weights (ignore_negative_weights=True leaves out events with negative weights; "
         "weights of zero leave events out)"),
        ({"sample_weight": -np.ones(12), "ignore_negative_weights": True},
         "fit: the training part's sample_weight sums to 0 over 0 events"),
        ({"ignore_negative_weights": "yes"}, "fit: ignore_negative_weights must be True or False; got 'yes'"),
        ({"validation_data": (np.zeros((2, 5, 3)), np.zeros(2), np.ones(2), np.ones(2))},
         "fit: validation_data must be a tuple (Xv, yv) or (Xv, yv, sample_weight); got tuple of 4 items"),
        ({"validation_data": [np.zeros((2, 5, 3))]},
         "fit: validation_data must be a tuple (Xv, yv) or (Xv, yv, sample_weight); got list of 1 items"),
        ({"validation_data": (np.zeros((2, 5, 3)), np.zeros(2), np.ones(3))},
         "fit: validation_data: sample_weight must have one weight per event, shape (2,); got shape (3,)"),
        ({"validation_data": (np.zeros((2, 5, 3)), np.zeros(2), np.r_[1.0, -1.0])},
         "fit: the validation part's sample_weight sums to 0 over 2 events"),
    ],
)
def test_weights_that_cannot_be_used_are_refused(kwargs, message):
    X, y = data(12)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        net().fit(X, y, **dict(PLAIN, epochs=1, **kwargs))


def test_a_checkpoint_from_before_ignore_negative_weights_resumes_as_false(tmp_path):
    from bptt.io.model_file import load_checkpoint, save_checkpoint

    X, y = data(30, seed=27)
    kw = dict(PLAIN, validation_split=0.2, shuffle=True, batch_size=6)
    whole = net()
    whole.fit(X, y, epochs=3, **kw)
    first = net()
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c", **kw)
    config, state, arrays = load_checkpoint(tmp_path / "c")
    del state["options"]["ignore_negative_weights"]  # as an earlier version wrote it
    save_checkpoint(tmp_path / "old", first, state, {k: a for k, a in arrays.items() if not k.startswith("param/")})
    resumed = net(seed=9)
    resumed.fit(X, y, epochs=3, resume=tmp_path / "old", **kw)
    same_parameters(whole, resumed)
    with pytest.raises(ValueError, match=r"^fit: resume needs the same ignore_negative_weights as the interrupted run: "
                                         r"the checkpoint has False, this call True$"):
        net().fit(X, y, epochs=3, resume=tmp_path / "old", ignore_negative_weights=True, **kw)


def test_validation_data_of_another_kind_is_named():
    X, y = data(12)
    message = "fit: validation_data must be a tuple (Xv, yv) or (Xv, yv, sample_weight); got dict"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        net().fit(X, y, validation_data={"X": 1, "y": 2}, **dict(PLAIN, epochs=1))


def test_a_weighted_run_resumes_exactly_and_refuses_other_weights(tmp_path):
    X, y = data(30, seed=16)
    w = np.random.default_rng(17).uniform(-0.2, 2.0, size=30)
    kw = dict(PLAIN, validation_split=0.2, shuffle=True, batch_size=6, sample_weight=w)
    whole = net()
    whole.fit(X, y, epochs=4, **kw)
    net().fit(X, y, epochs=2, checkpoint=tmp_path / "c", **kw)
    resumed = net(seed=50)
    resumed.fit(X, y, epochs=4, resume=tmp_path / "c", **kw)
    same_parameters(whole, resumed)
    with pytest.raises(ValueError, match=r"^fit: resume needs the same data as the interrupted run"):
        net().fit(X, y, epochs=4, resume=tmp_path / "c", **dict(kw, sample_weight=w * np.r_[2.0, np.ones(29)]))
    positive = dict(kw, sample_weight=np.abs(w) + 0.1)  # nothing to leave out: the same data either way
    net().fit(X, y, epochs=1, checkpoint=tmp_path / "p", **positive)
    with pytest.raises(ValueError, match=r"^fit: resume needs the same ignore_negative_weights as the interrupted run: "
                                         r"the checkpoint has False, this call True"):
        net().fit(X, y, epochs=4, resume=tmp_path / "p", ignore_negative_weights=True, **positive)


# ─────────────────────────────────────────────────────────────────────────────── evaluate


def test_weighted_evaluate_is_sklearns_weighted_metrics():
    X, y = data(40, seed=18)
    w = np.random.default_rng(19).uniform(0.1, 3.0, size=40)
    model = net()
    p = model.predict_proba(X)
    got = model.evaluate(X, y, sample_weight=w)
    assert got["loss"] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-10)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p, sample_weight=w), rel=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5, sample_weight=w), rel=1e-12)
    assert model.evaluate(X, y, sample_weight=np.ones(40)) == pytest.approx(model.evaluate(X, y), rel=1e-12)
    with pytest.raises(ValueError, match=re.escape("Sequential.evaluate: sample_weight must have one weight per event, shape (40,); got shape (39,)")):
        model.evaluate(X, y, sample_weight=w[1:])


def test_weighted_evaluate_for_softmax_and_mse():
    X, y = data(30, seed=20)
    w = np.random.default_rng(21).uniform(0.1, 3.0, size=30)
    labels = (np.arange(30) % 3).astype(np.int64)
    model = net(loss="softmax_ce", out="DENSE|3|IDENTITY")
    p = model.predict_proba(X)
    got = model.evaluate(X, labels, sample_weight=w)
    assert got["loss"] == pytest.approx(log_loss(labels, p, sample_weight=w), rel=1e-10)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, p.argmax(axis=1), sample_weight=w), rel=1e-12)
    reg = net(loss="mse")
    got = reg.evaluate(X, y, sample_weight=w)
    assert got["loss"] == pytest.approx(mean_squared_error(y, reg.predict(X)[:, 0], sample_weight=w), rel=1e-10)


# ─────────────────────────────────────────────────────────────────────────────── scikit-learn


FAST = dict(hidden_size=3, dense_units=4, epochs=3, batch_size=8, learning_rate=0.01)


@pytest.mark.parametrize("cls", [RecurrentClassifier, RecurrentRegressor])
def test_estimators_sample_weight_ones_is_none_and_zero_is_absent(cls):
    X, y = data(40, seed=22)
    X = X.astype(np.float32)
    a = cls(**FAST).fit(X, y)
    b = cls(**FAST).fit(X, y, sample_weight=np.ones(40))
    method = "predict_proba" if cls is RecurrentClassifier else "predict"
    np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X))
    w = np.random.default_rng(23).uniform(0.5, 2.0, size=40)
    w[[1, 5, 30]] = 0.0
    keep = w != 0
    c = cls(**FAST).fit(X, y, sample_weight=w)
    d = cls(**FAST).fit(X[keep], y[keep], sample_weight=w[keep])
    np.testing.assert_array_equal(getattr(c, method)(X), getattr(d, method)(X))
    assert not np.array_equal(getattr(c, method)(X), getattr(a, method)(X))


def test_estimators_refuse_all_zero_weights():
    X, y = data(10, seed=24)
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        RecurrentClassifier(**FAST).fit(X, y, sample_weight=np.zeros(10))
