"""bptt.tmva's error messages, word for word, where mutation testing found none pinned (docs/mutation.md).

A TMVA user reads these messages to fix an option string: each names the token (or entry) and its
position, the field, what the field means and what was written. The survivors of the mutation run
changed exactly those words (a field's meaning replaced by None or upper-cased, the example of
the empty-layer message lower-cased, the message of a typeless dense token with too many fields
dropped) or where a ``Key=Value`` entry of a TrainingStrategy is split (at the first ``=``: the
key never contains one) and whether an empty key is refused. Every expected message below is
written out by hand from the module's documented format, ``<where>: <what was expected>; got <value>``.
"""

from __future__ import annotations

import re

import pytest

from bptt.tmva import TMVAOptionError, parse_input_layout, parse_layout, parse_training_strategy


def raises_exactly(message: str):
    return pytest.raises(TMVAOptionError, match=rf"^{re.escape(message)}$")


# ──────────────────────────────────────────────────────────────────── TrainingStrategy entries


@pytest.mark.parametrize("entry, message", [
    # split at the first '=': the key is LearningRate, its value '1e-3=2' is not a number
    ("LearningRate=1e-3=2",
     "TrainingStrategy entry 1 'LearningRate=1e-3=2': LearningRate must be a positive number (learning rate); "
     "got '1e-3=2'"),
    ("BatchSize=10=20",
     "TrainingStrategy entry 1 'BatchSize=10=20': BatchSize must be a positive integer (sequences per mini-batch); "
     "got '10=20'"),
    # an entry needs a key, an '=' and a value
    ("=5", "TrainingStrategy entry 1 '=5': expected Key=Value, e.g. 'BatchSize=100'"),
    ("BatchSize=", "TrainingStrategy entry 1 'BatchSize=': expected Key=Value, e.g. 'BatchSize=100'"),
    ("BatchSize", "TrainingStrategy entry 1 'BatchSize': expected Key=Value, e.g. 'BatchSize=100'"),
    (" = ", "TrainingStrategy entry 1 '=': expected Key=Value, e.g. 'BatchSize=100'"),
])
def test_a_strategy_entry_is_split_at_its_first_equals_sign(entry, message):
    with raises_exactly(message):
        parse_training_strategy(entry)


def test_an_entry_without_a_key_is_named_with_its_phase_and_position():
    with raises_exactly("TrainingStrategy phase 2 entry 2 '=0.1': expected Key=Value, e.g. 'BatchSize=100'"):
        parse_training_strategy("MaxEpochs=3|MaxEpochs=4,=0.1")


# ──────────────────────────────────────────────────────────────────────────────── Layout tokens


@pytest.mark.parametrize("layout, message", [
    ("RESHAPE|x|2|3", "Layout token 1 'RESHAPE|x|2|3': field 2 must be a positive integer (depth); got 'x'"),
    ("RESHAPE|1|0|3", "Layout token 1 'RESHAPE|1|0|3': field 3 must be a positive integer (height); got '0'"),
    ("RESHAPE|1|2|w", "Layout token 1 'RESHAPE|1|2|w': field 4 must be a positive integer (width); got 'w'"),
])
def test_reshape_fields_are_named(layout, message):
    with raises_exactly(message):
        parse_layout(layout)


@pytest.mark.parametrize("layout, position", [("LINEAR,,LINEAR", 2), (",LINEAR", 1), ("DENSE|4|TANH, ", 2)])
def test_an_empty_layer_shows_an_example_in_tmvas_upper_case(layout, position):
    with raises_exactly(
        f"Layout token {position} '': empty layer; remove the extra ',' or write a layer such as DENSE|64|TANH"
    ):
        parse_layout(layout)


@pytest.mark.parametrize("layout, message", [
    ("TANH|4|5", "Layout token 1 'TANH|4|5': field 3: a second width '5' (field 2 is one); a dense layer "
                 "takes one width and one activation"),
    ("DENSE|4|RELU,LINEAR|1|2|3", "Layout token 2 'LINEAR|1|2|3': field 3: a second width '2' (field 2 is one); "
                                  "a dense layer takes one width and one activation"),
    ("TANH|x", "Layout token 1 'TANH|x': field 2 must be a positive integer (number of units); got 'x'"),
    ("SIGMOID|-1", "Layout token 1 'SIGMOID|-1': field 2: the width '-1' is -1, negative; write a positive integer "
                   "or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
])
def test_a_dense_token_without_a_type(layout, message):
    with raises_exactly(message):
        parse_layout(layout)


def test_a_dense_token_without_a_type_takes_its_units():
    (layer,) = parse_layout("RELU|7")
    assert (layer.kind, layer.params) == ("dense", {"units": 7, "activation": "relu"})


# ──────────────────────────────────────────────────────────────────────────────── InputLayout


@pytest.mark.parametrize("text, message", [
    ("0|1|30", "InputLayout '0|1|30': field 1 must be a positive integer (depth); got '0'"),
    ("1|0|30", "InputLayout '1|0|30': field 2 must be a positive integer (height); got '0'"),
    ("10|1|x", "InputLayout '10|1|x': field 3 must be a positive integer (width); got 'x'"),
    ("0|30", "InputLayout '0|30': field 1 must be a positive integer (number of time steps); got '0'"),
    ("10|-3", "InputLayout '10|-3': field 2 must be a positive integer (number of features); got '-3'"),
])
def test_input_layout_fields_are_named(text, message):
    with raises_exactly(message):
        parse_input_layout(text)
