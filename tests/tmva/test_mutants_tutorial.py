"""bptt.tmva.network's TMVA-options bridge where mutation testing found no test (docs/mutation.md).

Each test names what it pins down; the expected values are written out by hand from TMVA's
conventions and the documented behaviour, never taken from the code under test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bptt.model import Sequential
from bptt.tmva import TMVAOptionError, TrainingStrategy, parse_options
from bptt.tmva.network import fit_arguments, network_from_options
from bptt.tmva.tutorial import _write_json, format_table

LAYOUT = "LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR"
HEAD = "InputLayout=5|3:Layout=" + LAYOUT


def test_fit_arguments_validation_split_defaults_to_tmvas_20_percent():
    assert fit_arguments(TrainingStrategy())["validation_split"] == 0.2


def test_a_validation_size_as_a_percentage_is_the_fraction():
    # (ValidationSize as a number of events: tests/tmva/test_mutants_tutorial_validation.py.)
    _, args = network_from_options(HEAD + ":ValidationSize=25%")
    assert args["validation_split"] == 0.25


def test_options_already_parsed_give_the_same_network():
    text = HEAD + ":RandomSeed=3:TrainingStrategy=LearningRate=0.01,BatchSize=7,MaxEpochs=4"
    from_text, args_text = network_from_options(text)
    from_dict, args_dict = network_from_options(parse_options(text))
    assert args_dict == args_text
    assert args_dict["learning_rate"] == 0.01 and args_dict["batch_size"] == 7 and args_dict["epochs"] == 4
    for k, p in from_text.parameters().items():
        np.testing.assert_array_equal(from_dict.parameters()[k], p)


@pytest.mark.parametrize(
    "text, missing", [("Layout=" + LAYOUT, "InputLayout"), ("InputLayout=5|3", "Layout")]
)
def test_missing_layouts_are_named(text, missing):
    with pytest.raises(TMVAOptionError, match=rf"^the options need {missing}=\.\.\.; got only \['"):
        network_from_options(text)


def test_an_error_strategy_without_a_loss_is_refused_by_name():
    # parse_options accepts only TMVA's three strategies; a dict can carry any other.
    opts = parse_options(HEAD)
    opts["error_strategy"] = "CHEBYSHEV"
    with pytest.raises(TMVAOptionError) as info:
        network_from_options(opts)
    assert str(info.value) == (
        "ErrorStrategy=CHEBYSHEV is not supported; use one of CROSSENTROPY, SUMOFSQUARES, MUTUALEXCLUSIVE"
    )


def test_an_explicit_seed_wins_over_random_seed():
    model, args = network_from_options(HEAD + ":RandomSeed=77", seed=5)
    assert args["seed"] == 5
    same = Sequential.from_tmva(LAYOUT, "5|3", seed=5, weight_initialization="XAVIER")  # TMVA's default
    for k, p in same.parameters().items():
        np.testing.assert_array_equal(model.parameters()[k], p)


def test_format_table_columns():
    """One row per method under TMVA's title: test ROC AUC, accuracy, the test signal efficiency at
    10 % background efficiency, the smaller of the two overtraining (Kolmogorov-Smirnov)
    probabilities, training seconds, epochs run (best epoch); '-' for the BDTG, which has no epochs."""

    def entry(auc, acc, eff, ks, seconds, epochs, best):
        return {"model_file": None, "epochs_run": epochs, "best_epoch": best, "roc_auc": auc, "accuracy": acc,
                "training_seconds": seconds, "roc_integral": {"test": 0.0, "train": 0.0},
                "signal_efficiency": {"0.01": {"test": 0.01, "test_error": 0.0, "train": 0.9},
                                      "0.10": {"test": eff, "test_error": 0.0, "train": 0.9},
                                      "0.30": {"test": 0.3, "test_error": 0.0, "train": 0.9}},
                "overtraining": ks}

    summary = {
        "networks": {
            "LSTM": entry(0.91234, 0.8, 0.61, {"signal": 0.22, "background": 0.86}, 1.5, 7, 5),
            "GRU": entry(0.5, 0.625, 0.1, {"signal": 0.9, "background": 0.45}, 12.3, 20, 20),
            "BDT": entry(0.75, 0.7, 0.0, {"signal": 0.5, "background": 0.03}, 3.0, None, None),
        }
    }
    assert format_table(summary).split("\n") == [
        "method     test ROC AUC  accuracy  eff_S@B=0.10  KS prob  training s  epochs",
        "TMVA_LSTM        0.9123    0.8000         0.610    0.220        1.50    7 (best 5)",
        "TMVA_GRU         0.5000    0.6250         0.100    0.450       12.30   20 (best 20)",
        "BDTG             0.7500    0.7000         0.000    0.030        3.00    -",
    ]


def test_write_json_is_indented_by_two_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "m.json"
    _write_json(str(path), {"a": 1, "b": [2, 3]})
    assert path.read_text() == '{\n  "a": 1,\n  "b": [\n    2,\n    3\n  ]\n}\n'
    assert json.loads(path.read_text()) == {"a": 1, "b": [2, 3]}
