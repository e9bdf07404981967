"""Fuzz test of the TMVA option parser (issue 19's measure): mutated booking strings (ROOT's
tutorials' and bptt's own, with TMVA's separators, other scripts' digits, huge numbers and
formulas inserted, deleted or substituted; tools/tmva_fuzz.py) go through parse_options and,
one in fifty that parses into a small network, build_layers. Only TMVAOptionError may come out,
and Python's peak allocation stays far below the documented network limit (2**24 parameters,
64 MiB in float32; bptt.tmva.options). Seeded: the same strings every run. A 10**5 run is
`python tools/tmva_fuzz.py` (figures in docs/tmva-booking-strings.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tmva_fuzz", Path(__file__).parents[2] / "tools" / "tmva_fuzz.py")
tmva_fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tmva_fuzz)


def test_ten_thousand_mutated_booking_strings_raise_only_the_documented_error():
    out = tmva_fuzz.fuzz(10_000, seed=19, build_every=50, trace=False)
    assert out["failures"] == []
    assert out["parsed"] > 500 and out["refused"] > 5_000  # both paths are exercised
    assert out["built"] > 5


def test_the_parsers_peak_allocation_stays_small():
    out = tmva_fuzz.fuzz(2_000, seed=20, build_every=50, trace=True)
    assert out["failures"] == []
    assert out["peak_bytes"] < 4 * 2**24  # the documented limit: 2**24 float32 parameters
    assert out["peak_bytes"] < 16 * 2**20  # and in fact a few MiB at most: nothing big is allocated


def test_the_mutations_reach_the_pieces_that_broke_parsers_before():
    """The pool holds what the issue and the limits are about: non-ASCII digits, huge numbers,
    formulas, separators."""
    pool = set(tmva_fuzz.POOL)
    assert {"٣", "99999999999999999999", "(N+100)*2", "|", ":", ",", "=", "!"} <= pool
    assert any(len(p) > 300 for p in pool)
