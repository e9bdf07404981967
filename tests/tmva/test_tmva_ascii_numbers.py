"""Numbers in TMVA strings are read as TMVA's C++ reads them: ASCII digits only (issue 19: a
layout with an Arabic-Indic three, ``LSTM|٣|30|10``, used to build 3 units). Python's ``int`` and
``float`` accept other scripts' digits and underscores; the parser does not."""

from __future__ import annotations

import pytest

from bptt.tmva import TMVAOptionError, parse_input_layout, parse_layout, parse_options, parse_training_strategy


@pytest.mark.parametrize("digit", ["٣", "３", "३", "𝟑"])  # Arabic-Indic, full-width, Devanagari, mathematical
def test_a_non_ascii_digit_in_a_layout_is_refused(digit):
    with pytest.raises(TMVAOptionError, match=rf"field 2 must be a positive integer \(state size\); got '{digit}'"):
        parse_layout(f"LSTM|{digit}|30|10")
    with pytest.raises(TMVAOptionError):
        parse_input_layout(f"10|{digit}0")


@pytest.mark.parametrize("value", ["١e-3", "1_0", "0.00１", "1e-3_0"])
def test_a_number_python_reads_but_tmva_does_not_is_refused(value):
    with pytest.raises(TMVAOptionError, match=rf"LearningRate must be a positive number \(learning rate\); got '{value}'"):
        parse_training_strategy(f"LearningRate={value}")
    with pytest.raises(TMVAOptionError):
        parse_options(f"ValidationSize={value}")


@pytest.mark.parametrize("value, expected", [
    ("1e-3", 1e-3), ("1E-3", 1e-3), (".5", 0.5), ("2.", 2.0), ("+0.25", 0.25), ("3", 3.0), ("1.5e+2", 150.0),
])
def test_the_ascii_forms_still_parse(value, expected):
    assert parse_training_strategy(f"LearningRate={value}").learning_rate == expected
