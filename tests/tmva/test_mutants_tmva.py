"""bptt.tmva's option values at their boundaries, where mutation testing found no test (docs/mutation.md).

The accepted ranges are TMVA's, as the parser documents them: flags take True/False (T/F, 1/0, any
case); ValidationSize a fraction in (0, 1), a percentage in (0%, 100%) or a number of events > 1;
BatchLayout 1 to 3 positive integers; DropConfig probabilities and Momentum in [0, 1);
WeightDecay >= 0; a GRU token has at most 7 fields, the other recurrent tokens at most 6.
"""

from __future__ import annotations

import re

import pytest

from bptt.tmva import (
    TMVAOptionError,
    check_layout,
    parse_input_layout,
    parse_layout,
    parse_options,
    parse_training_strategy,
)


@pytest.mark.parametrize("value, expected", [
    ("True", True), ("true", True), ("T", True), ("t", True), ("1", True),
    ("False", False), ("FALSE", False), ("F", False), ("f", False), ("0", False),
])
def test_flag_values(value, expected):
    assert parse_options(f"V={value}")["verbose"] is expected
    assert parse_options(f"H={value}")["help"] is expected


def test_a_flag_value_that_is_not_a_bool():
    with pytest.raises(TMVAOptionError, match=r"^option 1 'V=yes': V must be True or False; got 'yes'$"):
        parse_options("V=yes")


def test_a_negated_flag_with_a_value():
    with pytest.raises(TMVAOptionError, match=r"^option 1 '!V=True': write either !V or V=False, not both$"):
        parse_options("!V=True")


@pytest.mark.parametrize("value, expected", [
    ("0.5%", 0.005), ("99%", 0.99), ("20%", 0.2), ("2", 2), ("100", 100), ("0.001", 0.001), ("0.999", 0.999),
])
def test_validation_size_accepted(value, expected):
    got = parse_options(f"ValidationSize={value}")["validation_size"]
    assert got == pytest.approx(expected) and type(got) is type(expected)


@pytest.mark.parametrize("value", ["0%", "100%", "150%", "-5%"])
def test_validation_size_percentages_outside_0_100(value):
    with pytest.raises(TMVAOptionError, match=r"ValidationSize must be a percentage in \(0%, 100%\); got"):
        parse_options(f"ValidationSize={value}")


@pytest.mark.parametrize("value", ["1", "0", "0.0", "1.0", "1.5"])
def test_validation_size_neither_fraction_nor_event_count(value):
    with pytest.raises(TMVAOptionError, match=r"ValidationSize must be a fraction in \(0, 1\)"):
        parse_options(f"ValidationSize={value}")


@pytest.mark.parametrize("value, expected", [
    ("7", (7, 0, 0)), ("100|10", (100, 10, 0)), ("100|10|30", (100, 10, 30)), ("0|0|0", (0, 0, 0)), ("0|5", (0, 5, 0)),
])
def test_batch_layout_accepted(value, expected):
    """MethodDL::ParseBatchLayout: depth|height|width in that order, a missing field is 0 ("not given")."""
    assert parse_options(f"BatchLayout={value}")["batch_layout"] == expected


@pytest.mark.parametrize("value, message", [
    ("1|2|3|4", "expected 1 to 3 numbers depth|height|width; got 4 fields"),
    ("10|x", "field 2 must be an integer >= 0; got 'x'"),
    ("x", "field 1 must be an integer >= 0; got 'x'"),
    ("-1|5", "field 1 must be an integer >= 0; got '-1'"),
    ("1|2000000", "field 2 is 2000000, above bptt's limit of 1048576"),
])
def test_batch_layout_refused(value, message):
    with pytest.raises(TMVAOptionError, match=rf"^option 1 \(BatchLayout\): BatchLayout '{re.escape(value)}': {re.escape(message)}$"):
        parse_options(f"BatchLayout={value}")


def test_probabilities_and_momentum_stop_below_one():
    assert parse_training_strategy("DropConfig=0.0+0.99").drop_config == [0.0, 0.99]
    assert parse_training_strategy("Momentum=0.99").momentum == 0.99
    for text in ("DropConfig=0.0+1.0", "Momentum=1", "Momentum=1.0"):
        with pytest.raises(TMVAOptionError):
            parse_training_strategy(text)


