"""fit(..., tbptt=(k1, k2)): truncated BPTT through the training loop (issue 20, point 5).

Oracles: the hand-written TBPTT of tests/tbptt_oracle.py (the windows chained with the
functional API by ``h0``/``c0`` and ``dh_last``/``dc_last``, plain-NumPy SGD), and plain fit for
``tbptt=(T, T)`` (one window per batch is the full-BPTT step).
"""

import numpy as np
import pytest

from bptt.layers import LSTM, Dense
from bptt.model import Sequential

from tbptt_oracle import LR, _data, _model, _oracle_params, hand_tbptt

QUIET = dict(epochs=1, optimizer="sgd", learning_rate=LR, validation_split=0.0, standardize=False, shuffle=False,
             early_stopping=None, restore_best=False, verbose=False)


@pytest.mark.parametrize("kinds,per_step,loss,k1,k2,lengths,weights", [
    (("LSTM",), True, "mse", 3, 3, [8, 1, 5, 3, 7], None),
    (("LSTM", "GRU"), True, "bce", 2, 5, [8, 2, 4, 6, 8], [1.0, 2.0, 0.5, 1.5, 1.0]),
    (("RNN",), True, "mse", 3, 4, None, None),
    (("GRU",), False, "bce", 3, 3, [8, 1, 5, 3, 7], None),
])
def test_fit_with_tbptt_equals_the_windows_chained_by_hand(kinds, per_step, loss, k1, k2, lengths, weights):
    B, T, I, K = 5, 8, 3, 2 if loss == "mse" else 1
    model = _model(kinds, per_step, loss, K=K)
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, per_step, loss, seed=7)
    L = np.array(lengths) if lengths is not None else np.full(B, T)
    w = np.ones(B) if weights is None else np.array(weights)
    W_total = float(np.sum(w * L)) if per_step else float(np.sum(w))
    want_loss, _, _ = hand_tbptt(rec, dense, loss, per_step, x, y, w, L, k1, k2, W_total)
    history = model.fit(x, y, lengths=None if lengths is None else L, sample_weight=weights, batch_size=B,
                        tbptt=(k1, k2), **QUIET)
    got_rec, got_dense = _oracle_params(model)
    for (_, p), (_, q) in zip(got_rec, rec):
        for name in p:
            np.testing.assert_allclose(p[name], q[name], rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(got_dense[0], dense[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_dense[1], dense[1], rtol=0, atol=1e-12)
    # the epoch's loss: the batch's, the sum of its updates' losses
    assert history.loss[0] == pytest.approx(want_loss, rel=1e-10)


@pytest.mark.parametrize("per_step", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_tbptt_of_the_whole_sequence_trains_as_plain_fit(per_step, weighted):
    """With the penalty, clipping that acts (the gradient norms exceed 0.05 here: checked below),
    and event weights over batches of different total weight."""
    B, T, I, K = 24, 6, 3, 1
    x, y = _data(B, T, I, K, per_step, "bce", seed=3)
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, T + 1, size=B)
    options = dict(epochs=3, batch_size=8, optimizer="adam", learning_rate=0.01, validation_split=0.25,
                   weight_decay=1e-3, clip_norm=0.05, verbose=False, seed=4, lengths=lengths,
                   sample_weight=rng.uniform(0.1, 3.0, size=B) if weighted else None)
    plain = _model(("LSTM",), per_step, "bce", K=K)
    truncated = _model(("LSTM",), per_step, "bce", K=K)
    h_plain = plain.fit(x, y, **options)
    h_trunc = truncated.fit(x, y, tbptt=(T, T), **options)
    for name, p in plain.parameters().items():
        np.testing.assert_allclose(truncated.parameters()[name], p, rtol=0, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(h_trunc.loss, h_plain.loss, rtol=1e-12)
    np.testing.assert_allclose(h_trunc.val_loss, h_plain.val_loss, rtol=1e-12)
    unclipped = _model(("LSTM",), per_step, "bce", K=K)
    unclipped.fit(x, y, tbptt=(T, T), **{**options, "clip_norm": None})
    assert not np.allclose(unclipped.parameters()["0.U"], truncated.parameters()["0.U"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("tbptt", [None, (2, 2)])
def test_a_loss_that_overflows_names_the_epoch_and_batch(tbptt):
    """Outputs of 1e160 (the output layer's bias) are finite, their squared error is not, nor is
    the L2 penalty of input weights of 1e155 (finite too, the RNN's steps saturated): fit stops at
    the first update, naming where (with truncation too: each window's update)."""
    B, T, I, K = 8, 6, 3, 1
    x, y = _data(B, T, I, K, True, "mse", seed=6)
    model = _model(("RNN",), True, "mse", K=K)
    params = model.parameters()
    assert params["0.W"].shape == (I, 4) and params["1.b"].shape == (K,)
    params["0.W"][...] = 1e155
    params["1.b"][...] = 1e160
    with pytest.raises(FloatingPointError, match=r"^fit: the loss became inf at epoch 1, batch 1: training diverged"):
        model.fit(x, y, batch_size=4, tbptt=tbptt, weight_decay=1e-3, **QUIET)


def test_truncation_changes_the_training_where_it_should():
    """A plausible bug ignores tbptt: short windows must give other weights than full BPTT."""
    B, T, I, K = 6, 8, 3, 1
    x, y = _data(B, T, I, K, True, "mse", seed=5)
    full, short = _model(("LSTM",), True, "mse"), _model(("LSTM",), True, "mse")
    full.fit(x, y, batch_size=B, **QUIET)
    short.fit(x, y, batch_size=B, tbptt=(2, 2), **QUIET)
    assert not np.allclose(full.parameters()["0.U"], short.parameters()["0.U"])


def test_tbptt_checked_before_training():
    x, y = _data(4, 5, 3, 1, True, "mse", seed=0)
    model = _model(("LSTM",), True, "mse")
    before = {k: p.copy() for k, p in model.parameters().items()}
    with pytest.raises(ValueError, match=r"fit: tbptt=\(k1, k2\) needs k2 >= k1; got tbptt=\(3, 2\)"):
        model.fit(x, y, tbptt=(3, 2), **QUIET)
    with pytest.raises(ValueError, match="tbptt must be a pair of integers"):
        model.fit(x, y, tbptt="3", **QUIET)
    flat = Sequential.from_tmva("LSTM|4|3|5|0|1,RESHAPE|FLAT,LINEAR", "5|3", seed=0, dtype=np.float64)
    with pytest.raises(ValueError, match="Flatten"):
        flat.fit(x, y[:, 0, 0] > 0, tbptt=2, **QUIET)
    for k, p in model.parameters().items():
        np.testing.assert_array_equal(p, before[k])


def test_resume_needs_the_same_tbptt(tmp_path):
    x, y = _data(8, 6, 3, 1, True, "mse", seed=2)
    model = Sequential([LSTM(3, 4, return_sequences=True, dtype=np.float64, seed=0), Dense(4, 1, dtype=np.float64)],
                       loss="mse")
    model.fit(x, y, tbptt=(2, 3), checkpoint=tmp_path / "run.ckpt", **{**QUIET, "epochs": 1})
    with pytest.raises(ValueError, match=r"resume needs the same tbptt.*\[2, 3\].*\[3, 3\]"):
        model.fit(x, y, tbptt=(3, 3), resume=tmp_path / "run.ckpt", **{**QUIET, "epochs": 2})
