"""Tests written for the surviving mutants of bptt/tmva/options.py (docs/mutation.md): where a
warning points, RandomSeed's largest value, Adam's beta of 0, N from a three-field InputLayout,
the number of inputs without InputLayout, the singular 'time step'."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from bptt.tmva import TMVAOptionError, TMVAOptionWarning, parse_options, parse_training_strategy
from bptt.tmva._common import warn


def test_warnings_point_at_the_line_that_parsed_the_string():
    for parse, text in ((parse_training_strategy, "MaxEpochs=20DropConfig=0.0,Optimizer=SGD,ADAM_eps=1e-3"),
                        (parse_options, "TrainingStrategy=MaxEpochs=20DropConfig=0.0,Optimizer=SGD,ADAM_eps=1e-3")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parse(text)
        assert [w.category for w in caught] == [TMVAOptionWarning, TMVAOptionWarning]
        # not the parser's own lines (under a mutation run a mutmut trampoline sits between the two)
        assert not any(Path(w.filename).parent.name == "tmva" and "bptt" in w.filename for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("said")
    assert [(w.category, w.filename, str(w.message)) for w in caught] == [(TMVAOptionWarning, __file__, "said")]


def test_random_seed_up_to_a_c_int():
    assert parse_options("RandomSeed=2147483647")["random_seed"] == 2147483647
    with pytest.raises(TMVAOptionError, match=re.escape(
            "option 1 'RandomSeed=2147483648': RandomSeed must be at most 2147483647 (TMVA's seed is a C++ int); "
            "got '2147483648'")):
        parse_options("RandomSeed=2147483648")


def test_a_decay_of_zero_is_allowed():
    s = parse_training_strategy("ADAM_beta1=0,ADAM_beta2=0.0,Optimizer=ADAM")
    assert s.optimizer_options() == {"beta1": 0.0, "beta2": 0.0, "eps": 1e-7}


def test_n_is_depth_times_height_times_width():
    opts = parse_options("InputLayout=2|3|4:Layout=DENSE|N|TANH,LINEAR")
    assert opts["input_layout"] == (2, 12) and opts["layout"][0].params["units"] == 24


def test_without_inputlayout_the_number_of_inputs_is_tmvas_1_1_n():
    assert len(parse_options("Layout=DENSE|4|TANH,LINEAR", n_inputs=7)["layout"]) == 2
    assert len(parse_options("Layout=LSTM|4|15|1,LINEAR", n_inputs=15)["layout"]) == 2  # one step of 15
    with pytest.raises(TMVAOptionError, match=re.escape(
            "option 1 (Layout): Layout token 1 'LSTM|4|3|5': field 3 (input size) is 3 but InputLayout=1|15 gives "
            "15 features per time step; make them equal")):
        parse_options("Layout=LSTM|4|3|5,LINEAR", n_inputs=15)
    assert len(parse_options("Layout=LSTM|4|3|5,LINEAR")["layout"]) == 2  # nothing known: nothing to check
    opts = parse_options("InputLayout=10|30:Layout=LSTM|10|30|10|0|1,LINEAR", n_inputs=300)
    assert opts["input_layout"] == (10, 30)


def test_one_time_step_is_said_in_the_singular():
    with pytest.raises(TMVAOptionError, match=re.escape(
            "option 1 (InputLayout): InputLayout=1|1|7 says 1 time step of 7 features, 7 values per event; the data "
            "has 8 input variables")):
        parse_options("InputLayout=1|1|7", n_inputs=8)