def test_weight_decay_zero_is_allowed():
    assert parse_training_strategy("WeightDecay=0").weight_decay == 0.0
    with pytest.raises(TMVAOptionError):
        parse_training_strategy("WeightDecay=-0.1")


def test_multithreading_flag_in_a_strategy():
    assert parse_training_strategy("Multithreading=T").multithreading is True
    assert parse_training_strategy("Multithreading=0").multithreading is False


def test_several_training_phases_in_a_booking_string():
    phases = parse_options("TrainingStrategy=LearningRate=1e-2,MaxEpochs=5|LearningRate=1e-3,MaxEpochs=10")[
        "training_strategy"
    ]
    assert [(p.learning_rate, p.max_epochs) for p in phases] == [(1e-2, 5), (1e-3, 10)]
    (one,) = parse_options("TrainingStrategy=LearningRate=1e-2")["training_strategy"]
    assert one.learning_rate == 1e-2


def test_gru_takes_seven_fields_lstm_six():
    (gru,) = parse_layout("GRU|8|30|10|0|1|1")
    assert gru.params["reset_after"] is True
    with pytest.raises(TMVAOptionError, match=r"GRU\|stateSize\|inputSize\|timeSteps\[\|rememberState\|"
                                              r"returnSequence\[\|resetGateAfter\]\] \(4 to 7 fields\)"):
        parse_layout("GRU|8|30|10|0|1|1|1")
    with pytest.raises(TMVAOptionError, match=r"LSTM\|stateSize\|inputSize\|timeSteps\[\|rememberState\|"
                                              r"returnSequence\] \(4 to 6 fields\)"):
        parse_layout("LSTM|8|30|10|0|1|1")


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_a_first_recurrent_layer_must_match_the_input_layout(cell):
    with pytest.raises(TMVAOptionError, match=r"field 3 \(input size\) is 2 but InputLayout=5\|3 gives 3"):
        parse_options(f"InputLayout=5|3:Layout={cell}|4|2|5,LINEAR")


@pytest.mark.parametrize("first", ["RNN", "LSTM", "GRU"])
def test_a_stacked_layer_after_a_sequence_must_match_it(first):
    with pytest.raises(TMVAOptionError) as info:
        check_layout(parse_layout(f"{first}|4|3|5|0|1,LSTM|4|4|6,LINEAR"))
    assert str(info.value) == (
        f"Layout token 2 'LSTM|4|4|6': field 4 (time steps) is 6 but the previous {first} (token 1) has 5; "
        "make them equal"
    )
    # the same stack after a layer that returns only its last state is not checked
    check_layout(parse_layout(f"{first}|4|3|5|0|0,RESHAPE|FLAT,DENSE|4|TANH"))


def test_check_layout_without_an_input_layout():
    check_layout(parse_layout("LSTM|4|3|5,LINEAR"))
    check_layout(parse_layout("DENSE|4|TANH,LSTM|4|3|5,LINEAR"))


@pytest.mark.parametrize("parse, name", [
    (parse_input_layout, "parse_input_layout"), (parse_layout, "parse_layout"),
    (parse_training_strategy, "parse_training_strategy"), (parse_options, "parse_options"),
])
def test_a_value_that_is_not_a_string(parse, name):
    with pytest.raises(TMVAOptionError, match=rf"^{name}: expected a string; got int 5$"):
        parse(5)


def test_unknown_options_are_named_without_their_bang():
    with pytest.raises(TMVAOptionError, match=r"^option 1 '!Foo': unknown option 'Foo'; expected one of H, V"):
        parse_options("!Foo")
    with pytest.raises(TMVAOptionError, match=r"unknown option 'XV'"):
        parse_options("XV")


def test_an_option_without_a_value():
    with pytest.raises(TMVAOptionError, match=r"^option 1 'RandomSeed=': RandomSeed needs a value, written RandomSeed=<value>$"):
        parse_options("RandomSeed=")


def test_input_layout_field_count_in_the_message():
    with pytest.raises(TMVAOptionError, match=r"got 4 fields$"):
        parse_input_layout("1|2|3|4")
    with pytest.raises(TMVAOptionError, match=r"got 5 fields$"):
        parse_input_layout("1|2|3|4|5")
    assert parse_input_layout("7") == (1, 7)  # one field: TMVA's 1|1|7, seven input variables


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_numbers_must_be_finite(value):
    with pytest.raises(TMVAOptionError, match=r"LearningRate must be a positive number"):
        parse_training_strategy(f"LearningRate={value}")
