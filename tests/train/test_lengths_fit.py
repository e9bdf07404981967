"""Lengths through fit/predict/evaluate and per-step targets (issue 20, points 3 and 4), against
outside oracles: the masked loss written out in NumPy, training on each sequence cut to its
length, PyTorch's packed LSTM with a per-step Linear and a masked BCE, scikit-learn's metrics on
the real steps, and garbage at the padded steps that must change nothing."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

from bptt import _fit_data, sequences, train
from bptt.layers import GRU, LSTM, RNN, Dense, Flatten
from bptt.losses import make_loss
from bptt.model import Sequential
from problems import frozen_optimizer as Frozen

PLAIN = dict(standardize=False, shuffle=False, validation_split=0.0, early_stopping=None, verbose=False,
             restore_best=False)
N, T, F, H = 9, 6, 3, 4
LENGTHS = np.array([6, 1, 3, 5, 2, 6, 4, 1, 3])


def data(seed=0, n=N, per_step=True, classes=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F))
    if classes:
        y = rng.integers(0, classes, size=(n, T) if per_step else n)
    else:
        y = (rng.random((n, T) if per_step else n) < 0.5).astype(np.float64)
    return X, y


def per_step_net(cell=LSTM, out=1, loss="bce", seed=0, **kw):
    return Sequential([cell(F, H, return_sequences=True, dtype=np.float64, seed=seed, **kw),
                       Dense(H, out, dtype=np.float64, seed=seed + 1)], loss=loss)


def last_step_net(cell=LSTM, seed=0, **kw):
    return Sequential([cell(F, H, dtype=np.float64, seed=seed, **kw), Dense(H, 1, dtype=np.float64, seed=seed + 1)])


def mask_of(L):
    return np.arange(T)[None, :] < np.asarray(L)[:, None]


def garbage(X, L, value=1e30):
    G = np.array(X, copy=True)
    G[~mask_of(L)] = value
    return G


# ─────────────────────────────────────────────────────────────────── the masked loss by hand


def test_masked_bce_and_its_gradient_written_out():
    rng = np.random.default_rng(1)
    out = rng.normal(size=(4, 5, 1))
    y = (rng.random((4, 5)) < 0.5).astype(float)
    L = np.array([5, 2, 1, 4])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    m = np.arange(5)[None, :] < L[:, None]
    x = out[..., 0]
    ell = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0) - x * y  # per-step BCE on logits
    W = (w[:, None] * m).sum()
    expected = (w[:, None] * m * ell).sum() / W
    grad = w[:, None] * m * (1 / (1 + np.exp(-x)) - y) / W
    value, g = sequences.loss_and_grad(make_loss("bce"), out, y[..., None], L, w)
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(g[..., 0], grad, rtol=1e-12, atol=1e-15)
    assert not g[~m].any()
    # unweighted: the plain mean over the 12 real steps
    value, _ = sequences.loss_and_grad(make_loss("bce"), out, y[..., None], L)
    assert value == pytest.approx((m * ell).sum() / 12, rel=1e-13)


def test_masked_softmax_ce_and_mse_written_out():
    rng = np.random.default_rng(2)
    out = rng.normal(size=(3, 4, 3))
    k = rng.integers(0, 3, size=(3, 4))
    L = np.array([4, 1, 2])
    w = np.array([1.0, 4.0, 0.5])
    m = np.arange(4)[None, :] < L[:, None]
    logp = out - np.log(np.exp(out).sum(-1, keepdims=True))
    ell = -np.take_along_axis(logp, k[..., None], -1)[..., 0]
    value, g = sequences.loss_and_grad(make_loss("softmax_ce"), out, k, L, w)
    assert value == pytest.approx((w[:, None] * m * ell).sum() / (w[:, None] * m).sum(), rel=1e-13)
    assert not g[~m].any()
    target = rng.normal(size=(3, 4, 3))
    value, g = sequences.loss_and_grad(make_loss("mse"), out, target, L)
    sq = ((out - target) ** 2).mean(-1)
    assert value == pytest.approx(sq[m].mean(), rel=1e-13)
    np.testing.assert_allclose(g[m], 2 * (out - target)[m] / 3 / m.sum(), rtol=1e-12)


# ───────────────────────────────────────────────── training with lengths = training cut sequences


def one_by_one(net, X, y, L, order, **kw):
    """SGD on each sequence cut to its length, one after the other (batches of one). fit with
    lengths gives the same weights to rounding (1e-12: a bias gradient sums the padded steps'
    zeros too, in another order)."""
    for b in order:
        target = y[b : b + 1, : L[b]] if np.ndim(y) == 2 else y[b : b + 1]
        net.fit(X[b : b + 1, : L[b]], target, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.1,
                **PLAIN, **kw)
    return net


@pytest.mark.parametrize("cell", [LSTM, GRU, RNN])
def test_fit_with_lengths_equals_sgd_on_each_sequence_cut_to_its_length(cell):
    X, y = data(3)
    model = per_step_net(cell)
    model.fit(X, y, lengths=LENGTHS, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.1, **PLAIN)
    oracle = one_by_one(per_step_net(cell), X, y, LENGTHS, range(N))
    for k, p in model.parameters().items():
        np.testing.assert_allclose(p, oracle.parameters()[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # a sequence-level target (the output after each sequence's last real step)
    Xs, ys = data(4, per_step=False)
    model = last_step_net(cell)
    model.fit(Xs, ys, lengths=LENGTHS, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.1, **PLAIN)
    oracle = one_by_one(last_step_net(cell), Xs, ys, LENGTHS, range(N))
    for k, p in model.parameters().items():
        np.testing.assert_allclose(p, oracle.parameters()[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_lengths_are_shuffled_with_their_rows(monkeypatch):
    """The batch order fit draws (recorded as it is drawn) applied to the cut sequences one by one."""
    orders = []
    original = train.iterate_batches

    def recording(n, batch_size, rng=None, drop_last=False):
        batches = list(original(n, batch_size, rng, drop_last))
        orders.append([int(i) for idx in batches for i in idx])
        return iter(batches)

    monkeypatch.setattr(train, "iterate_batches", recording)
    X, y = data(5)
    model = per_step_net(GRU)
    model.fit(X, y, lengths=LENGTHS, epochs=2, batch_size=1, optimizer="sgd", learning_rate=0.1,
              **dict(PLAIN, shuffle=True), seed=7)
    assert len(orders) == 2 and orders[0] != list(range(N))
    oracle = one_by_one(per_step_net(GRU), X, y, LENGTHS, orders[0] + orders[1])
    for k, p in model.parameters().items():
        np.testing.assert_allclose(p, oracle.parameters()[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_the_validation_split_keeps_each_sequences_lengths():
    X, y = data(6, n=20)
    L = np.random.default_rng(6).integers(1, T + 1, size=20)
    model = per_step_net()
    h = model.fit(X, y, lengths=L, epochs=1, batch_size=4, **dict(PLAIN, validation_split=0.3))
    d = _fit_data.split(per_step_net(), X, y, None, 0.3, 0, None, False, L)
    row = {X[i, 0].tobytes(): i for i in range(20)}
    iv = [row[x[0].tobytes()] for x in d.Xv]
    assert len(iv) == 6
    expected = model.evaluate(X[iv], y[iv], lengths=L[iv])["loss"]
    assert h.val_loss[0] == pytest.approx(expected, rel=1e-12)


# ─────────────────────────────────────────────────────── PyTorch: packed LSTM, Linear, masked BCE


def test_per_step_gradients_equal_torch_packed_lstm_linear_and_masked_bce():
    X, y = data(7)
    w = np.random.default_rng(7).uniform(0.2, 3.0, size=N)
    model = per_step_net(LSTM, bias_initializer="glorot_uniform")
    lstm, dense = model.layers
    w_steps = w * LENGTHS.sum() / np.dot(w, LENGTHS)  # fit's normalisation: a mean of 1 per real step
    loss, n_terms = train._batch_step(model, X, y[..., None], w_steps, LENGTHS)
    assert n_terms == LENGTHS.sum()
    net = torch.nn.LSTM(F, H, batch_first=True).double()
    lin = torch.nn.Linear(H, 1).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(lstm.params["W"].T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(lstm.params["U"].T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(lstm.params["b"].copy()))
        net.bias_hh_l0.zero_()
        lin.weight.copy_(torch.from_numpy(dense.params["W"].T.copy()))
        lin.bias.copy_(torch.from_numpy(dense.params["b"].copy()))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), torch.from_numpy(LENGTHS),
                                                     batch_first=True, enforce_sorted=False)
    h, _ = torch.nn.utils.rnn.pad_packed_sequence(net(packed)[0], batch_first=True, total_length=T)
    logits = lin(h)[..., 0]
    ell = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y), reduction="none")
    m = torch.from_numpy(mask_of(LENGTHS).astype(np.float64)) * torch.from_numpy(w)[:, None]
    value = (ell * m).sum() / m.sum()
    value.backward()
    assert loss == pytest.approx(value.item(), rel=1e-12)
    grads = model.gradients()
    pairs = {"0.W": net.weight_ih_l0.grad.T, "0.U": net.weight_hh_l0.grad.T, "0.b": net.bias_ih_l0.grad,
             "1.W": lin.weight.grad.T, "1.b": lin.bias.grad}
    for k, g in pairs.items():
        np.testing.assert_allclose(grads[k], g.numpy(), rtol=0, atol=1e-10, err_msg=k)


# ───────────────────────────────────────────────────────── evaluate against scikit-learn's metrics


def trained(loss="bce", out=1, seed=8, classes=None):
    X, y = data(seed, n=30, classes=classes)
    L = np.random.default_rng(seed).integers(1, T + 1, size=30)
    model = per_step_net(GRU, out=out, loss=loss)
    model.fit(X, y, lengths=L, epochs=2, batch_size=10, learning_rate=0.05, **PLAIN)
    return model, X, y, L


def test_per_step_evaluate_pools_the_real_steps_as_sklearn_does():
    model, X, y, L = trained()
    w = np.random.default_rng(9).uniform(0.1, 2.0, size=len(X))
    m = mask_of(L)
    p = model.predict_proba(X, lengths=L)
    assert p.shape == (len(X), T) and not p[~m].any()
    steps_w = np.broadcast_to(w[:, None], m.shape)[m]
    result = model.evaluate(X, y, sample_weight=w, lengths=L)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y[m], p[m], sample_weight=steps_w), rel=1e-12)
    assert result["accuracy"] == pytest.approx(accuracy_score(y[m], p[m] >= 0.5, sample_weight=steps_w), rel=1e-12)
    assert result["loss"] == pytest.approx(log_loss(y[m], p[m], sample_weight=steps_w), rel=1e-6)
    plain = model.evaluate(X, y, lengths=L)
    assert plain["roc_auc"] == pytest.approx(roc_auc_score(y[m], p[m]), rel=1e-12)
    labels = model.predict(X, lengths=L)
    np.testing.assert_array_equal(labels[m], (p[m] >= 0.5).astype(int))
    assert not labels[~m].any()


def test_per_step_softmax_and_regression_evaluate_as_sklearn():
    model, X, k, L = trained("softmax_ce", out=3, classes=3)
    m = mask_of(L)
    P = model.predict_proba(X, lengths=L)
    assert P.shape == (len(X), T, 3) and not P[~m].any()
    result = model.evaluate(X, k, lengths=L)
    assert result["accuracy"] == pytest.approx(accuracy_score(k[m], P[m].argmax(-1)), rel=1e-12)
    assert result["loss"] == pytest.approx(log_loss(k[m], P[m], labels=[0, 1, 2]), rel=1e-6)
    np.testing.assert_array_equal(model.predict(X, lengths=L)[m], P[m].argmax(-1))
    rng = np.random.default_rng(10)
    X, _ = data(10, n=30)
    target = rng.normal(size=(30, T, 2))
    L = rng.integers(1, T + 1, size=30)
    reg = per_step_net(RNN, out=2, loss="mse")
    reg.fit(X, target, lengths=L, epochs=2, batch_size=10, **PLAIN)
    pred = reg.predict(X, lengths=L)
    m = mask_of(L)
    assert pred.shape == (30, T, 2) and not pred[~m].any()
    assert reg.evaluate(X, target, lengths=L)["loss"] == pytest.approx(mean_squared_error(target[m], pred[m]), rel=1e-12)


# ─────────────────────────────────────────────────────── padded steps hold garbage: nothing changes


@pytest.mark.parametrize("value", [1e30, -7e12, np.nan])
def test_garbage_at_padded_steps_changes_no_loss_gradient_metric_or_prediction(value):
    X, y = data(11)
    Xg = garbage(X, LENGTHS, value)
    yg = np.where(mask_of(LENGTHS), y, 5.0 if np.isfinite(value) else value)  # no label at all there
    m = mask_of(LENGTHS)
    model = per_step_net(GRU, seed=3)
    clean = train._batch_step(model, X, y[..., None], None, LENGTHS)[0], model.gradients()
    clean = clean[0], {k: g.copy() for k, g in clean[1].items()}
    dirty = train._batch_step(model, np.where(m[..., None], X, 0.0), y[..., None], None, LENGTHS)[0]
    assert dirty == clean[0]
    a = Sequential.from_config(model.config())
    a.set_parameters(model.parameters())
    b = Sequential.from_config(model.config())
    b.set_parameters(model.parameters())
    a.fit(X, y, lengths=LENGTHS, epochs=2, batch_size=3, **dict(PLAIN, standardize=True, validation_split=0.3))
    b.fit(Xg, yg, lengths=LENGTHS, epochs=2, batch_size=3, **dict(PLAIN, standardize=True, validation_split=0.3))
    for k, p in a.parameters().items():
        np.testing.assert_array_equal(p, b.parameters()[k], err_msg=k)
    np.testing.assert_array_equal(a.history.val_loss, b.history.val_loss)
    np.testing.assert_array_equal(a.standardizer.mean_, b.standardizer.mean_)
    np.testing.assert_array_equal(a.predict_proba(X, lengths=LENGTHS), b.predict_proba(Xg, lengths=LENGTHS))
    assert a.evaluate(X, y, lengths=LENGTHS) == b.evaluate(Xg, yg, lengths=LENGTHS)


def test_the_input_transformation_is_fitted_on_real_steps_only():
    X, y = data(12)
    model = per_step_net()
    model.fit(garbage(X, LENGTHS, 1e6), y, lengths=LENGTHS, epochs=1, **dict(PLAIN, standardize=True))
    real = X[mask_of(LENGTHS)]  # (real steps, F)
    np.testing.assert_allclose(model.standardizer.mean_, real.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.standardizer.std_, real.std(axis=0), rtol=1e-12)
    from bptt.transforms import VarTransform

    t = VarTransform("N").fit(garbage(X, LENGTHS, 1e6), lengths=LENGTHS)
    present = np.repeat(mask_of(LENGTHS), F, axis=1)
    flat = X.reshape(N, -1)
    lo = [flat[present[:, j], j].min() for j in range(T * F)]
    hi = [flat[present[:, j], j].max() for j in range(T * F)]
    np.testing.assert_array_equal(t.steps_[0]["min"], lo)
    np.testing.assert_array_equal(t.steps_[0]["max"], hi)
    with pytest.raises(ValueError, match=r"D decorrelates the T·F variables of whole events, but lengths leave steps"):
        VarTransform("N,D").fit(X, lengths=LENGTHS)
    with pytest.raises(ValueError, match=r"needs one class per event, y of shape \(9,\); got y of shape \(9, 6\)"):
        VarTransform("N_Signal").fit(X, y, lengths=LENGTHS)


# ────────────────────────────────────────────────────────────────────────── stateful networks


def test_a_stateful_network_carries_the_state_after_each_sequences_last_real_step():
    """Row k of the second batch continues row k of the first from its last real step: the same
    outputs as one sequence made of the two cut pieces."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(6, T, F))
    L = np.array([2, 6, 1, 4, 3, 5])
    model = last_step_net(LSTM, stateful=True)
    out = model.decision_function(X, batch_size=3, lengths=L)
    twin = last_step_net(LSTM)
    for k in range(3):
        joined = np.concatenate([X[k, : L[k]], X[3 + k, : L[3 + k]]])[None]
        assert out[3 + k] == pytest.approx(twin.decision_function(joined)[0], rel=1e-12)
    # training goes through the same path: the first epoch's loss on batches of 3 in order
    y = (rng.random(6) < 0.5).astype(float)
    h = last_step_net(LSTM, stateful=True).fit(X, y, lengths=L, epochs=1, batch_size=3, optimizer=Frozen(0.1),
                                                 **PLAIN)
    expected = log_loss(y, 1 / (1 + np.exp(-out)), labels=[0, 1])
    assert h.loss[0] == pytest.approx(expected, rel=1e-10)


