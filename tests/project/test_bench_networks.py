"""benchmarks/networks.py: the networks it times are the ones it names, in both libraries (no timings)."""

from __future__ import annotations

import numpy as np
import pytest

import networks as bench


@pytest.mark.parametrize("net", bench.NETS)
def test_bptt_and_torch_steps_train_the_named_network(net):
    x, dout = bench.problem(net, "tmva-test")
    assert x.shape == (64, 5, 5) and dout.shape == (64, 5, 1 if net != "stacked" else 10)
    dx = bench.bptt_step(net, "lstm", "tmva-test")()
    assert dx.shape == x.shape and np.isfinite(dx).all() and dx.any()
    dx_t = bench.torch_step(net, "lstm", "tmva-test")().numpy()
    assert dx_t.shape == x.shape and np.isfinite(dx_t).all() and dx_t.any()


def test_the_three_networks_differ():
    dxs = [bench.bptt_step(net, "gru", "tmva-test")() for net in bench.NETS]
    assert not np.allclose(dxs[0], dxs[1]) and not np.allclose(dxs[0], dxs[2])


def test_unknown_names_exit_2(capsys):
    assert bench.main(["--cells", "lstm,cnn"]) == 2
    assert "--cells must be a comma-separated list of lstm, gru, rnn; got ['cnn']" in capsys.readouterr().err
