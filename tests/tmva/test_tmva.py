"""TMVA option strings: the strings of TMVA_RNN_Classification.C parse into the expected objects,
and every malformed token gives a message quoting the token, its position and what was expected."""

from __future__ import annotations

import re

import pytest

from bptt.tmva import (
    LayerSpec,
    TMVAOptionError,
    TrainingStrategy,
    check_layout,
    parse_input_layout,
    parse_layout,
    parse_options,
    parse_training_strategy,
)
from bptt.tmva.layout import input_shape

LAYOUT = "LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR"
STRATEGY = (
    "LearningRate=1e-3,Momentum=0.0,ConvergenceSteps=5,BatchSize=100,WeightDecay=1e-2,"
    "Regularization=None,MaxEpochs=20,Optimizer=ADAM,DropConfig=0.0+0.+0.+0."
)
BOOKING = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:"
    "ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:Layout=" + LAYOUT + ":TrainingStrategy="
    + STRATEGY + ":Architecture=CPU"
)

EXPECTED_LAYERS = [
    LayerSpec(
        "lstm",
        {"state_size": 10, "input_size": 30, "time_steps": 10, "remember_state": False, "return_sequence": True},
        "LSTM|10|30|10|0|1",
        1,
    ),
    LayerSpec("flatten", {}, "RESHAPE|FLAT", 2),
    LayerSpec("dense", {"units": 64, "activation": "tanh"}, "DENSE|64|TANH", 3),
    LayerSpec("dense", {"units": 1, "activation": "identity"}, "LINEAR", 4),
]

EXPECTED_STRATEGY = TrainingStrategy(
    learning_rate=1e-3,
    momentum=0.0,
    convergence_steps=5,
    batch_size=100,
    test_repetitions=7,  # not in the string: TMVA's default
    weight_decay=1e-2,
    regularization=None,
    max_epochs=20,
    optimizer="adam",
    drop_config=[0.0, 0.0, 0.0, 0.0],
)


def error(fn, *args):
    with pytest.raises(TMVAOptionError) as info:
        fn(*args)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def starts_with(msg: str, prefix: str) -> bool:
    """``msg`` begins with ``prefix`` and the prefix does not end inside a word ('field' ≠ 'fields')."""
    return re.match(re.escape(prefix) + r"(?!\w)", msg) is not None


# ─────────────────────────────────────────────────────────────────── the tutorial's strings


def test_input_layout():
    assert parse_input_layout("10|30") == (10, 30)
    assert parse_input_layout("  InputLayout=10|30 ") == (10, 30)
    assert parse_input_layout("1|10|30") == (1, 300)  # TMVA's depth|height|width: 1 step of 10×30 values
    assert parse_input_layout("inputlayout = 5 | 2") == (5, 2)


def test_layout_of_the_tutorial():
    assert parse_layout(LAYOUT) == EXPECTED_LAYERS
    assert parse_layout(" Layout=" + LAYOUT.replace(",", " , ") + "  ") == EXPECTED_LAYERS


def test_training_strategy_of_the_tutorial():
    assert parse_training_strategy(STRATEGY) == EXPECTED_STRATEGY
    assert parse_training_strategy("TrainingStrategy=" + STRATEGY) == EXPECTED_STRATEGY


def test_training_strategy_defaults_are_tmvas():
    s = parse_training_strategy("BatchSize=32")
    assert (s.learning_rate, s.momentum, s.convergence_steps, s.test_repetitions, s.max_epochs) == (1e-5, 0.3, 100, 7, 2000)
    assert (s.optimizer, s.regularization, s.weight_decay, s.drop_config) == ("adam", None, 0.0, [])