# ───────────────────────────────────────────────── validation, early stopping, checkpoints, history


def test_validation_data_with_lengths_early_stopping_and_an_exact_resume(tmp_path):
    X, y = data(14, n=24)
    L = np.random.default_rng(14).integers(1, T + 1, size=24)
    Xv, yv = data(15, n=8)
    Lv = np.random.default_rng(15).integers(1, T + 1, size=8)
    kw = dict(lengths=L, validation_data=(Xv, yv), validation_lengths=Lv, batch_size=6, learning_rate=0.05,
              verbose=False, shuffle=True, seed=3)
    whole = per_step_net(GRU)
    h = whole.fit(X, y, epochs=4, **kw)
    assert len(h.val_loss) == 4 and h.best_epoch is not None
    assert h.val_loss[-1] == pytest.approx(per_step_net(GRU).evaluate(Xv, yv, lengths=Lv)["loss"], rel=0.5)
    first = per_step_net(GRU)
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c", **kw)
    resumed = per_step_net(GRU, seed=5)
    h2 = resumed.fit(X, y, epochs=4, resume=tmp_path / "c", **kw)
    assert h2.loss == h.loss and h2.val_loss == h.val_loss
    for k, p in whole.parameters().items():
        np.testing.assert_array_equal(p, resumed.parameters()[k])
    with pytest.raises(ValueError, match="resume needs the same data"):
        per_step_net(GRU).fit(X, y, epochs=4, resume=tmp_path / "c", **dict(kw, lengths=np.maximum(L - 1, 1)))
    with pytest.raises(ValueError, match="validation_lengths are the lengths of validation_data's sequences"):
        per_step_net(GRU).fit(X, y, lengths=L, validation_lengths=Lv, epochs=1, verbose=False)


