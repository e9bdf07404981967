"""bptt.train.fit where mutation testing found no test (docs/mutation.md, issue 17).

What is pinned, each with an oracle written out here: the default of every keyword argument and
the checkpoint's ``options`` record (a checkpoint file is read back by later versions, so its
keys and its data fingerprint are a file format); what one step of fit computes (the recorded
loss, the weight decay's penalty and gradient, gradient clipping at its threshold) on a network of
one linear unit whose every number can be written by hand; the epochs at which a checkpoint is
written; early stopping, ``restore_best`` and the monitored loss; the validation data and X as
(n, F) or (n, T, F); targets of the softmax and mse losses; the messages of a diverging run; the
progress output (with a clock and a progress bar that record what fit gives them); and the BLAS
thread count fit picks from the size of a training batch.

Tests pass optimizers and losses of their own (subclasses of the public ``Optimizer`` and
``MeanSquaredError``) to freeze the weights, interrupt or diverge at a chosen batch.
"""

from __future__ import annotations

import hashlib
import math
import sys

import numpy as np
import pytest

import bptt.train
from bptt.io.model_file import load_checkpoint
from bptt.layers import Dense, Dropout, Flatten
from bptt.losses import MeanSquaredError
from bptt.model import Sequential
from bptt.optim import SGD, Optimizer
from bptt.train import fit

# ─────────────────────────────────────────────────────────────────────────────── helpers


class Frozen(Optimizer):
    """Leaves the weights alone (so every loss is the untrained network's); counts its steps and
    can raise KeyboardInterrupt (a Ctrl-C) at step ``interrupt_at``."""

    name = "frozen"

    def __init__(self, lr: float = 0.5, interrupt_at: int | None = None, on_step=None):
        super().__init__(lr)
        self.interrupt_at, self.on_step = interrupt_at, on_step

    def step(self, params, grads):
        self.iterations += 1
        if self.on_step is not None:
            self.on_step()
        if self.iterations == self.interrupt_at:
            raise KeyboardInterrupt

    def _hyper(self):
        return {"lr": self.lr}


class Rateless(Optimizer):
    """An optimizer without a learning rate (``lr``): messages cannot quote one."""

    name = "rateless"

    def __init__(self):  # no Optimizer.__init__: no lr
        self.iterations = 0

    def step(self, params, grads):
        self.iterations += 1

    def _hyper(self):
        return {}


class Diverging(MeanSquaredError):
    """Mean squared error, except at its ``at``-th call, where the loss is ``value`` and the
    gradient is filled with ``grad`` (when given)."""

    def __init__(self, at: int, value: float | None = None, grad: float | None = None):
        self.at, self.value, self.grad, self.calls = at, value, grad, 0

    def value_and_grad(self, outputs, targets):
        self.calls += 1
        value, grad = super().value_and_grad(outputs, targets)
        if self.calls == self.at:
            value = value if self.value is None else self.value
            grad = grad if self.grad is None else np.full_like(grad, self.grad)
        return value, grad


def unit(w=0.0, b=0.0, loss="mse", dropout=None):
    """y = w·x + b in float64: one Dense unit, optionally after a Dropout layer."""
    layers = ([Dropout(dropout, seed=0)] if dropout else []) + [Dense(1, 1, dtype=np.float64, seed=0)]
    m = Sequential(layers, loss=loss)
    i = len(layers) - 1
    m.set_parameters({f"{i}.W": np.array([[w]]), f"{i}.b": np.array([b])})
    return m


def wb(m):
    p = list(m.parameters().values())
    return float(p[-2][0, 0]), float(p[-1][0])


