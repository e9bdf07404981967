"""fit's paths that train.py's mutation run found untested (docs/mutation.md, "After issue 20,
again"): MPI data-parallel training run in one process (bptt.scale.mpi.DataParallel without a
communicator, or with a stand-in of one rank), the validation loss with lengths and with weighted
per-step targets, the reported loss with a weight penalty, messages naming several stateful
layers, and checkpoints written before truncated BPTT existed.

Oracles: the losses written out in NumPy from the network's predictions with its weights left
alone (an optimizer that takes no step), fit in one process without MPI, and the messages as
users read them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt import train
from bptt.io.model_file import load_checkpoint, save_checkpoint
from bptt.layers import GRU, LSTM, Dense
from bptt.model import Sequential
from problems import frozen_optimizer as Frozen
from bptt.scale import mpi

PLAIN = dict(standardize=False, shuffle=False, early_stopping=None, verbose=False, restore_best=False)
T, F, H = 5, 3, 4


def gru_net(seed=0):
    return Sequential.from_tmva("GRU|3|3|5|0|0,LINEAR", "5|3", seed=seed, dtype=np.float64)


def sequences(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, F)), (rng.random(n) > 0.5).astype(float)


def bce(p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


# ── MPI data-parallel training, run in one process


def test_data_parallel_in_one_process_trains_as_fit_and_counts_every_event():
    """Through the MPI path (each batch in 2 parts, the validation loss in parts, the weights
    compared after each epoch) the run equals fit's; the events the parts computed are every
    training and validation event once per epoch: the MPI path was taken, not fit's own."""
    X, y = sequences(26, seed=1)
    options = dict(epochs=2, batch_size=6, learning_rate=1e-2, validation_split=0.25, verbose=False,
                   early_stopping=None, sample_weight=np.linspace(0.5, 1.5, 26))
    plain, parts = gru_net(), gru_net()
    expected = plain.fit(X, y, **options)
    with mpi.data_parallel(None, shards=2) as dp:
        got = parts.fit(X, y, **options)
    assert dp.events_per_rank == [26]
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    np.testing.assert_allclose(got.val_loss, expected.val_loss, rtol=1e-12)
    for k, p in plain.parameters().items():
        np.testing.assert_allclose(parts.parameters()[k], p, rtol=1e-12, atol=1e-15)


def test_data_parallel_in_one_process_trains_a_stateful_network_as_fit():
    """A stateful network's parts keep their rows' positions in a full batch (row k continues row k
    of the batch before), the last batch partial."""
    X, y = sequences(22, seed=11)
    options = dict(epochs=2, batch_size=8, learning_rate=1e-2, validation_split=0.0, verbose=False,
                   early_stopping=None, shuffle=False)
    nets = [Sequential([GRU(F, H, stateful=True, dtype=np.float64, seed=0), Dense(H, 1, dtype=np.float64, seed=1)])
            for _ in range(2)]
    expected = nets[0].fit(X, y, **options)
    with mpi.data_parallel(None, shards=2):
        got = nets[1].fit(X, y, **options)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    for k, p in nets[0].parameters().items():
        np.testing.assert_allclose(nets[1].parameters()[k], p, rtol=1e-12, atol=1e-15)


def test_data_parallel_rank_0_reports_and_writes_the_checkpoint(tmp_path, capsys):
    X, y = sequences(12, seed=2)
    with mpi.data_parallel(None, shards=2):
        gru_net().fit(X, y, epochs=1, batch_size=6, validation_split=0.25, verbose=True, checkpoint=tmp_path / "c")
    assert re.search(r"epoch 1/1  loss \d\.\d{4}  val_loss \d\.\d{4}", capsys.readouterr().err)
    config, state, _ = load_checkpoint(tmp_path / "c")
    assert state["epoch"] == 1


class OneRank:
    """A communicator of one rank whose ranks disagree on the weights after epoch ``differ_at``
    (rank 1's digest differs): what fit shows when MPI's sum differed between ranks."""

    def __init__(self, differ_at):
        self.differ_at = differ_at

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Allgather(self, send, recv):
        recv[...] = np.reshape(send, recv.shape)

    def allgather(self, value):
        self.calls = getattr(self, "calls", 0) + 1
        return [value, b"other" if self.calls == 1 + self.differ_at else value]  # call 1: the start