def test_training_strategy_phases_keys_and_names():
    phases = parse_training_strategy(
        "LearningRate=1e-2,Optimizer=SGD,Regularization=L2,TestRepetitions=2|"
        "learningrate=1e-3,OPTIMIZER=rmsprop,Regularization=L1,Repetitions=1,Multithreading=False"
    )
    assert isinstance(phases, list) and len(phases) == 2
    assert (phases[0].learning_rate, phases[0].optimizer, phases[0].regularization, phases[0].test_repetitions) == (1e-2, "sgd", "L2", 2)
    assert (phases[1].learning_rate, phases[1].optimizer, phases[1].regularization, phases[1].multithreading) == (1e-3, "rmsprop", "L1", False)
    names = {parse_training_strategy(f"Optimizer={o}").optimizer for o in ("SGD", "ADAM", "ADAGRAD", "RMSPROP", "ADADELTA")}
    assert names == {"sgd", "adam", "adagrad", "rmsprop", "adadelta"}


def test_whole_booking_string():
    opts = parse_options(BOOKING)
    assert opts == {
        "help": False,
        "verbose": True,
        "error_strategy": "CROSSENTROPY",
        "var_transform": "None",
        "weight_initialization": "XAVIERUNIFORM",
        "validation_size": 0.2,
        "random_seed": 1234,
        "input_layout": (10, 30),
        "layout": EXPECTED_LAYERS,
        "training_strategy": [EXPECTED_STRATEGY],
        "architecture": "CPU",
    }


def test_booking_string_variants():
    opts = parse_options("H:!V:ValidationSize=20%:BatchLayout=100|10|30:CreateMVAPdfs=False")
    assert opts == {"help": True, "verbose": False, "validation_size": 0.2, "batch_layout": (100, 10, 30), "create_mva_pdfs": False}
    assert parse_options("ValidationSize=500")["validation_size"] == 500
    assert parse_options("") == {}


# ───────────────────────────────────────────────────────────────────────── recurrent tokens


def test_gru_and_rnn_tokens():
    gru, rnn, gru7 = parse_layout("GRU|8|30|10|1|0,RNN|16|8|10,GRU|4|16|10|0|1|1")
    assert gru == LayerSpec(
        "gru",
        {"state_size": 8, "input_size": 30, "time_steps": 10, "remember_state": True, "return_sequence": False, "reset_after": False},
        "GRU|8|30|10|1|0",
        1,
    )
    assert rnn.kind == "rnn" and rnn.position == 2
    assert rnn.params == {
        "state_size": 16, "input_size": 8, "time_steps": 10,
        "remember_state": False, "return_sequence": False, "activation": "tanh",
    }
    assert gru7.params["reset_after"] is True and gru7.params["return_sequence"] is True


def test_other_dense_and_reshape_forms():
    layers = parse_layout("DENSE|8,DENSE|4|RELU,DENSE|2|SIGMOID,DENSE|3|IDENTITY,TANH|16,RESHAPE|1|10|30")
    assert [(l.kind, l.params) for l in layers] == [
        ("dense", {"units": 8, "activation": "tanh"}),  # TMVA's default activation
        ("dense", {"units": 4, "activation": "relu"}),
        ("dense", {"units": 2, "activation": "sigmoid"}),
        ("dense", {"units": 3, "activation": "identity"}),
        ("dense", {"units": 16, "activation": "tanh"}),  # a typeless token is a dense layer, as in TMVA
        ("reshape", {"depth": 1, "height": 10, "width": 30}),
    ]


# ─────────────────────────────────────────────────────────────────────────── malformed tokens