def col(*values):
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def sequences(n=20, T=4, F=2, seed=0):
    """(n, T, F) float32 sequences, half of them labelled 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    return X, (np.arange(n) % 2).astype(np.float32)


def gru():
    return Sequential.from_tmva("GRU|3|2|4|0|0,LINEAR", "4|2", seed=0)


PLAIN = dict(standardize=False, shuffle=False, validation_split=0.0, early_stopping=None, verbose=False)


# ─────────────────────────────────────────────────── the defaults and the checkpoint record


def test_the_defaults_as_the_checkpoint_records_them(tmp_path, capsys):
    X, y = sequences()
    ckpt = tmp_path / "run.ckpt"
    fit(gru(), X, y, checkpoint=ckpt)
    _, state, _ = load_checkpoint(ckpt)
    options = dict(state["options"])
    options.pop("data")
    assert options == {
        "epochs": 20, "batch_size": 100, "seed": 0, "validation_split": 0.2,
        "optimizer": {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08},
        "weight_decay": 0.0, "regularization": "L2", "clip_norm": None, "standardize": True,
        "shuffle": True, "drop_last": False, "early_stopping": 5, "ignore_negative_weights": False, "tbptt": None,
    }
    assert "\nepoch 1/20  loss " in "\n" + capsys.readouterr().err.replace("\r", "\n")  # verbose by default


def test_the_checkpoint_records_the_options_given(tmp_path):
    X, y = sequences()
    ckpt = tmp_path / "run.ckpt"
    fit(gru(), X, y, epochs=1, batch_size=7, optimizer="SGD", learning_rate=0.25, momentum=0.5, seed=3,
        validation_split=0.5, weight_decay=0.125, regularization="L1", clip_norm=2.5, standardize=False,
        drop_last=True, early_stopping=None, checkpoint=ckpt, verbose=False, ignore_negative_weights=True,
        tbptt=(2, 3))
    _, state, _ = load_checkpoint(ckpt)
    options = dict(state["options"])
    options.pop("data")
    assert options == {
        "epochs": 1, "batch_size": 7, "seed": 3, "validation_split": 0.5,
        "optimizer": {"name": "sgd", "lr": 0.25, "momentum": 0.5, "nesterov": False},
        "weight_decay": 0.125, "regularization": "L1", "clip_norm": 2.5, "standardize": False,
        "shuffle": True, "drop_last": True, "early_stopping": None, "ignore_negative_weights": True,
        "tbptt": [2, 3],
    }


def test_the_checkpoints_data_fingerprint(tmp_path):
    """sha256 of the training part's shape and bytes, X then y (y as float32), 16 hex digits: the
    same in every version, so that a checkpoint written by an earlier one resumes."""
    X, y = sequences(n=6)
    ckpt = tmp_path / "run.ckpt"
    fit(gru(), X, y, epochs=1, checkpoint=ckpt, **PLAIN)
    h = hashlib.sha256()
    for a in (X, y.astype(np.float32)):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    assert load_checkpoint(ckpt)[1]["options"]["data"] == h.hexdigest()[:16]


@pytest.mark.parametrize("change", ["X", "y", "shape"])
def test_resume_refuses_other_data(tmp_path, change):
    """Other values of X alone, of y alone, or the same bytes in another shape are other data."""
    X, y = np.array([[[0.5], [1.5]], [[2.5], [1.0]]], np.float32), np.array([0.0, 1.0], np.float32)
    m = Sequential.from_tmva("RNN|2|1|1|0|0,LINEAR", "1|1", seed=0)
    ckpt = tmp_path / "run.ckpt"
    fit(m, X, y, epochs=1, checkpoint=ckpt, **PLAIN)
    if change == "X":
        X = X + np.float32(1.0)
    elif change == "y":
        y = 1 - y
    else:  # X (2, 2, 1) + y (2,) and X (3, 1, 1) + y (3,): the same 6 numbers one after the other
        flat = np.concatenate([X.ravel(), y])
        X, y = flat[:3].reshape(3, 1, 1), flat[3:]
    with pytest.raises(ValueError, match=r"^fit: resume needs the same data as the interrupted run"):
        fit(Sequential.from_tmva("RNN|2|1|1|0|0,LINEAR", "1|1", seed=0), X, y, epochs=2, resume=ckpt, **PLAIN)


def test_resuming_a_run_that_stopped_early_trains_no_more(tmp_path):
    X, y = col(1.0, 2.0), np.zeros(2)
    ckpt = tmp_path / "run.ckpt"
    kw = dict(PLAIN, early_stopping=1, optimizer=Frozen(), checkpoint=ckpt)
    first = fit(unit(0.5), X, y, epochs=5, **kw)
    assert (first.epoch, first.stopped_early) == ([1, 2], True)
    again = fit(unit(0.5), X, y, epochs=5, resume=ckpt, **dict(kw, optimizer=Frozen()))
    assert (again.epoch, again.loss, again.stopped_early) == ([1, 2], first.loss, True)


# ─────────────────────────────────────────────── the defaults that change what fit computes


def test_epochs_default_to_20():
    h = fit(unit(0.5), col(1.0), [0.0], optimizer=Frozen(), **dict(PLAIN, verbose=False))
    assert h.epoch == list(range(1, 21))


def test_batch_size_defaults_to_100():
    opt = Frozen()
    fit(unit(0.5), col(*range(101)), np.zeros(101), epochs=1, optimizer=opt, **PLAIN)
    assert opt.iterations == 2  # 100 + 1


def test_early_stopping_defaults_to_5_epochs_without_improvement():
    """The weights do not move: the loss never improves after epoch 1; the fifth epoch without
    improvement is epoch 6."""
    kw = dict(PLAIN)
    del kw["early_stopping"]
    h = fit(unit(0.5), col(1.0), [0.0], epochs=20, optimizer=Frozen(), **kw)
    assert (h.epoch[-1], h.best_epoch, h.stopped_early) == (6, 1, True)


def test_an_equal_loss_is_no_improvement():
    h = fit(unit(0.5), col(1.0, 2.0), [0.0, 0.0], epochs=4, optimizer=Frozen(), **dict(PLAIN, early_stopping=1))
    assert (h.epoch, h.best_epoch, h.best_loss, h.stopped_early) == ([1, 2], 1, 0.625, True)


# A line through the origin learnt by SGD (lr 0.1) from one point, x = 1, y = 1, starting at w = b = 0:
# the output o = w + b becomes o − 0.4 (o − 1) each step: 0, 0.4, 0.64, 0.784; w = b = o / 2.
# The training loss before each step is (o − 1)²: 1, 0.36, 0.1296; a validation point x = 1, y = −1
# has the loss (o + 1)² after each epoch: 1.96, 2.6896, 3.182656 (worse every epoch).
LINE = dict(epochs=3, batch_size=1, optimizer="sgd", learning_rate=0.1, standardize=False, shuffle=False,
            early_stopping=None, verbose=False)


def test_the_line_learnt_step_by_step():
    m = unit()
    h = fit(m, col(1.0), [1.0], validation_data=(col(1.0), np.array([-1.0])), **LINE)
    assert h.epoch == [1, 2, 3]
    assert h.loss == pytest.approx([1.0, 0.36, 0.1296], rel=1e-12)
    assert h.val_loss == pytest.approx([1.96, 2.6896, 3.182656], rel=1e-12)
    assert (h.best_epoch, h.best_loss) == (1, pytest.approx(1.96, rel=1e-12))
    assert wb(m) == pytest.approx((0.2, 0.2), rel=1e-12)  # restore_best by default: epoch 1's weights


def test_restore_best_false_keeps_the_last_weights():
    m = unit()
    fit(m, col(1.0), [1.0], validation_data=(col(1.0), np.array([-1.0])), restore_best=False, **LINE)
    assert wb(m) == pytest.approx((0.392, 0.392), rel=1e-12)


def test_without_validation_the_training_loss_is_monitored_and_every_decrease_counts():
    """No validation part: the training loss is monitored; it falls by 0.64 and 0.2304, less than
    1: with min_delta left at 0 both count, so early_stopping=1 does not stop the run."""
    m = unit()
    h = fit(m, col(1.0), [1.0], validation_split=0.0, **dict(LINE, early_stopping=1))
    assert (h.epoch, h.best_epoch, h.stopped_early) == ([1, 2, 3], 3, False)
    assert h.best_loss == pytest.approx(0.1296, rel=1e-12)
    assert all(math.isnan(v) for v in h.val_loss)


# ─────────────────────────────────────────────────────────── what one step computes

# One unit, x = 0.75, w = 2, b = 0.5, target 0: the output is 2, the loss 4, dL/do = 4, so the
# gradient is (3, 4) for (w, b), of norm 5. SGD with lr 0.1 and one batch.
STEP = dict(epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.1, **PLAIN)


@pytest.mark.parametrize(
    "options, loss, w, b",
    [
        ({}, 4.0, 2 - 0.1 * 3, 0.5 - 0.1 * 4),
        # L2: penalty 0.5/2 · w² = 1, gradient 0.5 · w on w only (not on the bias)
        ({"weight_decay": 0.5, "regularization": "L2"}, 5.0, 2 - 0.1 * 4, 0.5 - 0.1 * 4),
        ({"weight_decay": 0.5}, 5.0, 2 - 0.1 * 4, 0.5 - 0.1 * 4),  # L2 by default
        # L1: penalty 0.5 · |w| = 1, gradient 0.5 · sign(w)
        ({"weight_decay": 0.5, "regularization": "L1"}, 5.0, 2 - 0.1 * 3.5, 0.5 - 0.1 * 4),
        ({"weight_decay": 0.5, "regularization": None}, 4.0, 2 - 0.1 * 3, 0.5 - 0.1 * 4),
        # clipping: at a norm of exactly clip_norm nothing happens; above, PyTorch's factor c / (n + 1e-6)
        ({"clip_norm": 5.0}, 4.0, 2 - 0.1 * 3, 0.5 - 0.1 * 4),
        ({"clip_norm": 2.5}, 4.0, 2 - 0.1 * 3 * 2.5 / (5 + 1e-6), 0.5 - 0.1 * 4 * 2.5 / (5 + 1e-6)),
    ],
)
def test_one_step(options, loss, w, b):
    m = unit(2.0, 0.5)
    h = fit(m, col(0.75), [0.0], **dict(STEP, **options))
    assert h.loss == [pytest.approx(loss, rel=1e-12)]
    assert wb(m) == (pytest.approx(w, rel=1e-12), pytest.approx(b, rel=1e-12))


def test_the_recorded_loss_weighs_each_batch_by_its_size():
    """Frozen weights w = 0.5, x = 1, 2, 3, targets 0: per-sample losses 0.25, 1, 2.25; batches of
    2 and 1: (0.625 · 2 + 2.25 · 1) / 3."""
    h = fit(unit(0.5), col(1.0, 2.0, 3.0), np.zeros(3), epochs=2, batch_size=2, optimizer=Frozen(), **PLAIN)
    assert h.loss == [pytest.approx(3.5 / 3, rel=1e-12)] * 2


def test_sgd_and_rmsprop_by_name_get_the_momentum():
    """optimizer="SGD" (any case) with momentum is SGD(lr, momentum): the same weights as the instance."""
    X, y = col(1.0, 2.0, -1.0), np.array([1.0, 0.0, 2.0])
    for name, reference in (("SGD", SGD(lr=0.1, momentum=0.5)), ("sgd", SGD(lr=0.1, momentum=0.5))):
        a, b = unit(0.5, 0.25), unit(0.5, 0.25)
        fit(a, X, y, epochs=2, batch_size=1, optimizer=name, learning_rate=0.1, momentum=0.5, **PLAIN)
        fit(b, X, y, epochs=2, batch_size=1, optimizer=reference, **PLAIN)
        assert wb(a) == wb(b)
    from bptt.optim import RMSprop

    for name in ("rmsprop", "RMSprop"):
        a, b = unit(0.5, 0.25), unit(0.5, 0.25)
        fit(a, X, y, epochs=2, batch_size=1, optimizer=name, learning_rate=0.1, momentum=0.5, **PLAIN)
        fit(b, X, y, epochs=2, batch_size=1, optimizer=RMSprop(lr=0.1, momentum=0.5), **PLAIN)
        assert wb(a) == wb(b)


# ──────────────────────────────────────────────────────── validation data, data shapes, targets


def test_validation_loss_is_computed_in_batches_without_dropout():
    """Frozen w = 0.5 after a Dropout layer: the validation loss is that of the network without
    dropout, over every validation sample, whatever the batch size."""
    Xv, yv = col(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), np.zeros(8)
    expected = float(np.mean((0.5 * Xv[:, 0]) ** 2))
    h = fit(unit(0.5, dropout=0.5), col(1.0), [0.0], validation_data=(Xv, yv), epochs=1, batch_size=3,
            optimizer=Frozen(), **PLAIN)
    assert h.val_loss == [pytest.approx(expected, rel=1e-12)]


def test_validation_data_as_sequences():
    """(n, T, F) validation data are checked as the training data (y as labels of any number type)."""
    m = Sequential([Flatten(), Dense(2, 1, dtype=np.float64, seed=0)], loss="mse")
    m.set_parameters({"1.W": np.array([[1.0], [2.0]]), "1.b": np.array([0.0])})
    X = np.array([[[1.0], [0.0]]])
    Xv = np.array([[[1.0], [1.0]], [[0.0], [1.0]]])  # outputs 3 and 2
    h = fit(m, X, [1.0], validation_data=(Xv, [1, 0]), epochs=1, optimizer=Frozen(), **PLAIN)
    assert h.val_loss == [pytest.approx((4 + 4) / 2, rel=1e-12)]
    with pytest.raises(ValueError, match=r"^fit: X contains NaN at index \(1, 0, 0\)"):
        fit(m, X, [1.0], validation_data=(np.where(Xv == 0, np.nan, Xv), [1, 0]), epochs=1, **PLAIN)


def test_sequences_are_checked_and_feature_rows_are_not_required_to_be_sequences():
    m = Sequential([Flatten(), Dense(2, 1, dtype=np.float64, seed=0)], loss="mse")
    X = np.zeros((3, 2, 1))
    X[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"^fit: X contains Inf at index \(2, 1, 0\)"):
        fit(m, X, [1.0, 2.0, 3.0], epochs=1, **PLAIN)
    # (n, F) rows for a network of Dense layers only: taken as they are
    h = fit(unit(0.5), [[1.0], [2.0]], [0.0, 0.0], epochs=1, optimizer=Frozen(), **PLAIN)
    assert h.loss == [pytest.approx((0.25 + 1.0) / 2, rel=1e-12)]


def test_float32_data_for_a_float64_network():
    """Data are converted to the network's dtype: float32 data give the float64 computation."""
    X = np.array([[0.75]], np.float32)
    m = unit(2.0, 0.5)
    h = fit(m, X, np.array([0.0], np.float32), **STEP)
    assert h.loss == [4.0] and wb(m) == (pytest.approx(1.7, rel=1e-12), pytest.approx(0.1, rel=1e-12))