def test_the_validation_loss_is_the_masked_mean_of_the_held_out_steps():
    X, y = data(16, n=12)
    L = np.random.default_rng(16).integers(1, T + 1, size=12)
    Xv, yv = data(17, n=5)
    Lv = np.array([1, 6, 2, 3, 4])
    wv = np.array([0.5, 1.0, 2.0, 3.0, 1.5])
    model = per_step_net(RNN)
    h = model.fit(X, y, lengths=L, validation_data=(Xv, yv, wv), validation_lengths=Lv, epochs=1, batch_size=2,
                  optimizer=Frozen(0.1), **{k: a for k, a in PLAIN.items() if k != "validation_split"})
    p = model.predict_proba(Xv, lengths=Lv)
    m = mask_of(Lv)
    steps_w = np.broadcast_to(wv[:, None], m.shape)[m]
    assert h.val_loss[0] == pytest.approx(log_loss(yv[m], p[m], sample_weight=steps_w), rel=1e-10)
    q = model.predict_proba(X, lengths=L)
    mt = mask_of(L)
    assert h.loss[0] == pytest.approx(log_loss(y[mt], q[mt]), rel=1e-10)  # lr 0: the epoch's masked mean


def test_weighted_per_step_training_minimises_the_weighted_mean_over_real_steps():
    """Batches of different numbers of real steps add up to Σ w ℓ / Σ w over all real steps."""
    X, y = data(18, n=10)
    L = np.array([1, 6, 2, 6, 3, 1, 5, 4, 2, 6])
    w = np.random.default_rng(18).uniform(0.2, 3.0, size=10)
    model = per_step_net(LSTM)
    h = model.fit(X, y, lengths=L, sample_weight=w, epochs=1, batch_size=3, optimizer=Frozen(0.1),
                  **PLAIN)
    p = model.predict_proba(X, lengths=L)
    m = mask_of(L)
    assert h.loss[0] == pytest.approx(log_loss(y[m], p[m], sample_weight=np.broadcast_to(w[:, None], m.shape)[m]),
                                      rel=1e-10)