@pytest.mark.parametrize(
    "layout, message",
    [
        (
            "LSTM|10|30|10|0|1,DENSE|sixty|TANH",
            "Layout token 2 'DENSE|sixty|TANH': field 2 must be a positive integer (number of units); got 'sixty'",
        ),
        (
            "LSTM|0|30|10|0|1",
            "Layout token 1 'LSTM|0|30|10|0|1': field 2 must be a positive integer (state size); got '0'",
        ),
        (
            "GRU|8|x|10",
            "Layout token 1 'GRU|8|x|10': field 3 must be a positive integer (input size: features per time step); got 'x'",
        ),
        (
            "RNN|8|30|-10",
            "Layout token 1 'RNN|8|30|-10': field 4 must be a positive integer (number of time steps); got '-10'",
        ),
        (
            "LSTM|10|30|10|yes|1",
            "Layout token 1 'LSTM|10|30|10|yes|1': field 5 must be 0 or 1 (rememberState); got 'yes'",
        ),
        (
            "LSTM|10|30|10|0|2",
            "Layout token 1 'LSTM|10|30|10|0|2': field 6 must be 0 or 1 (returnSequence); got '2'",
        ),
        (
            "GRU|10|30|10|0|1|3",
            "Layout token 1 'GRU|10|30|10|0|1|3': field 7 must be 0 or 1 (resetGateAfter); got '3'",
        ),
        (
            "LSTM|10|30",
            "Layout token 1 'LSTM|10|30': expected LSTM|stateSize|inputSize|timeSteps[|rememberState|returnSequence] (4 to 6 fields); got 3 fields",
        ),
        (
            "LSTM|10|30|10|0|1|1",
            "Layout token 1 'LSTM|10|30|10|0|1|1': expected LSTM|stateSize|inputSize|timeSteps[|rememberState|returnSequence] (4 to 6 fields); got 7 fields",
        ),
        (
            "DENSE|64|SOFTSIGN",
            "Layout token 1 'DENSE|64|SOFTSIGN': field 3: activation 'SOFTSIGN' is a TMVA activation that bptt does not support; use one of TANH, RELU, SIGMOID, IDENTITY or LINEAR",
        ),
        (
            "DENSE|64|TANH,GAUSS",
            "Layout token 2 'GAUSS': field 1: activation 'GAUSS' is a TMVA activation that bptt does not support",
        ),
        (
            "DENSE|64|SYMMRELU",
            "Layout token 1 'DENSE|64|SYMMRELU': field 3: activation 'SYMMRELU' is a TMVA activation that bptt does not support",
        ),
        (
            "DENSE|64|SWISH",
            "Layout token 1 'DENSE|64|SWISH': field 3 must be an activation (TANH, RELU, SIGMOID, IDENTITY or LINEAR); got 'SWISH'",
        ),
        (
            "DENSE|64|TANH|32",
            "Layout token 1 'DENSE|64|TANH|32': field 4: a second width '32' (field 2 is one); a dense layer takes one "
            "width and one activation",
        ),
        (
            "DENSE|RELU|64|TANH",
            "Layout token 1 'DENSE|RELU|64|TANH': field 4: a second activation 'TANH' (field 2 is one)",
        ),
        (
            "DENSE|N+|TANH",
            "Layout token 1 'DENSE|N+|TANH': field 2: the width 'N+' cannot be evaluated (not a formula: write e.g. 64, "
            "N+10 or (N+100)*2)",
        ),
        (
            "DENSE|N+10|TANH",
            "Layout token 1 'DENSE|N+10|TANH': field 2: the width 'N+10' uses N, the number of input variables, which "
            "is not known here: give InputLayout",
        ),
        (
            "DENSE|2**N|TANH",
            "Layout token 1 'DENSE|2**N|TANH': field 2: the width '2**N' cannot be evaluated (only numbers, N, + - * / "
            "and parentheses)",
        ),
        (
            "LSTM|10|30|10|0|1,RESHAPE|FLATTEN",
            "Layout token 2 'RESHAPE|FLATTEN': field 2 must be FLAT (or write RESHAPE|depth|height|width); got 'FLATTEN'",
        ),
        (
            "RESHAPE|1|10",
            "Layout token 1 'RESHAPE|1|10': expected RESHAPE|FLAT or RESHAPE|depth|height|width; got 3 fields",
        ),
        (
            "LSTM|10|30|10|0|1,,LINEAR",
            "Layout token 2 '': empty layer; remove the extra ','",
        ),
        (
            "LSTM|10|30|10|0|1,CONV|2|3|3|1|1|1|1|RELU",
            "Layout token 2 'CONV|2|3|3|1|1|1|1|RELU': layer type 'CONV' is a TMVA layer that bptt does not support",
        ),
        (
            "LTSM|10|30|10|0|1",
            "Layout token 1 'LTSM|10|30|10|0|1': unknown layer type 'LTSM'; expected RNN, LSTM, GRU, DENSE, RESHAPE",
        ),
        ("Layout=", "Layout: empty layout; expected comma-separated layers"),
    ],
)
def test_malformed_layout_tokens(layout, message):
    assert starts_with(error(parse_layout, layout), message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("10|30|2|2", "InputLayout '10|30|2|2': expected 1 to 3 numbers depth|height|width: 'W' (W input variables, as 1|1|W), 'T|W' (T time steps of W features, as T|1|W) or 'D|H|W'; got 4 fields"),
        ("x", "InputLayout 'x': field 1 must be a positive integer (number of input variables); got 'x'"),
        ("10|thirty", "InputLayout '10|thirty': field 2 must be a positive integer (number of features); got 'thirty'"),
        ("0|30", "InputLayout '0|30': field 1 must be a positive integer (number of time steps); got '0'"),
        ("1024|1024|2", "InputLayout '1024|1024|2': 1024×1024×2 = 2097152 values per event is above bptt's limit of 1048576 (2**20) values per event"),
        ("10|1|x", "InputLayout '10|1|x': field 3 must be a positive integer (width); got 'x'"),
    ],
)
def test_malformed_input_layout(text, message):
    assert starts_with(error(parse_input_layout, text), message)


