"""Stateful networks (TMVA rememberState, Keras stateful=True) end to end (issue 19, point 2):
repeatable predictions that start from zeros, keep-state calls that continue like one call,
partial batches, training in the data's order with validation that leaves the training state
alone, and the command line. Oracles: the functional primitives with h0/c0 carried by hand, and
a non-stateful twin of the network given the carried states explicitly."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from bptt import functional as F
from bptt import train
from bptt.data.arrays import write_npz
from bptt.model import Sequential


def data(n, seed=0, T=6, Fe=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, Fe))
    y = (X[:, :, 0].mean(axis=1) + 0.3 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def stateful(cell="LSTM", seed=3, stateful=1):
    return Sequential.from_tmva(f"{cell}|4|3|6|{stateful}|0,LINEAR", "6|3", seed=seed, dtype=np.float64)


def hand_outputs(model, X, batch_size, state=None):
    """The network's outputs by the functional primitives, batches in order, stream k of a batch
    continuing stream k of the one before (a smaller batch continues the first streams and leaves
    the others' state alone). Returns (outputs, state after the last batch)."""
    rec, dense = model.layers
    p = rec.params
    outs = []
    for s in range(0, len(X), batch_size):
        x = X[s : s + batch_size]
        B = len(x)
        init = {} if state is None else {k: a[:B] for k, a in state.items()}
        if type(rec).__name__ == "LSTM":
            h, cache = F.lstm_forward(x, p["W"], p["U"], p["b"], **init)
            final = {"h0": h[:, -1], "c0": cache.c[:, -1]}
        elif type(rec).__name__ == "GRU":
            h, _ = F.gru_forward(x, p["W"], p["U"], p["b"], p["b_u"], reset_after=rec.reset_after, **init)
            final = {"h0": h[:, -1]}
        else:
            h, _ = F.rnn_forward(x, p["W"], p["U"], p["b"], activation=rec.activation, **init)
            final = {"h0": h[:, -1]}
        state = final if state is None else {k: np.r_[a, state[k][B:]] for k, a in final.items()}
        outs.append(h[:, -1] @ dense.params["W"] + dense.params["b"])
    return np.concatenate(outs)[:, 0], state


# ─────────────────────────────────────────────────────────────────────────── predictions


def test_the_same_evaluate_twice_gives_the_same_numbers():
    """The issue's report: the same evaluate gave AUC 0.3616, then 0.4112."""
    model = stateful()
    X, y = data(50, seed=1)
    first = model.evaluate(X, y, batch_size=8)
    assert model.evaluate(X, y, batch_size=8) == first
    z, _ = hand_outputs(model, X, 8)
    p = 1 / (1 + np.exp(-z))
    assert first["loss"] == pytest.approx(log_loss(y, p), rel=1e-10)
    assert first["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert first["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    np.testing.assert_array_equal(model.predict_proba(X, 8), model.predict_proba(X, 8))


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_keep_state_continues_like_one_call(cell):
    model = stateful(cell)
    X, _ = data(16, seed=2)
    one_call = model.decision_function(X, batch_size=8)
    expected, state = hand_outputs(model, X, 8)
    np.testing.assert_allclose(one_call, expected, rtol=1e-12)
    halves = np.r_[model.decision_function(X[:8]), model.decision_function(X[8:], reset_states=False)]
    np.testing.assert_allclose(halves, expected, rtol=1e-12)
    # afterwards the network holds the state after the last batch, as Keras leaves it
    for k, a in state.items():
        np.testing.assert_allclose(model.layers[0].get_state()[k], a, rtol=1e-12)
    # without the carried state the second half differs: the state matters in this test
    assert not np.allclose(model.decision_function(X[8:]), expected[8:])


def test_partial_batches_in_predict_continue_the_first_streams():
    model = stateful()
    X, _ = data(10, seed=3)
    expected, state = hand_outputs(model, X, 4)  # batches of 4, 4, 2
    np.testing.assert_allclose(model.decision_function(X, batch_size=4), expected, rtol=1e-12)
    X2, _ = data(4, seed=4)
    more, _ = hand_outputs(model, X2, 4, state)
    np.testing.assert_allclose(model.decision_function(X2, batch_size=4, reset_states=False), more, rtol=1e-12)


@pytest.mark.parametrize("method", ["decision_function", "predict_proba", "predict"])
def test_prediction_options_are_checked(method):
    model = stateful()
    X, _ = data(3)
    with pytest.raises(ValueError, match=f"^Sequential.decision_function: reset_states must be True or False; got 'no'$"):
        getattr(model, method)(X, reset_states="no")
    message = "Sequential.decision_function: batch_size must be a positive integer (events per forward pass); got 0"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        getattr(model, method)(X, 0)


def test_prediction_options_of_numpy_types_and_edge_values():
    model = stateful()
    X, _ = data(5, seed=12)
    expected, _ = hand_outputs(model, X, 1)
    np.testing.assert_allclose(model.decision_function(X, np.int64(1), reset_states=np.True_), expected, rtol=1e-12)
    more, _ = hand_outputs(model, X, 1, model.layers[0].get_state())
    np.testing.assert_allclose(model.decision_function(X, 1, reset_states=np.False_), more, rtol=1e-12)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(events per forward pass\); got True$"):
        model.predict(X, True)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(events per forward pass\); got 2.0$"):
        model.predict(X, 2.0)
    with pytest.raises(ValueError, match=r"^Sequential.decision_function: reset_states must be True or False; got 1$"):
        model.evaluate(X, np.ones(5), reset_states=1)


# ─────────────────────────────────────────────────────────────────────────────── training


def hand_fit(X, y, Xv, yv, *, epochs, batch, lr, seed=3):
    """Stateful training written out with a non-stateful twin of the network that is handed the
    carried states explicitly: batches in the data's order, the state from zeros at each epoch and
    each validation pass, a partial batch continuing the first streams."""
    twin = stateful(seed=seed, stateful=0)
    lstm = twin.layers[0]
    losses, val_losses = [], []

    def forward(x, state, training):
        B = len(x)
        init = None if state is None else {k: a[:B] for k, a in state.items()}
        h = lstm.forward(x, training=training, initial_state=init)
        c = lstm._cache.c[:, -1].copy() if training else None
        return h, c

    for _ in range(epochs):
        state, total = None, 0.0
        for s in range(0, len(X), batch):
            x, t = X[s : s + batch], y[s : s + batch]
            h, c = forward(x, state, True)
            final = {"h0": h.copy(), "c0": c}
            state = final if state is None else {k: np.r_[a, state[k][len(x) :]] for k, a in final.items()}
            out = twin.layers[1].forward(h, training=True)
            loss, dout = twin.loss.value_and_grad(out, t.reshape(out.shape))
            twin.layers[1].backward(dout)
            lstm.backward(twin.layers[1].backward(dout))
            for k, p in twin.parameters().items():
                p -= lr * twin.gradients()[k]
            total += loss * len(x)
        losses.append(total / len(X))
        z, _ = hand_outputs(twin, Xv, batch)
        val_losses.append(log_loss(yv, 1 / (1 + np.exp(-z)), labels=[0, 1]))
    return twin, losses, val_losses


def test_stateful_fit_with_partial_batches_and_validation_is_the_hand_loop(capsys):
    X, y = data(45, seed=5)  # batches of 8: the last holds 5
    Xv, yv = data(13, seed=6)  # validation batches of 8 and 5
    model = stateful()
    assert all(np.array_equal(p, stateful(stateful=0).parameters()[k]) for k, p in model.parameters().items())
    h = model.fit(X, y, epochs=3, batch_size=8, optimizer="sgd", learning_rate=0.2, validation_data=(Xv, yv),
                  standardize=False, early_stopping=None, restore_best=False, verbose=True)
    twin, losses, val_losses = hand_fit(X, y, Xv, yv, epochs=3, batch=8, lr=0.2)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-10)
    np.testing.assert_allclose(h.val_loss, val_losses, rtol=1e-10)
    for k, p in twin.parameters().items():
        np.testing.assert_allclose(model.parameters()[k], p, rtol=1e-10, atol=1e-13, err_msg=k)
    err = capsys.readouterr().err
    note = ("fit: stateful layers (LSTM; TMVA rememberState): batches in the data's order, each continuing the "
            "state of the one before; the state starts from zeros at every epoch")
    assert err.count(note) == 1
    assert model.layers[0].state is None  # after fit the carried state is reset


def test_default_batch_order_is_the_datas_for_stateful_and_shuffled_otherwise():
    X, y = data(40, seed=7)
    kw = dict(epochs=2, batch_size=8, optimizer="sgd", learning_rate=0.2, validation_split=0.0, standardize=False,
              early_stopping=None, verbose=False)
    by_default, in_order = stateful(), stateful()
    by_default.fit(X, y, **kw)
    in_order.fit(X, y, shuffle=False, **kw)
    assert all(np.array_equal(p, in_order.parameters()[k]) for k, p in by_default.parameters().items())
    plain, shuffled, unshuffled = (stateful(stateful=0) for _ in range(3))
    plain.fit(X, y, **kw)
    shuffled.fit(X, y, shuffle=True, **kw)
    unshuffled.fit(X, y, shuffle=False, **kw)
    assert all(np.array_equal(p, shuffled.parameters()[k]) for k, p in plain.parameters().items())
    assert not np.array_equal(plain.parameters()["0.W"], unshuffled.parameters()["0.W"])


def test_no_note_for_networks_without_state(capsys):
    X, y = data(16)
    stateful(stateful=0).fit(X, y, epochs=1, batch_size=8, verbose=True)
    assert "stateful" not in capsys.readouterr().err
    stateful().fit(X, y, epochs=1, batch_size=8, shuffle=False, verbose=True)  # asked for: nothing to say
    assert "stateful" not in capsys.readouterr().err


def test_shuffle_that_breaks_the_state_is_refused():
    X, y = data(16)
    message = ("fit: shuffle must be False (or None) for a network with stateful layers (LSTM: row k of a batch "
               "continues row k of the batch before); got shuffle=True")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        stateful().fit(X, y, shuffle=True, verbose=False)
    message = "fit: shuffle must be True, False or None (shuffle unless the network is stateful); got 'yes'"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        stateful(stateful=0).fit(X, y, shuffle="yes", verbose=False)


def test_validation_starts_from_zeros_and_leaves_the_training_state_alone():
    model = stateful()
    Xv, yv = data(10, seed=8)
    model.forward(data(4, seed=9)[0])  # the training's state, 4 streams
    held = model.layers[0].get_state()
    loss = train._batched_loss(model, Xv, yv.reshape(-1, 1), 4)
    for k, a in held.items():
        np.testing.assert_array_equal(model.layers[0].get_state()[k], a)
    z, _ = hand_outputs(model, Xv, 4)
    assert loss == pytest.approx(log_loss(yv, 1 / (1 + np.exp(-z))), rel=1e-10)


def test_stateful_checkpoint_resume_equals_the_uninterrupted_run(tmp_path):
    X, y = data(45, seed=10)
    kw = dict(batch_size=8, optimizer="adam", learning_rate=0.01, validation_split=0.2, standardize=False,
              early_stopping=None, restore_best=False, verbose=False)
    whole = stateful()
    whole.fit(X, y, epochs=4, **kw)
    first = stateful()
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c.ckpt", **kw)
    resumed = stateful(seed=99)
    resumed.fit(X, y, epochs=4, resume=tmp_path / "c.ckpt", **kw)
    for k, p in whole.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p, err_msg=k)


# ──────────────────────────────────────────────────────────────────────────── command line


def test_bptt_train_with_remember_state(tmp_path, capsys):
    from bptt.cli import main

    X, y = data(60, seed=11)
    write_npz(tmp_path / "d.npz", X.astype(np.float32), y)
    out = tmp_path / "m.bptt"
    code = main(["train", str(tmp_path / "d.npz"), "--layout", "LSTM|4|3|6|1|0,LINEAR", "--input-layout", "6|3",
                 "--training-strategy", "BatchSize=8,MaxEpochs=2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "batches in the data's order, each continuing the state of the one before" in captured.err
    model = Sequential.load(out)
    assert model.layers[0].stateful
    assert code == 0 and main(["evaluate", str(out), str(tmp_path / "d.npz")]) == 0
    first = capsys.readouterr().out
    assert main(["evaluate", str(out), str(tmp_path / "d.npz")]) == 0
    assert capsys.readouterr().out == first