def test_validation_split_holds_out_that_fraction():
    """20 labels, 10 of each: validation_split=0.5 trains on 10 (one step each with batch_size=1)."""
    X, y = sequences(n=20)
    opt = Frozen()
    fit(gru(), X, y, epochs=1, batch_size=1, optimizer=opt, validation_split=0.5, verbose=False)
    assert opt.iterations == 10


def test_the_mse_loss_splits_without_stratifying():
    """mse targets are values, each of them once: a split by label would hold out none of them."""
    m = Sequential([Flatten(), Dense(8, 1, seed=0)], loss="mse")
    X, _ = sequences(n=20)
    y = np.linspace(-1.0, 1.0, 20).astype(np.float32)
    opt = Frozen()
    h = fit(m, X, y, epochs=1, batch_size=1, optimizer=opt, validation_split=0.25, verbose=False)
    assert opt.iterations == 15 and np.isfinite(h.val_loss[0])


@pytest.mark.parametrize("labels", [[0, 2, 1, 2], [[0], [2], [1], [2]]])
def test_softmax_targets_are_class_indices(labels):
    """softmax_ce: logits (0, 0, 0) for every sample, so the loss is log 3, whatever the class;
    labels as a vector or as a column."""
    m = Sequential([Dense(1, 3, dtype=np.float64, seed=0)], loss="softmax_ce")
    m.set_parameters({"0.W": np.zeros((1, 3)), "0.b": np.zeros(3)})
    h = fit(m, col(1.0, 2.0, 3.0, 4.0), np.array(labels), epochs=1, optimizer=Frozen(), **PLAIN)
    assert h.loss == [pytest.approx(math.log(3), rel=1e-12)]


