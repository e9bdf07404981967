"""DENSE tokens as TMVA's MethodDL::ParseDenseLayer reads them: width and activation in either
order, the width a TFormula of N (the number of input variables) truncated to an int, a width of
0 or none the output layer's, TANH without an activation; every activation TMVA knows either
built or refused by name. Expected values are worked out by hand from TMVA's rules."""

from __future__ import annotations

import re

import pytest

from bptt.tmva import TMVAOptionError, parse_layout, parse_options
from bptt.tmva._common import MAX_FORMULA_LENGTH, MAX_UNITS, evaluate_width


def units(layout: str, **kw) -> list[int]:
    return [spec.params["units"] for spec in parse_layout(layout, **kw)]


def raises(message: str):
    return pytest.raises(TMVAOptionError, match=f"^{re.escape(message)}$")


def test_the_rnn_tutorials_dense_network_reads_both_orders():
    layers = parse_layout("DENSE|64|TANH,DENSE|TANH|64,DENSE|TANH|64,LINEAR")
    assert [(l.kind, l.params) for l in layers] == [
        ("dense", {"units": 64, "activation": "tanh"}),
        ("dense", {"units": 64, "activation": "tanh"}),
        ("dense", {"units": 64, "activation": "tanh"}),
        ("dense", {"units": 1, "activation": "identity"}),
    ]


@pytest.mark.parametrize("token, n, expected", [
    ("DENSE|N|TANH", 7, 7),
    ("DENSE|N+10|TANH", 7, 17),
    ("DENSE|2*N|RELU", 7, 14),
    ("DENSE|n*2|RELU", 7, 14),  # TMVA replaces N and n
    ("DENSE|(N+100)*2|SIGMOID", 7, 214),  # MethodDL's default layout's first layer
    ("DENSE|N/2|TANH", 7, 3),  # 3.5 truncated, as TMVA's int width = TFormula::Eval(N)
    ("DENSE|2*N/3|TANH", 7, 4),  # 4.67 truncated, not rounded
    ("DENSE|N-0.5|TANH", 7, 6),
    ("DENSE|TANH|N*N", 30, 900),
    ("DENSE|1e2|TANH", 7, 100),
    ("DENSE|064|TANH", 7, 64),  # leading zero: TFormula's 64, not Python's syntax error
    ("DENSE| ( N + 1 ) * 3 |TANH", 7, 24),
    ("DENSE|-(-N)|TANH", 7, 7),
    ("N+5|TANH", 4, 9),  # a token without a layer type, as TMVAClassification's old MLP writes HiddenLayers
    ("TANH|N+5", 4, 9),
])
def test_width_formulas_with_n_the_number_of_inputs(token, n, expected):
    assert units(token, n_inputs=n) == [expected]


@pytest.mark.parametrize("token, n_outputs, expected", [
    ("DENSE|0|LINEAR", 1, 1),  # TMVA's default layout ends DENSE|0|LINEAR: the output layer
    ("DENSE|0|LINEAR", 4, 4),  # four classes
    ("DENSE|LINEAR", 3, 3),  # no width
    ("LINEAR", 1, 1),
    ("DENSE", 2, 2),
    ("DENSE|N/10|TANH", 1, 1),  # 7/10 = 0.7 → 0 → the output width, as TMVA
])
def test_a_width_of_zero_or_none_is_the_number_of_outputs(token, n_outputs, expected):
    assert units(token, n_inputs=7, n_outputs=n_outputs) == [expected]


def test_the_activation_defaults_to_tanh():
    assert [l.params["activation"] for l in parse_layout("DENSE|5,5,DENSE")] == ["tanh"] * 3


@pytest.mark.parametrize("name, activation", [
    ("TANH", "tanh"), ("RELU", "relu"), ("SIGMOID", "sigmoid"), ("LINEAR", "identity"), ("IDENTITY", "identity"),
    ("relu", "relu"), ("Sigmoid", "sigmoid"),  # bptt reads names in any case (TMVA wants upper case)
])
def test_the_activations_bptt_builds(name, activation):
    for token in (f"DENSE|8|{name}", f"DENSE|{name}|8", f"{name}|8", f"8|{name}"):
        (spec,) = parse_layout(token)
        assert spec.params == {"units": 8, "activation": activation}, token


@pytest.mark.parametrize("name", ["SOFTSIGN", "GAUSS", "SYMMRELU", "FTANH"])
def test_tmvas_other_activations_are_refused_by_name(name):
    for token, field in ((f"DENSE|8|{name}", 3), (f"DENSE|{name}|8", 2), (f"{name}|8", 1)):
        with raises(f"Layout token 1 '{token}': field {field}: activation '{name}' is a TMVA activation that bptt "
                    f"does not support; use one of TANH, RELU, SIGMOID, IDENTITY or LINEAR"):
            parse_layout(token)


