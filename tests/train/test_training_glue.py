"""Numbers users see, checked against computations written here: ``evaluate`` (Python and CLI),
the tutorial's ROC AUC, resume with early stopping, and the epoch boundaries of stateful training.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bptt.data.arrays import write_npz
from bptt.model import Sequential

LAYOUT = "LSTM|6|3|8|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR"


def task(n=240, seed=0, dtype=np.float32):
    """A learnable toy task: is the mean of feature 0 over time positive?"""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8, 3)).astype(dtype)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(dtype)
    return X, y


# ───────────────────────────────────────────────────────────────────────────── evaluate


def bce_on_logits(o, y):
    o, y = np.asarray(o, np.float64), np.asarray(y, np.float64)
    return float(np.mean(np.maximum(o, 0) - o * y + np.log1p(np.exp(-np.abs(o)))))


def trained_binary_model():
    """A model with a standardizer and logits spread on both sides of 0 (and some in (0, 0.5),
    where accuracy on logits and on probabilities differ)."""
    X, y = task()
    model = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    model.fit(X, y, epochs=2, batch_size=20, learning_rate=1e-2, early_stopping=None, verbose=False)
    Xe, ye = task(n=200, seed=5)
    Xe = Xe * 1.5 + 0.3  # standardisation matters for these
    return model, Xe, ye


def independent_logits(model, X):
    """The network's outputs on X standardised with the stored statistics, by hand."""
    st = model.standardizer
    Xs = ((X - st.mean_) / st.std_).astype(model.dtype)
    return model.forward(Xs, training=False)[:, 0].astype(np.float64)


def test_evaluate_binary_matches_independent_computations():
    model, X, y = trained_binary_model()
    o = independent_logits(model, X)
    assert np.min(np.abs(o)) > 1e-5, "a logit at 0 would make the accuracy threshold ambiguous"
    assert np.any((o > 0) & (o < 0.5)), "the check of accuracy on probabilities needs logits in (0, 0.5)"
    result = model.evaluate(X, y)
    assert result["loss"] == pytest.approx(bce_on_logits(o, y), rel=1e-5)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, o), abs=1e-12)
    assert result["accuracy"] == pytest.approx(np.mean((o > 0) == (y == 1)), abs=1e-12)
    assert 0.6 < result["roc_auc"] < 1.0  # a learned model, not a constant one


def test_evaluate_softmax_and_mse():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 5, 3)).astype(np.float64)
    labels = rng.integers(0, 3, 90)
    model = Sequential.from_tmva("GRU|5|3|5|0|0,DENSE|3|IDENTITY", "5|3", loss="softmax_ce", seed=2, dtype=np.float64)
    o = model.forward(X, training=False)
    logp = o - o.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    result = model.evaluate(X, labels)
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(-np.mean(logp[np.arange(90), labels]), rel=1e-12)
    assert result["accuracy"] == pytest.approx(np.mean(np.argmax(o, axis=1) == labels), abs=1e-15)

    targets = rng.normal(size=90)
    reg = Sequential.from_tmva("RNN|4|3|5|0|0,DENSE|1|IDENTITY", "5|3", loss="mse", seed=2, dtype=np.float64)
    out = reg.forward(X, training=False)[:, 0]
    assert reg.evaluate(X, targets) == {"loss": pytest.approx(np.mean((out - targets) ** 2), rel=1e-12)}


def test_cli_evaluate_prints_the_independent_numbers(tmp_path):
    model, X, y = trained_binary_model()
    o = independent_logits(model, X)
    path = model.save(tmp_path / "m.bptt")
    data = write_npz(str(tmp_path / "e.npz"), X, y)
    report = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "bptt", "evaluate", path, data, "--json", str(report)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(report.read_text())
    assert result["events"] == len(X)
    assert result["loss"] == pytest.approx(bce_on_logits(o, y), rel=1e-5)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, o), abs=1e-12)
    assert result["accuracy"] == pytest.approx(np.mean((o > 0) == (y == 1)), abs=1e-12)
    assert f"roc_auc: {result['roc_auc']:.4f}" in run.stdout and f"accuracy: {result['accuracy']:.4f}" in run.stdout