def test_softmax_labels_that_are_no_class_are_refused_not_truncated():
    """A label 2.5 names no class: fit used to train on class 2 (astype(int64) truncated it); the
    loss's own check now refuses it, before any step."""
    m = Sequential([Dense(1, 3, dtype=np.float64, seed=0)], loss="softmax_ce")
    before = {k: p.copy() for k, p in m.parameters().items()}
    with pytest.raises(ValueError, match=r"^SoftmaxCrossEntropy: class-index targets must be whole numbers; "
                                         r"got non-integer floats such as 2\.5"):
        fit(m, col(1.0, 2.0), [0.0, 2.5], epochs=1, optimizer="sgd", **PLAIN)
    for k, p in m.parameters().items():
        np.testing.assert_array_equal(p, before[k])


def test_targets_of_feature_rows_are_converted_to_the_networks_dtype():
    """(n, F) rows are not checked as sequences are: targets NumPy can turn into numbers (here an
    object array of Fractions) are converted to the network's dtype."""
    from fractions import Fraction

    y = np.array([Fraction(1, 2), Fraction(1, 4)], dtype=object)
    h = fit(unit(0.5), col(1.0, 2.0), y, epochs=1, optimizer=Frozen(), **PLAIN)
    assert h.loss == [pytest.approx((0.0 + 0.75**2) / 2, rel=1e-12)]