def test_ranks_whose_weights_differ_stop_fit_naming_the_epoch():
    X, y = sequences(12, seed=3)
    with mpi.data_parallel(OneRank(differ_at=2), shards=1, blas_threads=0):
        with pytest.raises(ValueError, match=r"^MPI training: the weights after epoch 2 differ between rank 0 and "
                                             r"rank 1: every rank must read the same events"):
            gru_net().fit(X, y, epochs=3, batch_size=6, validation_split=0.25, verbose=False, early_stopping=None)


def test_data_parallel_refuses_tbptt_lengths_and_per_step_targets_with_the_whole_message():
    X, y = sequences(12, seed=4)
    lengths = np.array([5, 1, 3, 4, 2, 5, 5, 3, 1, 2, 4, 5])
    no_lengths = ("^fit: MPI data-parallel training \\(bptt.scale.mpi\\) takes neither lengths nor per-step targets "
                  "yet \\(its ranks split batches by events and average per event\\): train in one process$")
    with mpi.data_parallel(None, shards=2):
        with pytest.raises(ValueError, match="^fit: MPI data-parallel training \\(bptt.scale.mpi\\) takes no tbptt yet "
                                             "\\(its ranks sum one gradient per batch\\): train in one process, or pass "
                                             "tbptt=None$"):
            Sequential([LSTM(F, H, return_sequences=True, dtype=np.float64), Dense(H, 1, dtype=np.float64)],
                       loss="mse").fit(X, np.zeros((12, T, 1)), tbptt=2, **PLAIN)
        with pytest.raises(ValueError, match=no_lengths):  # per-sequence targets, training lengths only
            gru_net().fit(X, y, lengths=lengths, validation_data=(X[:4], y[:4]), **PLAIN)
        with pytest.raises(ValueError, match=no_lengths):  # validation lengths only
            gru_net().fit(X, y, validation_data=(X[:4], y[:4]), validation_lengths=lengths[:4], **PLAIN)


# ── the validation loss fit reports


def test_the_validation_loss_reads_the_validation_lengths():
    """A network with one output per sequence: the validation sequences end at their lengths (the
    output after the last real step), not at T."""
    X, y = sequences(16, seed=5)
    Xv, yv = sequences(7, seed=6)
    Lv = np.array([1, 5, 2, 3, 5, 4, 2])
    model = Sequential([LSTM(F, H, dtype=np.float64, seed=0), Dense(H, 1, dtype=np.float64, seed=1)])
    h = model.fit(X, y, epochs=1, batch_size=4, optimizer=Frozen(0.1), validation_data=(Xv, yv),
                  validation_lengths=Lv, **PLAIN)
    p = model.predict_proba(Xv, lengths=Lv).reshape(-1)
    assert h.val_loss[0] == pytest.approx(np.mean(bce(p, yv)), rel=1e-12)
    assert h.val_loss[0] != pytest.approx(np.mean(bce(model.predict_proba(Xv).reshape(-1), yv)), rel=1e-6)


def test_weighted_per_step_targets_without_lengths():
    """Per-step targets, event weights, no lengths: the training and validation losses are the
    weighted means over every step, each sequence's weight counting once per step."""
    rng = np.random.default_rng(7)
    X, Xv = rng.normal(size=(10, T, F)), rng.normal(size=(6, T, F))
    y, yv = rng.normal(size=(10, T, 1)), rng.normal(size=(6, T, 1))
    w, wv = rng.uniform(0.2, 2.0, 10), rng.uniform(0.2, 2.0, 6)
    model = Sequential([GRU(F, H, return_sequences=True, dtype=np.float64, seed=0), Dense(H, 1, dtype=np.float64)],
                       loss="mse")
    h = model.fit(X, y, sample_weight=w, validation_data=(Xv, yv, wv), epochs=1, batch_size=4, optimizer=Frozen(0.1),
                  **PLAIN)

    def weighted(Xa, ya, wa):
        sq = ((model.predict(Xa) - ya) ** 2)[..., 0]  # (n, T)
        return float(np.sum(wa[:, None] * sq) / (T * np.sum(wa)))

    assert h.loss[0] == pytest.approx(weighted(X, y, w), rel=1e-12)
    assert h.val_loss[0] == pytest.approx(weighted(Xv, yv, wv), rel=1e-12)