# ─────────────────────────────────────────────────────────────────────────────── messages


@pytest.mark.parametrize(
    "lengths, message",
    [
        (np.ones(N, np.float64), "fit: lengths must be integers (the number of real steps of each sequence); got "
                                  "dtype float64; convert it with lengths.astype(np.int64)"),
        (np.ones(N - 1, int), "fit: lengths must have shape (9,), one length per sequence; got shape (8,)"),
        (np.r_[LENGTHS[:-1], 0], "fit: lengths must satisfy 1 <= length <= 6 (the padded length T); sequence 8 has "
                                 "length 0"),
        (np.r_[7, LENGTHS[1:-1], 0], "fit: lengths must satisfy 1 <= length <= 6 (the padded length T); sequence 0 "
                                     "has length 7 (2 sequences out of range)"),
    ],
)
def test_bad_lengths_are_named(lengths, message):
    X, y = data(19)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        per_step_net().fit(X, y, lengths=lengths, **PLAIN)


@pytest.mark.parametrize(
    "net, y_shape, message",
    [
        (lambda: per_step_net(), (N, T, 2), "fit: y must have shape (n, 6) 0/1 labels per step (or (n, 6, 1)) for this "
                                             "network's outputs of shape (n, 6, 1) with n = 9; got shape (9, 6, 2)"),
        (lambda: per_step_net(), (N,), "fit: y must have shape (n, 6) 0/1 labels per step (or (n, 6, 1)) for this "
                                       "network's outputs of shape (n, 6, 1) with n = 9; got shape (9,)"),
        (lambda: per_step_net(out=3, loss="softmax_ce"), (N, T, 1),
         "fit: y must have shape (n, 6) class indices per step or (n, 6, 3) class probabilities per step for this "
         "network's outputs of shape (n, 6, 3) with n = 9; got shape (9, 6, 1)"),
        (lambda: per_step_net(out=2, loss="mse"), (N, T), "fit: y must have shape (n, 6, 2) values per step for this "
                                                          "network's outputs of shape (n, 6, 2) with n = 9; got shape (9, 6)"),
        (lambda: last_step_net(), (N, T), "fit: y must have shape (n,) 0/1 labels (or (n, 1)) for this network's "
                                          "outputs of shape (n, 1) with n = 9; got shape (9, 6)"),
    ],
)
def test_targets_of_the_wrong_shape_name_the_shapes_this_network_takes(net, y_shape, message):
    X, _ = data(20)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        net().fit(X, np.zeros(y_shape), lengths=LENGTHS, **PLAIN)


