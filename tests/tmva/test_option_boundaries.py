"""Boundary values of every validated option: the last value accepted and the first refused.

Each refusal is a ValueError (TMVAOptionError for option strings) that names the option and the
value received; each accepted boundary value really takes effect.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt.layers.dropout import Dropout
from bptt.model import Sequential
from bptt.tmva import TMVAOptionError, parse_input_layout, parse_layout, parse_options, parse_training_strategy

# ──────────────────────────────────────────────────────────────── TMVA TrainingStrategy


@pytest.mark.parametrize(
    "entry, field, value",
    [
        ("LearningRate=1e-300", "learning_rate", 1e-300),
        ("Momentum=0", "momentum", 0.0),
        ("Momentum=0.999", "momentum", 0.999),
        ("ConvergenceSteps=1", "convergence_steps", 1),
        ("BatchSize=1", "batch_size", 1),
        ("TestRepetitions=1", "test_repetitions", 1),
        ("WeightDecay=0", "weight_decay", 0.0),
        ("MaxEpochs=1", "max_epochs", 1),
        ("DropConfig=0", "drop_config", [0.0]),
        ("DropConfig=0.0+0.999", "drop_config", [0.0, 0.999]),
        ("Repetitions=1", "repetitions", 1),
    ],
)
def test_strategy_accepts_its_boundary_values(entry, field, value):
    assert getattr(parse_training_strategy(entry), field) == value


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("LearningRate=0", "a positive number"),
        ("LearningRate=-1e-300", "a positive number"),
        ("LearningRate=inf", "a positive number"),
        ("Momentum=1", r"a number in \[0, 1\)"),
        ("Momentum=-0.001", r"a number in \[0, 1\)"),
        ("ConvergenceSteps=0", "a positive integer"),
        ("BatchSize=0", "a positive integer"),
        ("BatchSize=1.0", "a positive integer"),
        ("TestRepetitions=0", "a positive integer"),
        ("WeightDecay=-1e-9", "a number >= 0"),
        ("WeightDecay=inf", "a number >= 0"),
        ("MaxEpochs=0", "a positive integer"),
        ("DropConfig=1", r"dropout probabilities in \[0, 1\)"),
        ("DropConfig=0.5+-0.1", r"dropout probabilities in \[0, 1\)"),
        ("Repetitions=0", "a positive integer"),
    ],
)
def test_strategy_refuses_the_first_value_past_each_boundary(entry, expected):
    key, _, value = entry.partition("=")
    with pytest.raises(TMVAOptionError, match=rf"{key} must be {expected}.* \(.*\); got '{re.escape(value)}'"):
        parse_training_strategy(entry)


# ───────────────────────────────────────────────────────────────── the booking string


@pytest.mark.parametrize(
    "option, key, value",
    [
        ("ValidationSize=2", "validation_size", 2),  # a number of events > 1
        ("ValidationSize=0.999", "validation_size", 0.999),
        ("ValidationSize=1e-6", "validation_size", 1e-6),
        ("ValidationSize=99.5%", "validation_size", 0.995),
        ("RandomSeed=0", "random_seed", 0),
        ("BatchLayout=0", "batch_layout", (0, 0, 0)),  # TMVA's "not given"
        ("InputLayout=1|1", "input_layout", (1, 1)),
    ],
)
def test_booking_accepts_its_boundary_values(option, key, value):
    assert parse_options(option)[key] == pytest.approx(value)


@pytest.mark.parametrize(
    "option",
    ["ValidationSize=0", "ValidationSize=1", "ValidationSize=0%", "ValidationSize=100%", "ValidationSize=-0.2",
     "RandomSeed=-1", "BatchLayout=-1", "BatchLayout=1|1|1|1", "InputLayout=0|1", "InputLayout=1|0"],
)
def test_booking_refuses_the_first_value_past_each_boundary(option):
    name, _, value = option.partition("=")
    with pytest.raises(TMVAOptionError, match=rf"option 1 .*{name}.*'{value}'"):
        parse_options(option)


@pytest.mark.parametrize("token", ["LSTM|1|1|1", "GRU|1|1|1|0|0|0", "RNN|1|1|1|1|1", "DENSE|1|TANH", "RELU|1"])
def test_layout_accepts_size_one(token):
    (spec,) = parse_layout(token)
    assert 1 in spec.params.values()


@pytest.mark.parametrize("token", ["LSTM|0|1|1", "GRU|1|0|1", "RNN|1|1|0", "DENSE|-1|TANH", "RELU|-2", "LSTM|1|1|1|2"])
def test_layout_refuses_size_zero_and_flag_two(token):
    with pytest.raises(TMVAOptionError, match=rf"Layout token 1 '{token.replace('|', '[|]')}': field \d(:| must be)"):
        parse_layout(token)


@pytest.mark.parametrize("token", ["DENSE|0|TANH", "RELU|0", "DENSE|TANH", "DENSE"])
def test_a_dense_width_of_zero_or_none_is_the_output_layers(token):
    """TMVA (ParseDenseLayer): a width of 0, or none, is the number of outputs (1 for a binary
    classifier); the activation defaults to TANH."""
    (spec,) = parse_layout(token)
    assert spec.params["units"] == 1
    (spec,) = parse_layout(token, n_outputs=4)
    assert spec.params["units"] == 4


def test_input_layout_of_one_step_and_one_feature_builds_and_runs():
    assert parse_input_layout("1|1|1") == (1, 1)
    model = Sequential.from_tmva("LSTM|1|1|1|0|0,LINEAR", "1|1", seed=0)
    assert model.predict_proba(np.ones((2, 1, 1), np.float32)).shape == (2,)


# ───────────────────────────────────────────────────────────────────────────────── fit


def task(n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4, 2)).astype(np.float32)
    return X, (X[:, :, 0].mean(axis=1) > 0).astype(np.float32)


def small():
    return Sequential.from_tmva("GRU|3|2|4|0|0,LINEAR", "4|2", seed=0)


@pytest.mark.parametrize(
    "option, accepted, check",
    [
        ("epochs", 1, lambda h, m: len(h.loss) == 1),
        ("batch_size", 1, lambda h, m: len(h.loss) == 2),
        ("batch_size", 10**6, lambda h, m: len(h.loss) == 2),  # larger than the data: one batch
        ("early_stopping", 1, lambda h, m: not h.stopped_early or len(h.loss) == h.best_epoch + 1),
        ("early_stopping", None, lambda h, m: len(h.loss) == 2),
        ("validation_split", 0.0, lambda h, m: all(np.isnan(h.val_loss))),
        ("clip_norm", 1e-12, lambda h, m: len(h.loss) == 2),
        ("checkpoint_every", 1, lambda h, m: len(h.loss) == 2),
    ],
)
def test_fit_accepts_its_boundary_values(option, accepted, check):
    X, y = task()
    m = small()
    kw = {"epochs": 2, "batch_size": 8, "verbose": False, option: accepted}
    h = m.fit(X, y, **kw)
    assert check(h, m)


def test_clip_norm_at_its_smallest_barely_moves_the_weights():
    X, y = task()
    m = small()
    before = {k: p.copy() for k, p in m.parameters().items()}
    m.fit(X, y, epochs=1, batch_size=8, optimizer="sgd", learning_rate=1.0, clip_norm=1e-9, verbose=False)
    moved = np.sqrt(sum(np.sum((p - before[k]).astype(np.float64) ** 2) for k, p in m.parameters().items()))
    assert 0 < moved <= 4 * 1e-9 * 1.001  # 4 steps of at most lr · clip_norm each


@pytest.mark.parametrize(
    "option, refused, message",
    [
        ("epochs", 0, "epochs must be a positive integer; got 0"),
        ("epochs", 2.0, "epochs must be a positive integer; got 2.0"),
        ("batch_size", 0, "batch_size must be a positive integer; got 0"),
        ("early_stopping", 0, r"early_stopping must be a positive integer \(epochs\) or None; got 0"),
        ("validation_split", 1.0, r"validation_split must be in \[0, 1\); got 1.0"),
        ("validation_split", -1e-9, r"validation_split must be in \[0, 1\); got -1e-09"),
        ("clip_norm", 0.0, "clip_norm must be a positive number or None; got 0.0"),
        ("clip_norm", float("nan"), "clip_norm must be a positive number or None; got nan"),
        ("checkpoint_every", 0, "checkpoint_every must be a positive integer"),
        ("min_delta", -0.1, r"min_delta must be a finite number >= 0"),
        ("min_delta", float("nan"), r"min_delta must be a finite number >= 0"),
        ("learning_rate", 0.0, "lr must be a positive finite number; got 0.0"),
        ("weight_decay", -1e-3, "weight_decay must be a finite number >= 0"),
        ("regularization", "L3", "regularization must be one of None, 'L1', 'L2'"),
    ],
)
def test_fit_refuses_the_first_value_past_each_boundary(option, refused, message):
    X, y = task()
    m = small()
    before = {k: p.copy() for k, p in m.parameters().items()}
    kw = {"epochs": 2, "batch_size": 8, "verbose": False, option: refused}
    with pytest.raises(ValueError, match=message):
        m.fit(X, y, **kw)
    for k, p in m.parameters().items():  # refused before any training
        np.testing.assert_array_equal(p, before[k])


# ───────────────────────────────────────────────────────────────────────────── dropout


def test_dropout_rate_boundaries():
    assert Dropout(0.0).rate == 0.0 and Dropout(0.999).rate == 0.999
    for bad in (1.0, -1e-9):
        with pytest.raises(ValueError, match=r"rate"):
            Dropout(bad)