def test_softmax_targets_of_sequences():
    """(n, T, F) sequences: y passes fit's check as float32 and is used as class indices."""
    m = Sequential([Flatten(), Dense(2, 3, dtype=np.float64, seed=0)], loss="softmax_ce")
    m.set_parameters({"1.W": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "1.b": np.zeros(3)})
    X = np.array([[[1.0], [0.0]], [[0.0], [1.0]]])  # logits (1, 0, 0) and (0, 1, 0)
    h = fit(m, X, [0, 2], epochs=1, optimizer=Frozen(), **PLAIN)
    log_z = math.log(math.e + 2)
    assert h.loss == [pytest.approx(((log_z - 1) + log_z) / 2, rel=1e-12)]


# ───────────────────────────────────────────────────────────────────────── checkpoints


@pytest.mark.parametrize(
    "options, saved",
    [
        ({"epochs": 3}, [1, 2, 3]),  # checkpoint_every=1 by default
        ({"epochs": 5, "checkpoint_every": 2}, [2, 4, 5]),  # and the last epoch
        ({"epochs": 6, "checkpoint_every": 4, "early_stopping": 2}, [3]),  # and the epoch it stops at
    ],
)
def test_the_epochs_a_checkpoint_is_written_at(tmp_path, monkeypatch, options, saved):
    import bptt.io.model_file as model_file

    real, epochs = model_file.save_checkpoint, []

    def recording(path, model, state, arrays):
        epochs.append(state["epoch"])
        return real(path, model, state, arrays)

    monkeypatch.setattr(model_file, "save_checkpoint", recording)
    fit(unit(0.5), col(1.0), [0.0], optimizer=Frozen(), checkpoint=tmp_path / "c.ckpt",
        **dict(PLAIN, **options))
    assert epochs == saved


