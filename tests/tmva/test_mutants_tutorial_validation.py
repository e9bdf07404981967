"""TMVA's ValidationSize given as a number of events (issue 19), from the options to fit.

TMVA's MethodDL takes ValidationSize as a fraction (0.2), a percentage (20%) or a number of events
(100); a number of events must be fewer than the training events (TMVA stops with "Validation size
... is larger than or equal in size to training set"). bptt's fit takes a fraction, so
``bptt.tmva.network`` turns a number of events into ``events / n_events``; before, it silently became
0.2, whatever the count (the two mutants of that fallback survived, docs/mutation.md). Pinned
here: the fraction for a count, the refusals (a count of at least the events, a count without
the number of events) with messages that name ValidationSize, the count and the events, and the
command line, which knows the number of events once it has read the data. The expected fractions
are the plain quotient count / events, written out.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt.cli import main
from bptt.data.arrays import train_test_split, write_npz
from bptt.io.model_file import load_checkpoint
from bptt.tmva import TMVAOptionError, TrainingStrategy
from bptt.tmva.network import fit_arguments, network_from_options, validation_split

HEAD = "InputLayout=5|3:Layout=LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR"


def exactly(message: str) -> str:
    return rf"^{re.escape(message)}$"


@pytest.mark.parametrize("size, n_events, fraction", [
    (30, 120, 0.25), (2, 4, 0.5), (2, 3, 2 / 3), (99, 100, 0.99), (500, 2000, 0.25),
])
def test_a_number_of_events_becomes_that_share_of_the_events(size, n_events, fraction):
    assert validation_split(size, n_events) == pytest.approx(fraction, abs=1e-15)
    assert fit_arguments(TrainingStrategy(), size, n_events)["validation_split"] == pytest.approx(fraction, abs=1e-15)
    _, args = network_from_options(f"{HEAD}:ValidationSize={size}", n_events=n_events)
    assert args["validation_split"] == pytest.approx(fraction, abs=1e-15)


@pytest.mark.parametrize("text, fraction", [("0.3", 0.3), ("30%", 0.3), ("0.05", 0.05)])
def test_a_fraction_or_percentage_needs_no_number_of_events(text, fraction):
    _, args = network_from_options(f"{HEAD}:ValidationSize={text}")
    assert args["validation_split"] == pytest.approx(fraction, abs=1e-15)
    _, args = network_from_options(f"{HEAD}:ValidationSize={text}", n_events=7)
    assert args["validation_split"] == pytest.approx(fraction, abs=1e-15)


def test_without_validation_size_tmvas_default_of_20_percent():
    _, args = network_from_options(HEAD)
    assert args["validation_split"] == 0.2
    _, args = network_from_options(HEAD, n_events=10)
    assert args["validation_split"] == 0.2
    assert validation_split(0.2) == 0.2


@pytest.mark.parametrize("size, n_events", [(120, 120), (121, 120), (2, 2), (5000, 40)])
def test_a_count_of_at_least_the_events_is_refused(size, n_events):
    message = (
        f"ValidationSize={size} events must be fewer than the {n_events} training events; give fewer "
        f"events or a fraction such as ValidationSize=0.2"
    )
    with pytest.raises(TMVAOptionError, match=exactly(message)):
        network_from_options(f"{HEAD}:ValidationSize={size}", n_events=n_events)
    with pytest.raises(ValueError, match=exactly(message)):
        validation_split(size, n_events)


def test_a_count_without_the_number_of_events_is_refused():
    message = (
        "ValidationSize=30 is a number of events: give the number of training events (n_events) to turn it "
        "into a fraction"
    )
    with pytest.raises(TMVAOptionError, match=exactly(message)):
        network_from_options(f"{HEAD}:ValidationSize=30")
    with pytest.raises(TMVAOptionError, match=exactly(message)):
        fit_arguments(TrainingStrategy(), 30)


@pytest.mark.parametrize("value", [None, True, "0.2", [0.2]])
def test_a_validation_size_that_is_neither_a_fraction_nor_a_count(value):
    with pytest.raises(TMVAOptionError, match=exactly(
        f"ValidationSize must be a fraction (float) or a number of events (int); got {value!r}"
    )):
        fit_arguments(TrainingStrategy(), value, 100)


@pytest.mark.parametrize("n_signal, n_background, size", [(60, 60, 30), (50, 70, 30), (40, 80, 24), (30, 70, 10)])
def test_fit_holds_out_that_many_events(n_signal, n_background, size):
    """fit splits each class with round(fraction · class count): the count comes back exactly."""
    y = np.r_[np.ones(n_signal), np.zeros(n_background)]
    X = np.zeros((len(y), 2, 1))
    _, X_val, _, _ = train_test_split(X, y, validation_split(size, len(y)), seed=0)
    assert len(X_val) == size


def _data(tmp_path, n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5, 3)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    return write_npz(str(tmp_path / "d.npz"), X, y)


def _tmva_training_events(path) -> int:
    """TMVA's default split trains on half of each class (an odd count gives the extra event to the test part)."""
    y = np.load(path)["y"]
    return int((y == 1).sum()) // 2 + int((y == 0).sum()) // 2


def test_the_command_line_turns_a_count_into_a_fraction(tmp_path, capsys):
    data, ckpt = _data(tmp_path), str(tmp_path / "c.ckpt")
    n_train = _tmva_training_events(data)
    assert n_train == 19  # the file's 40 events are 21 of one class and 19 of the other
    options = f"{HEAD}:ValidationSize=10:TrainingStrategy=MaxEpochs=1,BatchSize=8"
    code = main(["train", data, "--options", options, "--out", str(tmp_path / "m.bptt"), "--checkpoint", ckpt, "--quiet"])
    assert code == 0, capsys.readouterr().err
    _, state, _ = load_checkpoint(ckpt)
    assert state["options"]["validation_split"] == 10 / n_train  # 10 of the 19 events bptt train trains on


def test_the_command_line_refuses_a_count_of_all_the_events(tmp_path, capsys):
    options = f"{HEAD}:ValidationSize=19"  # all of TMVA's training half of the 40 events
    assert main(["train", _data(tmp_path), "--options", options, "--out", str(tmp_path / "m.bptt"), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "bptt train: error: ValidationSize=19 events must be fewer than the 19 training events; give fewer "
        "events or a fraction such as ValidationSize=0.2\n"
    )
    assert not (tmp_path / "m.bptt").exists()
