"""The training loop: learning, early stopping, determinism, checkpoints and exact resume."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.model import Sequential

LAYOUT = "LSTM|6|3|8|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR"


def task(n=240, seed=0):
    """A learnable toy task: is the mean of feature 0 over time positive?"""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8, 3)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    return X, y


def model(seed=0, dropout=None):
    return Sequential.from_tmva(LAYOUT, "8|3", seed=seed, dropout=dropout)


def test_fit_learns_and_records_history():
    X, y = task()
    m = model()
    before = m.evaluate(X, y)["loss"]
    h = m.fit(X, y, epochs=15, batch_size=20, learning_rate=1e-2, early_stopping=None, verbose=False)
    assert len(h.loss) == len(h.val_loss) == len(h.seconds) == 15
    assert h.loss[-1] < 0.6 * h.loss[0]
    after = m.evaluate(X, y)
    assert after["loss"] < before and after["roc_auc"] > 0.9
    assert m.history is h and m.standardizer is not None


def test_early_stopping_restores_the_best_weights():
    X, y = task(n=120)
    m = model()
    h = m.fit(X, y, epochs=60, batch_size=10, learning_rate=3e-2, early_stopping=3, verbose=False)
    assert h.stopped_early and len(h.loss) < 60
    assert h.best_epoch == len(h.loss) - 3
    assert h.best_loss == min(h.val_loss)
    # the restored weights are the best epoch's: their validation loss is the best one
    from bptt.data.arrays import train_test_split

    split_seed = int(np.random.SeedSequence(0).spawn(2)[0].generate_state(1)[0])
    _, Xv, _, yv = train_test_split(X, y, 0.2, seed=split_seed)
    assert m.evaluate(Xv, yv)["loss"] == pytest.approx(h.best_loss, rel=1e-5)


def test_same_seed_same_training():
    X, y = task()
    a, b = model(), model()
    ha = a.fit(X, y, epochs=3, batch_size=16, verbose=False)
    hb = b.fit(X, y, epochs=3, batch_size=16, verbose=False)
    assert ha.loss == hb.loss
    for k, p in a.parameters().items():
        np.testing.assert_array_equal(p, b.parameters()[k])


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_resume_after_interruption_equals_uninterrupted(tmp_path, optimizer):
    """Train 6 epochs in one go, and 3 + resume to 6 from the checkpoint: identical weights.

    Dropout layers are included so that their random state must be checkpointed too."""
    X, y = task()
    kw = dict(batch_size=16, optimizer=optimizer, learning_rate=1e-2, momentum=0.5, early_stopping=None, verbose=False)
    full = model(dropout=[0.0, 0.2, 0.3])
    h_full = full.fit(X, y, epochs=6, **kw)

    ckpt = tmp_path / "run.ckpt"
    part = model(dropout=[0.0, 0.2, 0.3])
    part.fit(X, y, epochs=3, checkpoint=ckpt, **kw)
    resumed = model(dropout=[0.0, 0.2, 0.3])
    h_res = resumed.fit(X, y, epochs=6, resume=ckpt, **kw)
    assert h_res.loss == h_full.loss and h_res.val_loss == h_full.val_loss
    for k, p in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p)


def test_resume_checks_it_is_the_same_run(tmp_path):
    X, y = task()
    ckpt = tmp_path / "run.ckpt"
    model().fit(X, y, epochs=1, batch_size=16, checkpoint=ckpt, verbose=False)
    with pytest.raises(ValueError, match=r"fit: resume needs the same batch_size as the interrupted run: the checkpoint has 16, this call 32"):
        model().fit(X, y, epochs=2, batch_size=32, resume=ckpt, verbose=False)
    with pytest.raises(ValueError, match=r"fit: resume needs the same data"):
        model().fit(X[:-16], y[:-16], epochs=2, batch_size=16, resume=ckpt, verbose=False)
    with pytest.raises(ValueError, match=r"holds a different network"):
        Sequential.from_tmva("GRU|6|3|8|0|0,LINEAR", "8|3").fit(X, y, epochs=2, batch_size=16, resume=ckpt, verbose=False)


def test_fit_errors():
    X, y = task(n=40)
    m = model()
    with pytest.raises(ValueError, match=r"fit: epochs must be a positive integer; got 0"):
        m.fit(X, y, epochs=0)
    with pytest.raises(ValueError, match=r"fit: batch_size must be a positive integer; got -5"):
        m.fit(X, y, batch_size=-5)
    with pytest.raises(ValueError, match=r"fit: validation_split must be in \[0, 1\); got 1.5"):
        m.fit(X, y, validation_split=1.5)
    stateful = Sequential.from_tmva("LSTM|4|3|8|1|0,LINEAR", "8|3")
    with pytest.raises(ValueError, match=r"fit: shuffle must be False \(or None\) for a network with stateful layers \(LSTM"):
        stateful.fit(X, y, shuffle=True)
    h = stateful.fit(X, y, shuffle=False, drop_last=True, batch_size=8, epochs=2, verbose=False)
    assert len(h.loss) == 2


def test_divergence_is_reported_not_silent():
    """An identity RNN with a huge learning rate overflows float32: fit stops with a clear error
    instead of carrying NaN/Inf into the weights."""
    from bptt.layers import RNN, Dense

    X, y = task(n=60)
    m = Sequential([RNN(3, 6, activation="identity", return_sequences=False, seed=0), Dense(6, 1, seed=0)], loss="mse")
    with pytest.raises(FloatingPointError, match=r"fit: (the loss became (nan|inf)|the gradient norm became (nan|inf)|NaN or Inf inside the network) at epoch \d+, batch \d+: training diverged; lower the learning rate"):
        m.fit(X, y * 1e3, epochs=50, batch_size=10, learning_rate=1e4, optimizer="sgd", verbose=False)
    assert all(np.isfinite(p).all() for p in m.parameters().values())


def test_progress_output(capsys):
    X, y = task(n=60)
    model().fit(X, y, epochs=2, batch_size=20, verbose=True)
    err = capsys.readouterr().err
    assert "epoch 1/2  loss" in err and "val_loss" in err and "samples/s" in err


# ─────────────────────────── what mutation testing found unchecked in fit (docs/mutation.md)


def test_min_delta_is_the_improvement_that_counts():
    """An epoch counts as an improvement only when it beats the best loss by more than min_delta:
    with a huge min_delta nothing after the first epoch does, so early_stopping=1 stops at epoch 2."""
    X, y = task(n=80)
    h = model().fit(X, y, epochs=6, batch_size=16, early_stopping=1, min_delta=1e9, verbose=False)
    assert (len(h.loss), h.best_epoch, h.stopped_early) == (2, 1, True)


def test_checkpoint_every_saves_at_its_epochs(tmp_path):
    """checkpoint_every=2: after a Ctrl-C in epoch 3 the checkpoint holds epoch 2."""
    from bptt.io.model_file import load_checkpoint

    X, y = task(n=80)
    m = model()
    real = m.loss.value_and_grad
    calls = []

    def interrupting(*a):
        calls.append(1)
        if len(calls) == 2 * 5 + 1:  # 80 events in batches of 16, no validation: 5 a epoch; the first of epoch 3
            raise KeyboardInterrupt
        return real(*a)

    m.loss.value_and_grad = interrupting
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=5, batch_size=16, validation_split=0.0, checkpoint=ckpt, checkpoint_every=2,
              early_stopping=None, verbose=False)
    _, state, _ = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2


def test_the_recorded_training_loss_is_the_mean_over_the_epochs_batches():
    """One SGD epoch in one batch: the recorded loss is the untrained network's loss on the data,
    the binary cross-entropy written out here."""
    X, y = task(n=48)
    X = X.astype(np.float64)
    m = Sequential.from_tmva(LAYOUT, "8|3", seed=0, dtype=np.float64)
    logits = m.forward(X, training=False)[:, 0]
    expected = float(np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))))
    h = m.fit(X, y, epochs=1, batch_size=48, optimizer="sgd", validation_split=0.0, standardize=False,
              shuffle=False, verbose=False)
    assert h.loss[0] == pytest.approx(expected, rel=1e-12)