# ───────────────────────────────────────────────────────────────────────── refused options


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("checkpoint_every", True, r"checkpoint_every must be a positive integer \(epochs\); got True$"),
        ("checkpoint_every", 2.0, r"checkpoint_every must be a positive integer \(epochs\); got 2.0$"),
        ("weight_decay", True, r"weight_decay must be a finite number >= 0; got True$"),
        ("weight_decay", math.inf, r"weight_decay must be a finite number >= 0; got inf$"),
        ("weight_decay", "0.1", r"weight_decay must be a finite number >= 0; got '0.1'$"),
        ("batch_size", 2.0, r"batch_size must be a positive integer; got 2.0$"),
        ("early_stopping", 2.0, r"early_stopping must be a positive integer \(epochs\) or None; got 2.0$"),
        ("clip_norm", "1", r"clip_norm must be a positive number or None; got '1'$"),
        ("validation_split", "0.2", r"validation_split must be in \[0, 1\); got '0.2'$"),
        ("min_delta", math.inf, r"min_delta must be a finite number >= 0 \(the improvement that counts\); got inf$"),
        ("regularization", 2, r"regularization must be one of None, 'L1', 'L2'; got 2$"),
    ],
)
def test_refused_options_are_named_with_their_value(option, value, message):
    with pytest.raises(ValueError, match="^fit: " + message):
        fit(unit(0.5), col(1.0), [0.0], **dict(PLAIN, **{option: value}))


@pytest.mark.parametrize("regularization", [None, "none", "l1", "L2"])
def test_regularization_names(regularization):
    h = fit(unit(0.5), col(1.0), [0.0], epochs=1, optimizer=Frozen(), regularization=regularization, **PLAIN)
    assert h.loss == [0.25]


def sgd_in_order(w, b, xs, ys, lr, epochs):
    """Plain SGD on y = w·x + b, one sample a step, in the data's order."""
    for _ in range(epochs):
        for x, y in zip(xs, ys):
            d = 2 * (w * x + b - y)
            w, b = w - lr * d * x, b - lr * d
    return w, b