def test_the_reported_loss_adds_the_weight_penalty():
    """One batch, weights left alone: the epoch's loss is the data's loss plus λ/2 Σ W² (L2) or
    λ Σ |W| (L1) over the weight matrices, not the biases."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(9, 4)), rng.normal(size=9)
    for regularization in ("L2", "L1"):
        model = Sequential([Dense(4, 1, dtype=np.float64, seed=0)], loss="mse")
        W = model.parameters()["0.W"].copy()
        data_loss = float(np.mean((model.predict(X).reshape(-1) - y) ** 2))
        h = model.fit(X, y, epochs=1, batch_size=9, optimizer=Frozen(0.1), validation_split=0.0, weight_decay=0.3,
                      regularization=regularization, **PLAIN)
        penalty = 0.15 * np.sum(W**2) if regularization == "L2" else 0.3 * np.sum(np.abs(W))
        assert h.loss[0] == pytest.approx(data_loss + penalty, rel=1e-12), regularization


# ── messages and older checkpoints


@pytest.mark.parametrize("options, message", [
    ({"momentum": 0.9}, "fit: optimizer_options must not hold momentum; got {'momentum': 0.9}: use fit's"),
    ({"momentum": 0.9, "lr": 0.5}, "fit: optimizer_options must not hold lr, momentum; got"),
])
def test_optimizer_options_must_leave_fits_own_hyperparameters_alone(options, message):
    """fit's learning_rate and momentum are not to be given again in optimizer_options (the cases
    beside tests/tmva/test_tmva_optimizer_keys.py's, which CI's mutation subset runs too)."""
    X, y = sequences(8, seed=12)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        gru_net().fit(X, y, epochs=1, optimizer="sgd", optimizer_options=options, verbose=False)


def test_every_stateful_layer_is_named():
    X = np.zeros((4, T, F))
    model = Sequential([LSTM(F, H, return_sequences=True, stateful=True, dtype=np.float64),
                        GRU(H, H, stateful=True, dtype=np.float64), Dense(H, 1, dtype=np.float64)])
    with pytest.raises(ValueError, match=r"^fit: shuffle must be False \(or None\) for a network with stateful "
                                         r"layers \(LSTM, GRU: row k of a batch"):
        model.fit(X, np.zeros(4), shuffle=True, epochs=1, verbose=False)


def test_the_stateful_note_names_every_stateful_layer(capsys):
    X = np.random.default_rng(9).normal(size=(4, T, F))
    model = Sequential([LSTM(F, H, return_sequences=True, stateful=True, dtype=np.float64),
                        GRU(H, H, stateful=True, dtype=np.float64), Dense(H, 1, dtype=np.float64)])
    model.fit(X, np.zeros(4), epochs=1, batch_size=2, verbose=True, validation_split=0.0)
    assert "fit: stateful layers (LSTM, GRU; TMVA rememberState): batches in the data's order" in capsys.readouterr().err


def test_a_checkpoint_from_before_tbptt_resumes_as_full_bptt(tmp_path):
    """Checkpoints written before truncated BPTT hold no tbptt option: they were full BPTT (None),
    and resume so; asked for truncation, the message says what the checkpoint has."""
    X, y = sequences(12, seed=10)
    kw = dict(batch_size=4, validation_split=0.25, verbose=False, early_stopping=None, seed=3)
    whole = gru_net()
    whole.fit(X, y, epochs=3, **kw)
    first = gru_net()
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c", **kw)
    config, state, arrays = load_checkpoint(tmp_path / "c")
    del state["options"]["tbptt"]  # as the versions before issue 20 wrote it
    save_checkpoint(tmp_path / "old", first, state, {k: a for k, a in arrays.items() if not k.startswith("param/")})
    resumed = gru_net(seed=5)
    resumed.fit(X, y, epochs=3, resume=tmp_path / "old", **kw)
    for k, p in whole.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p)
    seq = Sequential([LSTM(F, H, return_sequences=True, dtype=np.float64), Dense(H, 1, dtype=np.float64)], loss="mse")
    Xs, ys = np.zeros((8, T, F)), np.zeros((8, T, 1))
    seq.fit(Xs, ys, epochs=1, checkpoint=tmp_path / "s", **kw)
    config, state, arrays = load_checkpoint(tmp_path / "s")
    del state["options"]["tbptt"]
    save_checkpoint(tmp_path / "s_old", seq, state, {k: a for k, a in arrays.items() if not k.startswith("param/")})
    with pytest.raises(ValueError, match=r"^fit: resume needs the same tbptt as the interrupted run: the checkpoint "
                                         r"has None, this call \[2, 2\]$"):
        seq.fit(Xs, ys, epochs=2, resume=tmp_path / "s_old", tbptt=2, **kw)

