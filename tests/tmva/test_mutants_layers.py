"""bptt.tmva.layers.build_layers where mutation testing found no test (docs/mutation.md): its own
default seed, and LayerSpec lists written by hand (it takes them as parse_layout gives them, so a
caller may build one): the RNN's activation taken from the spec, tanh when the spec has none, and
an unknown kind refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.tmva import LayerSpec, parse_layout
from bptt.tmva.layers import build_layers

LAYOUT = "RNN|4|3|5|0|0,DENSE|2|TANH,LINEAR"


def test_the_default_seed_is_zero():
    a = build_layers(LAYOUT, "5|3")
    b = build_layers(LAYOUT, "5|3", seed=0)
    c = build_layers(LAYOUT, "5|3", seed=1)
    for la, lb in zip(a, b):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])
    assert not np.array_equal(a[0].params["W"], c[0].params["W"])


def _rnn_spec(**changes) -> list[LayerSpec]:
    specs = parse_layout(LAYOUT)
    params = dict(specs[0].params)
    for k, v in changes.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    return [LayerSpec("rnn", params, specs[0].token, 1), *specs[1:]]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "identity", "tanh"])
def test_an_rnn_spec_keeps_its_activation(activation):
    layers = build_layers(_rnn_spec(activation=activation), (5, 3))
    assert layers[0].activation == activation


def test_an_rnn_spec_without_activation_is_tanh():
    layers = build_layers(_rnn_spec(activation=None), (5, 3))
    assert layers[0].activation == "tanh"


def test_an_unknown_kind_is_refused_by_name():
    spec = LayerSpec("conv", {}, "CONV|3|3", 2)
    with pytest.raises(ValueError, match=r"^build_layers: layer 2 'CONV\|3\|3' has kind 'conv'; bptt builds "
                                         r"lstm, gru, rnn, flatten, reshape, dense$"):
        build_layers([parse_layout(LAYOUT)[0], spec], (5, 3))
