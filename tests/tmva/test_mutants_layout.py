"""Tests written for the surviving mutants of bptt/tmva/layout.py (docs/mutation.md): boundaries
of the size limits, plural forms, the shapes check_layout follows, the names in messages."""

from __future__ import annotations

import re

import pytest

from bptt.tmva import LayerSpec, TMVAOptionError, check_layout, input_shape, parse_batch_layout, parse_layout
from bptt.tmva.layout import count_parameters


def raises(message: str):
    return pytest.raises(TMVAOptionError, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize("token, fields", [("LSTM", "1 field"), ("LSTM|10", "2 fields"), ("GRU|1|2", "3 fields")])
def test_the_number_of_fields_is_said_in_the_singular_and_plural(token, fields):
    usage = "GRU|stateSize|inputSize|timeSteps[|rememberState|returnSequence[|resetGateAfter]] (4 to 7 fields)" \
        if token.startswith("GRU") else "LSTM|stateSize|inputSize|timeSteps[|rememberState|returnSequence] (4 to 6 fields)"
    with raises(f"Layout token 1 '{token}': expected {usage}; got {fields}"):
        parse_layout(token)
    with raises(f"Layout token 1 'RESHAPE': expected RESHAPE|FLAT or RESHAPE|depth|height|width; got 1 field"):
        parse_layout("RESHAPE")


def test_a_bad_first_dense_field_among_a_width_and_an_activation_is_taken_for_an_activation():
    with raises("Layout token 1 'DENSE|SWISH|64|TANH': field 2 must be an activation (TANH, RELU, SIGMOID, IDENTITY "
                "or LINEAR); got 'SWISH'"):
        parse_layout("DENSE|SWISH|64|TANH")


def test_the_size_limits_are_inclusive():
    assert parse_layout("LSTM|65536|1|1")[0].params["state_size"] == 65536  # parsed; too big to build
    assert input_shape("1024|1024") == (1024, 1, 1024)  # 2**20 values per event
    assert parse_batch_layout("1|1048576") == (1, 1048576, 0)
    with pytest.raises(TMVAOptionError, match="field 2 is 1048577, above bptt's limit of 1048576"):
        parse_batch_layout("1|1048577")
    # (4095 + 1) × 4096 = 2**24 parameters exactly: accepted
    assert check_layout(parse_layout("DENSE|4096|TANH"), (1, 4095)) == 2**24
    with pytest.raises(TMVAOptionError, match="16781312 trainable parameters"):
        check_layout(parse_layout("DENSE|4097|TANH"), (1, 4095))


def test_check_layout_limits_a_list_written_by_hand():
    dense = LayerSpec("dense", {"units": 1, "activation": "identity"}, "LINEAR", 1)
    assert check_layout([dense] * 1024, (1, 1)) == 2 * 1024
    with raises("Layout: 1025 layers, above bptt's limit of 1024 layers"):
        check_layout([dense] * 1025, (1, 1))


def test_a_dense_layer_after_a_flatten_gives_a_vector():
    # flatten (15,), dense (4,), reshape 1|2|2 needs 4 values: fits
    assert check_layout(parse_layout("RESHAPE|FLAT,DENSE|4|TANH,RESHAPE|1|2|2,LINEAR"), (5, 3)) == 16 * 4 + 3
    assert check_layout(parse_layout("RESHAPE|FLAT,LINEAR"), None) is None  # unknown input: no count, no error


def test_a_reshape_to_ones_leaves_one_value():
    assert check_layout(parse_layout("RESHAPE|FLAT,RESHAPE|1|1|1,DENSE|3|TANH"), (1, 1)) == 2 * 3


def test_count_parameters_is_check_layouts_count():
    layers = parse_layout("LSTM|4|3|5|0|0,LINEAR")
    assert count_parameters(layers, (5, 3)) == 4 * 4 * 8 + 5
    assert count_parameters(parse_layout("DENSE|8|TANH"), None) is None
    with pytest.raises(TMVAOptionError, match="field 3 \\(input size\\) is 3 but InputLayout=5\\|2"):
        count_parameters(layers, (5, 2))


def test_a_lower_case_n_in_a_width_says_its_value():
    with raises("Layout token 1 'DENSE|n-10|TANH': field 2: the width 'n-10' is -3 with N = 7, negative; write a "
                "positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"):
        parse_layout("DENSE|n-10|TANH", n_inputs=7)
    with raises("Layout token 1 'DENSE|65537|TANH': field 2: the width '65537' is 65537, above bptt's limit of 65536 "
                "units per layer; write a positive integer or a formula of N (the number of input variables), e.g. "
                "N+10 or 2*N"):
        parse_layout("DENSE|65537|TANH")
    assert parse_layout("DENSE|65536.9|TANH")[0].params["units"] == 65536  # truncated, as TMVA's int


@pytest.mark.parametrize("fn, name", [(parse_batch_layout, "parse_batch_layout"), (input_shape, "parse_input_layout"),
                                      (parse_layout, "parse_layout")])
def test_a_value_that_is_not_a_string_is_refused_by_name(fn, name):
    with raises(f"{name}: expected a string; got int 5"):
        fn(5)