@pytest.mark.parametrize("text", ["InputLayout=10|1|30", "10|1|30", "10|30", " InputLayout = 10 | 30 "])
def test_input_layout_forms(text):
    """TMVA's RNN tutorial writes time|features (TMVA pads it to time|1|features)."""
    assert parse_input_layout(text) == (10, 30)


@pytest.mark.parametrize("text, shape, tf", [
    ("7", (1, 1, 7), (1, 7)), ("1|1|7", (1, 1, 7), (1, 7)), ("10|30", (10, 1, 30), (10, 30)),
    ("3|10|30", (3, 10, 30), (3, 300)), ("1|16|16", (1, 16, 16), (1, 256)),
])
def test_input_layout_is_tmvas_depth_height_width(text, shape, tf):
    """MethodDL::ParseInputLayout: W is 1|1|W, T|W is T|1|W; an event is depth rows of height×width."""
    assert input_shape(text) == shape
    assert parse_input_layout(text) == tf


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "LearningRate=1e-3,BatchSize=hundred",
            "TrainingStrategy entry 2 'BatchSize=hundred': BatchSize must be a positive integer (sequences per mini-batch); got 'hundred'",
        ),
        (
            "LearningRate=-1",
            "TrainingStrategy entry 1 'LearningRate=-1': LearningRate must be a positive number (learning rate); got '-1'",
        ),
        ("Momentum=1.5", "TrainingStrategy entry 1 'Momentum=1.5': Momentum must be a number in [0, 1) (momentum); got '1.5'"),
        ("MaxEpochs=2.5", "TrainingStrategy entry 1 'MaxEpochs=2.5': MaxEpochs must be a positive integer (maximum number of epochs); got '2.5'"),
        ("WeightDecay=nan", "TrainingStrategy entry 1 'WeightDecay=nan': WeightDecay must be a number >= 0 (regularisation strength); got 'nan'"),
        ("Regularization=L3", "TrainingStrategy entry 1 'Regularization=L3': Regularization must be None, L1 or L2 (weight regularisation); got 'L3'"),
        ("Optimizer=NADAM", "TrainingStrategy entry 1 'Optimizer=NADAM': Optimizer must be one of SGD, ADAM, ADAGRAD, RMSPROP, ADADELTA (optimiser); got 'NADAM'"),
        ("DropConfig=0.0+1.5", "TrainingStrategy entry 1 'DropConfig=0.0+1.5': DropConfig must be dropout probabilities in [0, 1) joined by '+'"),
        ("BatchSize=10,LearnRate=0.1", "TrainingStrategy entry 2 'LearnRate=0.1': unknown key 'LearnRate'; expected one of LearningRate, Momentum,"),
        ("BatchSize=10,MaxEpochs", "TrainingStrategy entry 2 'MaxEpochs': expected Key=Value, e.g. 'BatchSize=100'"),
        ("BatchSize=10,BatchSize=20", "TrainingStrategy entry 2 'BatchSize=20': BatchSize is given twice in this phase; keep one"),
        (
            "BatchSize=10|BatchSize=10,MaxEpochs=0",
            "TrainingStrategy phase 2 entry 2 'MaxEpochs=0': MaxEpochs must be a positive integer (maximum number of epochs); got '0'",
        ),
        ("BatchSize=10||MaxEpochs=3", "TrainingStrategy phase 2: empty phase; remove the extra '|'"),
        ("TrainingStrategy=", "TrainingStrategy: empty; expected Key=Value pairs"),
    ],
)
def test_malformed_training_strategy(text, message):
    assert starts_with(error(parse_training_strategy, text), message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("!H:V:Layuot=LINEAR", "option 3 'Layuot=LINEAR': unknown option 'Layuot'; expected one of H, V,"),
        ("H:H", "option 2 'H': H is already given as option 1; keep one"),
        ("ErrorStrategy=MSE", "option 1 'ErrorStrategy=MSE': ErrorStrategy must be one of CROSSENTROPY, SUMOFSQUARES, MUTUALEXCLUSIVE; got 'MSE'"),
        ("Architecture=TPU", "option 1 'Architecture=TPU': Architecture must be one of CPU, GPU, STANDARD, OPENCL, CUDNN; got 'TPU'"),
        ("RandomSeed=abc", "option 1 'RandomSeed=abc': RandomSeed must be a non-negative integer; got 'abc'"),
        ("ValidationSize=1.5", "option 1 'ValidationSize=1.5': ValidationSize must be a fraction in (0, 1), a percentage such as 20%, or a number of events > 1; got '1.5'"),
        ("V=maybe", "option 1 'V=maybe': V must be True or False; got 'maybe'"),
        ("!Layout=LINEAR", "option 1 '!Layout=LINEAR': '!' only negates flags such as !H; Layout takes a value"),
        ("H:Layout", "option 2 'Layout': Layout needs a value, written Layout=<value>"),
        ("H::V", "option 2 '': empty option; remove the extra ':'"),
        (
            "H:Layout=LSTM|10|30|10|0|1,DENSE|sixty|TANH",
            "option 2 (Layout): Layout token 2 'DENSE|sixty|TANH': field 2 must be a positive integer (number of units); got 'sixty'",
        ),
        ("InputLayout=10|x", "option 1 (InputLayout): InputLayout '10|x': field 2 must be a positive integer"),
        ("TrainingStrategy=BatchSize=0", "option 1 (TrainingStrategy): TrainingStrategy entry 1 'BatchSize=0': BatchSize must be a positive integer"),
        (
            "InputLayout=10|31:Layout=" + LAYOUT,
            "option 2 (Layout): Layout token 1 'LSTM|10|30|10|0|1': field 3 (input size) is 30 but InputLayout=10|31 gives 31 features per time step; make them equal",
        ),
        (
            "InputLayout=12|30:Layout=" + LAYOUT,
            "option 2 (Layout): Layout token 1 'LSTM|10|30|10|0|1': field 4 (time steps) is 10 but InputLayout=12|30 gives 12 time steps",
        ),
    ],
)
def test_malformed_booking_string(text, message):
    assert starts_with(error(parse_options, text), message)


def test_stacked_recurrent_layers_are_checked():
    check_layout(parse_layout("LSTM|16|30|10|0|1,GRU|8|16|10|0|0,LINEAR"), (10, 30))
    msg = error(check_layout, parse_layout("LSTM|16|30|10|0|1,GRU|8|15|10|0|0"), (10, 30))
    assert msg == (
        "Layout token 2 'GRU|8|15|10|0|0': field 3 (input size) is 15 but the previous LSTM (token 1) has "
        "state size 16; a stacked GRU takes the previous state as input"
    )


def test_error_messages_quote_the_token_verbatim():
    msg = error(parse_layout, "  LSTM|10|30|10|0|1 ,  DENSE | 6x | TANH ")
    assert re.match(r"Layout token 2 'DENSE \| 6x \| TANH': field 2 must be a positive integer \(number of units\); got '6x'$", msg)