# ───────────────────────────────────────────────────────────────────────────── tutorial

#: Test ROC AUC floors of the tutorial's methods at its defaults (2000 + 2000 events, 20 epochs,
#: TMVA's split: 1600 + 1600 for training, 400 + 400 for testing), one per method. Measured over
#: seeds 0-4 on 2026-12-07 with the tutorial as TMVA_RNN_Classification.C books it (commit 1761d33):
#:   LSTM 0.8589 0.8608 0.8571 0.8489 0.8561  (worst 0.849)
#:   GRU  0.7423 0.7467 0.7722 0.5302 0.7583  (worst 0.530)
#:   RNN  0.8275 0.7308 0.7967 0.7852 0.8089  (worst 0.731)
#:   DNN  0.6223 0.6252 0.6404 0.5880 0.6431  (worst 0.588)
#:   BDTG 0.8241 0.8475 0.8469 0.8439 0.8390  (worst 0.824)
#: Each floor is a margin (about 0.02-0.03) below the worst seed. They are lower than the old 0.88
#: (measured 2026-12-06 for the old tutorial: standardised inputs, orthogonal recurrent weights)
#: because the macro says VarTransform=None: the networks see the raw inputs (mean 33, spread 13),
#: which saturate tanh and the gates (the GRU at seed 3 stays near chance). That learning itself
#: is as strong as before is checked below with VarTransform=N (TUTORIAL_NORMALISED_AUC_FLOOR).
TUTORIAL_AUC_FLOORS = {"LSTM": 0.83, "GRU": 0.50, "RNN": 0.70, "DNN": 0.56, "BDT": 0.80}
#: The same recurrent networks with VarTransform=N (inputs normalised to [-1, 1]) on the same
#: events, seeds 0-4 on 2026-12-07: LSTM 0.913-0.933, GRU 0.914-0.929, RNN 0.912-0.927; the
#: generator's Bayes bound is about 0.93. The old tutorial's floor, kept: a bug that cripples
#: learning (in BPTT, the optimizer or the transform) falls below it.
TUTORIAL_NORMALISED_AUC_FLOOR = 0.88


def macro_events(path, per_class):
    """The macro's DataLoader, written out here: ten AddVariablesArray("vars_time{i}", 30), trees sgn
    and bkg, nTrain_Signal = nTrain_Background = int(0.8 × events per class), SplitMode=Random,
    SplitSeed=100, NormMode=NumEvents."""
    from bptt.data.loader import DataLoader

    loader = DataLoader("dataset")
    for i in range(10):
        loader.AddVariablesArray(f"vars_time{i}", 30)
    loader.AddSignalTree((str(path), "sgn"), 1.0)
    loader.AddBackgroundTree((str(path), "bkg"), 1.0)
    n = int(0.8 * per_class)
    return loader.PrepareTrainingAndTestTree(
        "", f"nTrain_Signal={n}:nTrain_Background={n}:SplitMode=Random:SplitSeed=100:NormMode=NumEvents:!V")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """The tutorial at its defaults (the figures above), run once for the module."""
    from bptt.tmva.tutorial import run_tutorial

    out = tmp_path_factory.mktemp("tutorial")
    return out, run_tutorial(str(out), verbose=False)


@pytest.fixture(scope="module")
def tutorial_split(tutorial):
    _, summary = tutorial
    ev = macro_events(summary["data"], 2000)
    X_train, y_train, _ = ev.train()
    X_test, y_test, _ = ev.test()
    return X_train, X_test, y_train, y_test


def test_tutorial_networks_learn(tutorial):
    _, summary = tutorial
    assert list(summary["networks"]) == ["LSTM", "GRU", "RNN", "DNN", "BDT"]
    for name, r in summary["networks"].items():
        assert r["roc_auc"] > TUTORIAL_AUC_FLOORS[name], name