def test_shuffle_false_trains_in_the_datas_order_and_shuffle_true_does_not():
    xs, ys = [1.0, -2.0, 0.5, 3.0, -1.0], [1.0, 0.0, -1.0, 2.0, 0.5]
    kw = dict(epochs=2, batch_size=1, optimizer="sgd", learning_rate=0.05, **PLAIN)
    in_order = sgd_in_order(0.5, 0.25, xs, ys, 0.05, 2)
    m = unit(0.5, 0.25)
    fit(m, col(*xs), ys, **kw)
    assert wb(m) == (pytest.approx(in_order[0], rel=1e-12), pytest.approx(in_order[1], rel=1e-12))
    m = unit(0.5, 0.25)
    fit(m, col(*xs), ys, **dict(kw, shuffle=True))
    assert wb(m) != pytest.approx(in_order, rel=1e-6)


def test_drop_last_leaves_out_the_last_partial_batch():
    """Frozen w = 0.5, x = 1, 2, 3, targets 0, batches of 2: only the first, losses 0.25 and 1."""
    opt = Frozen()
    h = fit(unit(0.5), col(1.0, 2.0, 3.0), np.zeros(3), epochs=1, batch_size=2, optimizer=opt,
            **dict(PLAIN, drop_last=True))
    assert opt.iterations == 1 and h.loss == [0.625]


# ───────────────────────────────────────────────────────────────────────────── divergence

DIVERGE = dict(epochs=3, batch_size=1, **PLAIN)  # 3 samples: call 5 of the loss is epoch 2, batch 2


@pytest.mark.parametrize(
    "loss, optimizer, message",
    [
        (Diverging(5, value=math.inf), "sgd",
         r"^fit: the loss became inf at epoch 2, batch 2: training diverged; lower the learning rate "
         r"\(now 0\.25\) or set clip_norm$"),
        (Diverging(5, grad=1e300), "sgd",
         r"^fit: the gradient norm became inf at epoch 2, batch 2: training diverged; lower the learning "
         r"rate \(now 0\.25\) or set clip_norm$"),
        (Diverging(5, value=math.nan, grad=1e300), Rateless(),
         r"^fit: the loss became nan at epoch 2, batch 2: training diverged; lower the learning rate "
         r"\(now \?\) or set clip_norm$"),
        (Diverging(5, grad=math.nan), "sgd",
         r"^fit: NaN or Inf inside the network at epoch 2, batch 2: training diverged; lower the learning "
         r"rate \(now 0\.25\) or set clip_norm \(Dense\.backward: dy contains NaN at index \(0, 0\)"),
        (Diverging(5, grad=math.inf), Rateless(),
         r"^fit: NaN or Inf inside the network at epoch 2, batch 2: training diverged; lower the learning "
         r"rate \(now \?\) or set clip_norm \(Dense\.backward: dy contains Inf"),
    ],
)
def test_divergence_messages(loss, optimizer, message):
    m = unit(0.5)
    m.loss = loss
    with pytest.raises(FloatingPointError, match=message):
        fit(m, col(1.0, 2.0, 3.0), np.zeros(3), optimizer=optimizer, learning_rate=0.25, **DIVERGE)


# ─────────────────────────────────────────────────────────────────────────── the output


class Clock:
    """time.perf_counter for fit: 100, 100.5, 101, ... (each epoch takes 0.5 s)."""

    def __init__(self):
        self.now = 99.5

    def perf_counter(self):
        self.now += 0.5
        return self.now


class Bar:
    """A progress bar that records what fit does with it."""

    made: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.postfix, self.closed = kwargs, [], [], False
        Bar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)

    def close(self):
        self.closed = True


@pytest.fixture
def recorded(monkeypatch):
    import tqdm.auto

    Bar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    monkeypatch.setattr(bptt.train, "time", Clock())
    return Bar.made


