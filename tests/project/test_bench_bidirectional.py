"""benchmarks/bidirectional.py: the steps it times do what they say, the load figure by hand (no timings)."""

from __future__ import annotations

import numpy as np
import pytest

import bidirectional as bench
import timing


def test_other_cores_by_hand():
    # 3 busy seconds of the machine, 1 of them this process's and its children's, over 1 s of wall
    # time: 2 other cores (timing.other_cores, bidirectional.py's load figure)
    assert timing.other_cores((10.0, 1.0), (13.0, 2.0), 1.0) == pytest.approx(2.0)
    assert timing.other_cores((10.0, 1.0), (10.5, 2.0), 1.0) == 0.0  # never negative
    assert timing.other_cores(None, (1.0, 1.0), 1.0) is None
    assert timing.other_cores((1.0, 1.0), (2.0, 1.0), 0.0) is None


@pytest.mark.parametrize("ragged", [False, True])
def test_bptt_step_is_a_bidirectional_training_step(ragged):
    x, dy, lengths = bench.problem("tmva-test", "gru", ragged)
    assert x.shape == (64, 5, 5) and dy.shape == (64, 5, 20) and x.dtype == np.float32
    if ragged:  # lengths in [1, T], and dy 0 at the padded steps
        assert lengths.min() >= 1 and lengths.max() <= 5
        assert not dy[np.arange(5)[None, :] >= lengths[:, None]].any()
    dx = bench.bptt_step("gru", "tmva-test", ragged, True)()
    assert dx.shape == x.shape and np.isfinite(dx).all()
    one = bench.bptt_step("gru", "tmva-test", ragged, False)()
    assert one.shape == x.shape and not np.allclose(one, dx)  # one direction is not both


def test_torch_step_runs_the_bidirectional_module():
    dx = bench.torch_step("lstm", "tmva-test", True, True)()  # packed, bidirectional, backward of (64, 5, 20)
    x, _, lengths = bench.problem("tmva-test", "lstm", True)
    assert dx.shape == x.shape
    assert not dx[np.arange(5)[None, :] >= lengths[:, None]].any() and dx.any()  # no gradient at padded steps