@pytest.mark.parametrize("token, message", [
    ("DENSE|N+10|TANH", "field 2: the width 'N+10' uses N, the number of input variables, which is not known here: "
                        "give InputLayout (e.g. InputLayout=1|1|7 for 7 variables) or the number of inputs"),
    ("DENSE|N-10|TANH", "field 2: the width 'N-10' is -3 with N = 7, negative; write a positive integer or a "
                        "formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|N/0|TANH", "field 2: the width 'N/0' cannot be evaluated (it divides by zero); write a positive integer "
                       "or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|N*10000|TANH", "field 2: the width 'N*10000' is 70000 with N = 7, above bptt's limit of 65536 units per "
                           "layer; write a positive integer or a formula of N (the number of input variables), e.g. "
                           "N+10 or 2*N"),
    ("DENSE|65537|TANH", "field 2: the width '65537' is 65537, above bptt's limit of 65536 units per layer; write a "
                         "positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|2N|TANH", "field 2: the width '2N' cannot be evaluated (not a formula: write e.g. 64, N+10 or (N+100)*2); "
                      "write a positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|(N+1|TANH", "field 2: the width '(N+1' cannot be evaluated (not a formula: write e.g. 64, N+10 or "
                        "(N+100)*2); write a positive integer or a formula of N (the number of input variables), e.g. "
                        "N+10 or 2*N"),
    ("DENSE|N**2|TANH", "field 2: the width 'N**2' cannot be evaluated (only numbers, N, + - * / and parentheses); "
                        "write a positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|1e999|TANH", "field 2: the width '1e999' cannot be evaluated (the number '1e999' is too large); write a "
                         "positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"),
    ("DENSE|64|TANH|32", "field 4: a second width '32' (field 2 is one); a dense layer takes one width and one "
                         "activation"),
    ("DENSE|RELU|64|TANH", "field 4: a second activation 'TANH' (field 2 is one); a dense layer takes one width and "
                           "one activation"),
    ("DENSE|64|SWISH", "field 3 must be an activation (TANH, RELU, SIGMOID, IDENTITY or LINEAR); got 'SWISH'"),
    ("DENSE|SWISH|64", "field 2 must be an activation (TANH, RELU, SIGMOID, IDENTITY or LINEAR); got 'SWISH'"),
    ("DENSE|sixty|TANH", "field 2 must be a positive integer (number of units); got 'sixty'"),
    ("DENSE|SWISH", "field 2 must be a number of units or an activation (TANH, RELU, SIGMOID, IDENTITY or LINEAR); "
                    "got 'SWISH'"),
    ("DENSE|٣|TANH", "field 2 must be a positive integer (number of units); got '٣'"),  # ASCII digits only
    ("DENSE|1_0|TANH", "field 2 must be a positive integer (number of units); got '1_0'"),
])
def test_widths_that_cannot_be_built_are_refused(token, message):
    n = 7 if "not known" not in message else None
    with raises(f"Layout token 1 '{token}': {message}"):
        parse_layout(token, n_inputs=n)


def test_a_long_formula_is_refused_before_it_is_parsed():
    formula = "+".join(["1"] * (MAX_FORMULA_LENGTH // 2 + 1))
    with pytest.raises(TMVAOptionError, match=rf"longer than {MAX_FORMULA_LENGTH} characters"):
        parse_layout(f"DENSE|{formula}|TANH")
    nested = "(" * 300 + "N" + ")" * 300
    with pytest.raises(TMVAOptionError, match="cannot be evaluated"):
        parse_layout(f"DENSE|{nested}|TANH", n_inputs=3)


def test_the_formula_evaluator_never_evaluates_python():
    for text in ("__import__('os')", "N.real", "[N]", "N if N else 1", "lambda: 1", "N,1", "N==1"):
        with pytest.raises(ValueError):
            evaluate_width(text, 3)
    assert evaluate_width("N", MAX_UNITS) == MAX_UNITS


def test_n_is_the_inputlayouts_values_per_event_in_a_booking_string():
    """TMVA's N is GetNvar(), the number of input variables, the same for every dense layer
    wherever it is: after a recurrent layer and RESHAPE|FLAT too."""
    opts = parse_options("Layout=DENSE|N|TANH,DENSE|N+1|TANH,LINEAR:InputLayout=1|1|7")  # InputLayout after Layout
    assert [l.params["units"] for l in opts["layout"]] == [7, 8, 1]
    opts = parse_options("InputLayout=10|30:Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|N/10|TANH,LINEAR")
    assert opts["layout"][2].params["units"] == 30  # N = 10 × 30 = 300, not the 100 values after the LSTM
    opts = parse_options("Layout=DENSE|2*N|RELU,LINEAR", n_inputs=5)  # no InputLayout: TMVA's 1|1|N
    assert opts["layout"][0].params["units"] == 10


def test_n_outputs_reaches_the_layout_of_a_booking_string():
    opts = parse_options("InputLayout=4:Layout=TANH|100,TANH|50,TANH|10,LINEAR", n_outputs=4)
    assert [l.params["units"] for l in opts["layout"]] == [100, 50, 10, 4]


def test_an_inputlayout_that_disagrees_with_the_number_of_inputs_is_refused():
    with raises("option 1 (InputLayout): InputLayout=10|20 says 10 time steps of 20 features, 200 values per event; "
                "the data has 300 input variables"):
        parse_options("InputLayout=10|20:Layout=LINEAR", n_inputs=300)
    assert parse_options("InputLayout=10|30", n_inputs=300)["input_layout"] == (10, 30)