def test_the_progress_output(recorded, capsys):
    """Frozen w = 0.5, x = 1, 2, 3, targets 0, batches of 2 and 1: the training loss is 3.5 / 3 and
    the validation loss (x = 2) 1; 3 samples in 0.5 s. Epoch 2 does not improve: early stopping."""
    fit(unit(0.5), col(1.0, 2.0, 3.0), np.zeros(3), validation_data=(col(2.0), np.zeros(1)), epochs=3,
        batch_size=2, optimizer=Frozen(), **dict(PLAIN, early_stopping=1, verbose=True))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "epoch 1/3  loss 1.1667  val_loss 1.0000  0.5 s  6 samples/s  *\n"
        "epoch 2/3  loss 1.1667  val_loss 1.0000  0.5 s  6 samples/s\n"
        "early stopping: no improvement for 1 epochs; best epoch 1\n"
    )
    assert len(recorded) == 2
    for epoch, bar in enumerate(recorded, 1):
        assert bar.kwargs == {"total": 2, "desc": f"epoch {epoch}/3", "unit": "batch", "leave": False,
                              "file": sys.stderr}
        assert bar.updates == [1, 1] and bar.closed
        assert bar.postfix == [{"loss": "0.6250", "refresh": False}, {"loss": "1.1667", "refresh": False}]


def test_the_progress_output_without_validation(recorded, capsys):
    h = fit(unit(0.5), col(1.0, 2.0, 3.0), np.zeros(3), epochs=1, batch_size=3, optimizer=Frozen(),
            **dict(PLAIN, verbose=True))
    assert h.seconds == [0.5]
    assert capsys.readouterr().err == "epoch 1/1  loss 1.1667  0.5 s  6 samples/s  *\n"


def test_quiet_fit_prints_nothing(recorded, capsys):
    fit(unit(0.5), col(1.0), [0.0], epochs=2, optimizer=Frozen(), **PLAIN)
    assert capsys.readouterr() == ("", "") and recorded == []


@pytest.mark.parametrize("checkpoint, verbose, printed", [(True, True, True), (False, True, False), (True, False, False)])
def test_the_message_of_an_interrupted_run(tmp_path, recorded, capsys, checkpoint, verbose, printed):
    """A Ctrl-C in epoch 2: verbose with a checkpoint tells where the last completed epoch is."""
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(unit(0.5), col(1.0), [0.0], epochs=3, optimizer=Frozen(interrupt_at=2),
            checkpoint=path if checkpoint else None, **dict(PLAIN, verbose=verbose))
    err = capsys.readouterr().err
    message = f"\ninterrupted; the last completed epoch is in {str(path)!r}: continue with resume=\n"
    assert err.endswith(message) if printed else "interrupted" not in err
    if checkpoint:
        assert load_checkpoint(path)[1]["epoch"] == 1


# ───────────────────────────────────────────────────────────────────────── BLAS threads


@pytest.mark.parametrize(
    "layers, shape, threads",
    [
        # 6 flops per parameter, sample and time step; one BLAS thread below 6e7 per batch
        ([Dense(367, 271), Dense(271, 1)], (100, 367), 2),  # 1e5 parameters: 6 · 100 · 1e5 = 6e7, not below
        ([Dense(367, 271), Dense(271, 1)], (99, 367), 1),  # 6 · 99 · 1e5
        # 12001 parameters, 10 time steps: 6 · 100 · 10 · 12001 > 6e7 (but not per time step, per feature)
        ([Flatten(), Dense(10, 1000), Dense(1000, 1)], (100, 10, 1), 2),
        ([Flatten(), Dense(10, 1000), Dense(1000, 1)], (80, 10, 1), 1),  # 6 · 80 · 10 · 12001 < 6e7
    ],
)
def test_small_batches_train_on_one_blas_thread(layers, shape, threads):
    import threadpoolctl  # a dependency of bptt: imported, never skipped

    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    # NumPy's wheels bring a BLAS threadpoolctl controls; without one, fit's rule cannot act either
    assert controller.lib_controllers, "threadpoolctl sees no BLAS library: fit cannot set its threads here"
    seen = []  # the fewest threads of a BLAS library: fit limits NumPy's (torch may bring another)
    opt = Frozen(on_step=lambda: seen.append(min(lc.get_num_threads() for lc in controller.lib_controllers)))
    m = Sequential(layers, loss="mse")
    X = np.zeros(shape, np.float32)
    with controller.limit(limits=2):
        fit(m, X, np.zeros(shape[0], np.float32), epochs=1, batch_size=shape[0], optimizer=opt, **PLAIN)
    assert seen == [threads]
