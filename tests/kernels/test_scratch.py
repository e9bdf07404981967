"""bptt._arrays._scratch: large internal arrays of a call reuse one buffer per name and thread."""

from __future__ import annotations

import numpy as np
import pytest
from problems import make_problem

from bptt import functional as F
from bptt.settings import OwnKernel, settings
from bptt.functional import _arrays


def test_small_arrays_are_new_each_time():
    a = _arrays._scratch("t-small", (4, 5), np.float32)
    b = _arrays._scratch("t-small", (4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32 and not np.shares_memory(a, b)


def test_large_arrays_share_one_buffer_that_grows(monkeypatch):
    monkeypatch.setattr(settings, "scratch_bytes", 0)
    a = _arrays._scratch("t-large", (3, 4), np.float32)
    b = _arrays._scratch("t-large", (2, 5), np.float32)  # smaller: the same buffer
    assert b.shape == (2, 5) and np.shares_memory(a, b)
    c = _arrays._scratch("t-large", (5, 5), np.float32)  # larger: a new buffer, kept from now on
    assert c.shape == (5, 5) and not np.shares_memory(a, c)
    assert np.shares_memory(c, _arrays._scratch("t-large", (3, 4), np.float32))
    d = _arrays._scratch("t-large", (3, 4), np.float64)  # another dtype: a new buffer
    assert d.dtype == np.float64 and not np.shares_memory(c, d)
    assert not np.shares_memory(d, _arrays._scratch("t-other", (3, 4), np.float64))  # names are separate


@pytest.mark.parametrize("loop", ["default", "hand-written"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_inference_on_scratch_gives_what_new_arrays_give(monkeypatch, cell, loop):
    """With every internal array on the scratch buffers, inference gives the bits it gives on new
    arrays, and a second call leaves the first call's output alone. With the hand-written product
    the input projection of all steps comes first, on a scratch buffer (by default the loop's
    products take the inputs: no projection array)."""
    if loop == "hand-written":
        monkeypatch.setattr(settings, "small_step_fmas", 1 << 40)
        monkeypatch.setattr(settings, "own_kernel", OwnKernel.OFF)
    forward = getattr(F, f"{cell}_forward")
    p1 = {k: a.astype(np.float32) for k, a in make_problem(cell, 32, 7, 5, 16, seed=1).items()}
    p2 = {k: a.astype(np.float32) for k, a in make_problem(cell, 32, 7, 5, 16, seed=2).items()}
    monkeypatch.setattr(settings, "scratch_bytes", 1 << 62)  # never the scratch buffers
    want1, _ = forward(**p1, keep_cache=False)
    want2, _ = forward(**p2, keep_cache=False)
    monkeypatch.setattr(settings, "scratch_bytes", 0)  # always
    got1, cache = forward(**p1, keep_cache=False)
    got1_copy = np.array(got1)
    got2, _ = forward(**p2, keep_cache=False)
    assert cache is None
    np.testing.assert_array_equal(got1, want1)
    np.testing.assert_array_equal(got2, want2)
    np.testing.assert_array_equal(got1, got1_copy)