def test_what_cannot_take_lengths_says_so(monkeypatch):
    X, y = data(21)
    flat_first = Sequential([Flatten(), Dense(T * F, 1, dtype=np.float64)])
    with pytest.raises(ValueError, match=r"^Sequential.decision_function: lengths count the input's time steps, "
                                         r"but a Flatten layer comes before the first recurrent layer"):
        flat_first.predict_proba(X, lengths=LENGTHS)
    with pytest.raises(ValueError, match=r"^fit: lengths count the steps of sequences X of shape \(n, T, F\); got X of "
                                         r"shape \(9, 18\)"):
        Sequential([Dense(T * F, 1, dtype=np.float64)]).fit(X.reshape(N, -1), y[:, 0], lengths=LENGTHS, **PLAIN)
    from bptt.scale.mpi import DataParallel

    monkeypatch.setattr(train, "_data_parallel", DataParallel(None))
    with pytest.raises(ValueError, match=r"^fit: MPI data-parallel training \(bptt.scale.mpi\) takes neither lengths "
                                         r"nor per-step targets yet"):
        per_step_net().fit(X, y, lengths=LENGTHS, **PLAIN)
    with pytest.raises(ValueError, match=r"takes neither lengths nor per-step targets yet"):
        per_step_net().fit(X, y, **PLAIN)


def test_per_step_targets_without_lengths_use_every_step():
    """(n, T, 1) labels, the shape fit used to refuse: the mean over all n·T steps."""
    X, y = data(22, n=40)
    model = per_step_net()
    h = model.fit(X, y[..., None], epochs=1, batch_size=40, optimizer=Frozen(0.1), **PLAIN)
    p = model.predict_proba(X)
    assert p.shape == (40, T)
    assert h.loss[0] == pytest.approx(log_loss(y.ravel(), p.ravel()), rel=1e-10)
    assert model.evaluate(X, y)["loss"] == pytest.approx(h.loss[0], rel=1e-12)
    assert math.isfinite(model.evaluate(X, y[..., None], lengths=np.full(40, T))["roc_auc"])