def test_tutorial_reports_the_auc_of_its_model_files(tutorial, tutorial_split):
    """metrics.json's AUC and accuracy are those of the saved models on TMVA's test events (the 400
    + 400 the macro's DataLoader leaves out of training, read again here)."""
    out, summary = tutorial
    _, X_test, _, y_test = tutorial_split
    assert len(X_test) == summary["test_events"] == 800
    assert (np.sum(y_test == 1), np.sum(y_test == 0)) == (400, 400)
    written = json.loads((out / "metrics.json").read_text())
    assert written == summary
    for name, r in written["networks"].items():
        if name == "BDT":  # no model file; its scores: tests/tmva/test_mutants_tutorial_run.py
            continue
        X = X_test.reshape(len(X_test), -1) if name == "DNN" else X_test
        p = Sequential.load(str(out / r["model_file"])).predict_proba(X).reshape(len(X))
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y_test, p), abs=1e-12), name
        assert r["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y_test == 1)), abs=1e-12), name


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_the_tutorials_networks_with_normalised_inputs_keep_the_old_strength(tutorial_split, cell):
    """The macro's recurrent booking string with VarTransform=N instead of None, on the tutorial's
    events: test AUC ≥ 0.88, as the old tutorial (standardised inputs) reached."""
    import warnings

    from bptt.tmva import TMVAOptionWarning
    from bptt.tmva.network import network_from_options
    from bptt.tmva.tutorial import TUTORIAL_OPTIONS

    X_train, X_test, y_train, y_test = tutorial_split
    text = TUTORIAL_OPTIONS.format(cell=cell, epochs=20)
    assert "VarTransform=None" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TMVAOptionWarning)  # !H, V: display options
        model, args = network_from_options(text.replace("VarTransform=None", "VarTransform=N"), seed=0)
    model.fit(X_train, y_train, verbose=False, **args)
    p = model.predict_proba(X_test).reshape(len(X_test))
    assert roc_auc_score(y_test, p) >= TUTORIAL_NORMALISED_AUC_FLOOR, cell


# ────────────────────────────────────────────────────────── resume with early stopping

LEARNING_RATES = {"sgd": 0.3, "adam": 0.03, "adagrad": 0.1, "rmsprop": 0.01, "adadelta": 5.0}


class Interrupting:
    """The model's loss, raising KeyboardInterrupt (Ctrl-C) at its ``after``-th training batch."""

    def __init__(self, loss, after):
        self._loss, self.after, self.calls = loss, after, 0

    def __getattr__(self, name):
        return getattr(self._loss, name)

    def __call__(self, *a):
        return self._loss(*a)

    def value_and_grad(self, *a):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self._loss.value_and_grad(*a)


@pytest.mark.parametrize("optimizer", sorted(LEARNING_RATES))
def test_resume_with_early_stopping_equals_uninterrupted(tmp_path, optimizer):
    """Ctrl-C while the patience counter runs, then resume: the same epochs, the same stop, the
    same restored best weights as one uninterrupted run."""
    X, y = task(n=120)
    kw = dict(batch_size=20, optimizer=optimizer, learning_rate=LEARNING_RATES[optimizer], early_stopping=3,
              restore_best=True, verbose=False)
    full = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    h_full = full.fit(X, y, epochs=40, **kw)
    assert h_full.stopped_early, "the run must stop early for this test to mean anything"
    # the first epoch after which the counter is running (no improvement), before the stop
    best = np.minimum.accumulate(h_full.val_loss)
    waiting = [e for e in range(2, len(h_full.val_loss)) if h_full.val_loss[e - 1] >= best[e - 2]]
    assert waiting, "no epoch without improvement before the stop"
    cut = waiting[0]
    batches_per_epoch = 96 // 20 + 1  # 80 % of 120 events for training, the last batch partial

    ckpt = tmp_path / "run.ckpt"
    part = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    part.loss = Interrupting(part.loss, after=cut * batches_per_epoch + 2)  # during epoch cut + 1
    with pytest.raises(KeyboardInterrupt):
        part.fit(X, y, epochs=40, checkpoint=ckpt, **kw)
    resumed = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    h_res = resumed.fit(X, y, epochs=40, resume=ckpt, **kw)
    assert h_res.loss == h_full.loss and h_res.val_loss == h_full.val_loss
    assert (h_res.best_epoch, h_res.best_loss, h_res.stopped_early) == (h_full.best_epoch, h_full.best_loss, True)
    for k, p in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p, err_msg=k)


