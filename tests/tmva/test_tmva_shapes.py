"""check_layout follows one event's shape through the layers, as build_layers builds them, and
refuses in TMVA's terms what cannot run one layer after the other, and networks beyond the
documented size limits, before anything is allocated. Parameter counts are worked out by hand:
LSTM 4H(F+H+1), GRU 3H(F+H+1) + 3H (its recurrent bias), RNN H(F+H+1), DENSE (inputs+1)·units."""

from __future__ import annotations

import re
import tracemalloc

import pytest

from bptt.model import Sequential
from bptt.tmva import TMVAOptionError, check_layout, parse_layout, parse_options
from bptt.tmva._common import MAX_INPUTS, MAX_LAYERS, MAX_PARAMETERS, MAX_UNITS


def raises(message: str):
    return pytest.raises(TMVAOptionError, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize("layout, input_layout, expected", [
    ("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", (10, 30), 4 * 10 * 41 + 101 * 64 + 65),
    ("GRU|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", (10, 30), 3 * 10 * 41 + 30 + 101 * 64 + 65),
    ("RNN|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", (10, 30), 10 * 41 + 101 * 64 + 65),
    ("LSTM|16|30|10|0|1,GRU|8|16|10|0|0,LINEAR", (10, 30), 4 * 16 * 47 + 3 * 8 * 25 + 24 + 9),
    ("DENSE|64|TANH,DENSE|TANH|64,DENSE|TANH|64,LINEAR", (1, 300), 301 * 64 + 65 * 64 * 2 + 65),
    ("LSTM|4|3|5|0|1,DENSE|6|TANH,RESHAPE|FLAT,LINEAR", (5, 3), 4 * 4 * 8 + 5 * 6 + 31),  # dense on each step
    ("RESHAPE|1|3|10,RESHAPE|FLAT,LINEAR", (10, 3), 31),
    ("DENSE|8|TANH,LINEAR", None, None),  # no InputLayout: the first dense layer's inputs are unknown
    ("LSTM|4|3|5|0|0,LINEAR", None, 4 * 4 * 8 + 5),  # a recurrent first layer says what it takes
])
def test_the_number_of_parameters(layout, input_layout, expected):
    assert check_layout(parse_layout(layout), input_layout) == expected


@pytest.mark.parametrize("layout, message", [
    ("RESHAPE|FLAT,LSTM|4|15|5,LINEAR",
     "Layout token 2 'LSTM|4|15|5': an LSTM needs a sequence (time steps × features), but token 1 'RESHAPE|FLAT' "
     "gives one vector of 15 values per event, not a sequence; put RESHAPE|FLAT after the last recurrent layer"),
    ("LSTM|4|3|5|0|1,RESHAPE|FLAT,GRU|2|4|5,LINEAR",
     "Layout token 3 'GRU|2|4|5': a GRU needs a sequence (time steps × features), but token 2 'RESHAPE|FLAT' gives "
     "one vector of 20 values per event, not a sequence; put RESHAPE|FLAT after the last recurrent layer"),
    ("LSTM|4|3|5|0|0,RNN|2|4|5,LINEAR",
     "Layout token 2 'RNN|2|4|5': an RNN needs a sequence (time steps × features), but token 1 'LSTM|4|3|5|0|0' "
     "returns only its last state (returnSequence=0): set its field 6 to 1 to feed a stacked RNN"),
    ("LSTM|4|3|5|0|1,DENSE|6|TANH,GRU|2|5|5",
     "Layout token 3 'GRU|2|5|5': field 3 (input size) is 5 but token 2 'DENSE|6|TANH' gives 6 features per time "
     "step; make them equal"),
    ("RESHAPE|1|4|4,LINEAR",
     "Layout token 1 'RESHAPE|1|4|4': RESHAPE to 1|4|4 needs 16 values per event, but InputLayout gives 15 (5×3)"),
    ("RESHAPE|1|3|5,LSTM|2|5|5",
     "Layout token 2 'LSTM|2|5|5': field 4 (time steps) is 5 but token 1 'RESHAPE|1|3|5' gives 3 time steps; make "
     "them equal"),
    ("LSTM|4|3|5|0|1,RESHAPE|2|2|4,LINEAR",
     "Layout token 2 'RESHAPE|2|2|4': RESHAPE to 2|2|4 needs 16 values per event, but token 1 'LSTM|4|3|5|0|1' "
     "gives 20 (5×4)"),
    ("LSTM|4|3|6|0|1,LINEAR",
     "Layout token 1 'LSTM|4|3|6|0|1': field 4 (time steps) is 6 but InputLayout=5|3 gives 5 time steps; make "
     "them equal"),
])
def test_layers_that_cannot_follow_each_other_are_refused(layout, message):
    with raises(message):
        check_layout(parse_layout(layout), (5, 3))


def test_a_reshape_then_a_recurrent_layer_is_checked_against_the_reshape():
    check_layout(parse_layout("RESHAPE|FLAT,RESHAPE|1|5|3,LSTM|2|3|5,LINEAR"), (5, 3))
    with raises("Layout token 2 'LSTM|2|4|5': field 3 (input size) is 4 but token 1 'RESHAPE|1|5|3' gives 3 "
                "features per time step; make them equal"):
        check_layout(parse_layout("RESHAPE|1|5|3,LSTM|2|4|5"), (5, 3))


def test_the_refusal_reaches_sequential_and_the_booking_string():
    with pytest.raises(TMVAOptionError, match=r"^Layout token 2 'LSTM\|4\|15\|5': an LSTM needs a sequence"):
        Sequential.from_tmva("RESHAPE|FLAT,LSTM|4|15|5,LINEAR", "5|3")
    with pytest.raises(TMVAOptionError, match=r"^option 2 \(Layout\): Layout token 2 'LSTM\|4\|15\|5': an LSTM"):
        parse_options("InputLayout=5|3:Layout=RESHAPE|FLAT,LSTM|4|15|5,LINEAR")


# ── size limits


def test_the_limits_are_the_documented_ones():
    assert (MAX_UNITS, MAX_INPUTS, MAX_LAYERS, MAX_PARAMETERS) == (65_536, 2**20, 1_024, 2**24)


def test_a_layer_at_the_unit_limit_parses_and_one_more_is_refused():
    (spec,) = parse_layout("DENSE|65536|TANH")
    assert spec.params["units"] == MAX_UNITS
    with raises("Layout token 1 'LSTM|65537|30|10': field 2 (state size) is 65537, above bptt's limit of 65536 "
                "units per layer"):
        parse_layout("LSTM|65537|30|10")
    with raises("Layout token 1 'GRU|8|99999999999999999999999999|10': field 3 (input size: features per time step) "
                "is 99999999999999999999999999, above bptt's limit of 65536 units per layer"):
        parse_layout("GRU|8|99999999999999999999999999|10")


def test_a_network_over_the_parameter_limit_is_refused_before_it_is_built():
    # 4·2048·(30+2048+1) = 17 031 168 > 2**24 = 16 777 216; 2047 units give 17 014 664 - also over;
    # 2000 units give 16 632 000, under.
    layout = "LSTM|2048|30|10|0|1,RESHAPE|FLAT,LINEAR"
    tracemalloc.start()
    with raises("option 2 (Layout): Layout token 1 'LSTM|2048|30|10|0|1': the network has 17031168 trainable "
                "parameters up to this layer, above bptt's limit of 16777216 (2**24; 64 MiB in float32); use fewer units"):
        parse_options(f"InputLayout=10|30:Layout={layout}")
    with pytest.raises(TMVAOptionError, match="above bptt's limit of 16777216"):
        Sequential.from_tmva(layout, "10|30")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2**20  # nothing of the network's 68 MB was allocated
    assert check_layout(parse_layout("LSTM|2000|30|10|0|0,LINEAR"), (10, 30)) == 4 * 2000 * 2031 + 2001


def test_values_per_event_are_limited_after_every_layer():
    # A dense layer on each of 1024 steps of one feature: 2·2048 parameters, 1024×2048 values.
    assert check_layout(parse_layout("DENSE|1024|TANH"), (1024, 1)) == 2 * 1024
    with raises("Layout token 1 'DENSE|2048|TANH': it gives 2097152 values per event, above bptt's limit of "
                "1048576 (2**20)"):
        check_layout(parse_layout("DENSE|2048|TANH"), (1024, 1))


def test_the_number_of_layers_is_limited():
    parse_layout(",".join(["LINEAR"] * MAX_LAYERS))
    with raises("Layout: 1025 layers, above bptt's limit of 1024 layers"):
        parse_layout(",".join(["LINEAR"] * (MAX_LAYERS + 1)))