def test_restore_best_puts_back_the_best_epochs_weights():
    """restore_best=True ends with the weights of the best epoch: the weights of a run stopped
    by MaxEpochs exactly at that epoch."""
    X, y = task(n=120)
    kw = dict(batch_size=20, optimizer="sgd", learning_rate=0.3, verbose=False)
    m = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    h = m.fit(X, y, epochs=40, early_stopping=3, **kw)
    assert h.stopped_early and h.best_epoch < len(h.loss)
    at_best = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    at_best.fit(X, y, epochs=h.best_epoch, early_stopping=None, restore_best=False, **kw)
    for k, p in at_best.parameters().items():
        np.testing.assert_array_equal(m.parameters()[k], p, err_msg=k)
    kept = Sequential.from_tmva(LAYOUT, "8|3", seed=0)
    kept.fit(X, y, epochs=40, early_stopping=3, restore_best=False, **kw)
    assert not np.array_equal(kept.parameters()["0.W"], m.parameters()["0.W"])


# ────────────────────────────────────────────────────── stateful training: epoch boundaries


def stateful_model():
    return Sequential.from_tmva("LSTM|5|3|8|1|0,LINEAR", "8|3", seed=1, dtype=np.float64)


def hand_stateful_run(X, y, Xv, yv, *, epochs, batch, lr, reset_at_epoch_start=True):
    """Stateful training written out: batches in order carry the state; the state starts from
    zeros at every epoch and at every validation pass (which carries it from batch to batch)."""
    model = stateful_model()
    losses, val_losses = [], []
    for _ in range(epochs):
        if reset_at_epoch_start:
            model.reset_states()
        total = 0.0
        for s in range(0, len(X), batch):
            out = model.forward(X[s : s + batch], training=True)
            loss, dout = model.loss.value_and_grad(out, y[s : s + batch].reshape(out.shape))
            model.backward(dout)
            for k, p in model.parameters().items():
                p -= lr * model.gradients()[k]
            total += loss * batch
        losses.append(total / len(X))
        model.reset_states()
        val = 0.0
        for s in range(0, len(Xv), batch):
            out = model.forward(Xv[s : s + batch], training=False)
            val += model.loss(out, yv[s : s + batch].reshape(out.shape)) * batch
        val_losses.append(val / len(Xv))
    return model, losses, val_losses


def test_stateful_fit_resets_the_state_at_each_epoch():
    X, y = task(n=48, dtype=np.float64)
    Xv, yv = task(n=16, seed=9, dtype=np.float64)
    model = stateful_model()
    h = model.fit(X, y, epochs=3, batch_size=8, optimizer="sgd", learning_rate=0.1, validation_data=(Xv, yv),
                  shuffle=False, standardize=False, early_stopping=None, restore_best=False, verbose=False)
    hand, losses, val_losses = hand_stateful_run(X, y, Xv, yv, epochs=3, batch=8, lr=0.1)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-12)
    np.testing.assert_allclose(h.val_loss, val_losses, rtol=1e-12)
    for k, p in hand.parameters().items():
        np.testing.assert_allclose(model.parameters()[k], p, rtol=1e-12, atol=1e-15, err_msg=k)
    # the boundary matters: carrying validation's state into the next epoch trains differently
    _, leaked, _ = hand_stateful_run(X, y, Xv, yv, epochs=3, batch=8, lr=0.1, reset_at_epoch_start=False)
    assert abs(leaked[1] - losses[1]) > 1e-6

