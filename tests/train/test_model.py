"""Sequential networks: whole-network gradients, TMVA layouts, prediction, the model file."""

from __future__ import annotations

import os
import json
import struct

import numpy as np
import pytest

from bptt.gradcheck import gradcheck
from bptt.layers import GRU, LSTM, RNN, Dense, Flatten
from bptt.layers.dropout import Dropout
from bptt.model import Sequential

LAYOUTS = [
    ("LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR", "bce"),
    ("GRU|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|RELU,LINEAR", "bce"),
    ("RNN|4|3|5|0|0,DENSE|6|SIGMOID,LINEAR", "mse"),
    ("LSTM|4|3|5|0|1,GRU|3|4|5|0|0,DENSE|3|IDENTITY", "softmax_ce"),
]


def data(n=6, T=5, F=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, F)).astype(dtype), rng.integers(0, 2, n).astype(dtype)


@pytest.mark.parametrize("layout,loss", LAYOUTS)
def test_whole_network_gradient(layout, loss):
    """Finite differences of the network's loss through dense and recurrent layers (float64)."""
    model = Sequential.from_tmva(layout, "5|3", loss=loss, seed=1, dtype=np.float64)
    X, y = data()
    out = model.forward(X, training=True)
    target = y.astype(np.int64) if loss == "softmax_ce" else y.reshape(out.shape)
    if loss == "softmax_ce":
        target = np.array([0, 2, 1, 1, 0, 2])
    _, dout = model.loss.value_and_grad(out, target)
    dx = model.backward(dout)
    analytic = {"X": dx, **{k: g.copy() for k, g in model.gradients().items()}}
    report = gradcheck(lambda: model.loss(model.forward(X, training=False), target), {"X": X, **model.parameters()}, analytic)
    assert len(report.errors) == 1 + len(model.parameters())
    report.assert_ok(1e-6)


def test_from_tmva_builds_the_tutorial_network():
    model = Sequential.from_tmva("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", "10|1|30", seed=0)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [LSTM, Flatten, Dense, Dense]
    lstm, _, dense, out = model.layers
    assert (lstm.input_size, lstm.hidden_size, lstm.return_sequences, lstm.stateful) == (30, 10, True, False)
    assert dense.params["W"].shape == (100, 64) and dense.activation == "tanh"
    assert out.params["W"].shape == (64, 1) and out.activation == "identity"
    stateful = Sequential.from_tmva("GRU|8|30|10|1|0|1,LINEAR", "10|30")
    assert stateful.layers[0].stateful and stateful.layers[0].reset_after and not stateful.layers[0].return_sequences
    assert isinstance(Sequential.from_tmva("RNN|8|30|10|0|0,LINEAR", "10|30").layers[0], RNN)
    dropped = Sequential.from_tmva("LSTM|4|30|10|0|0,DENSE|8|TANH,LINEAR", "10|30", dropout=[0.0, 0.3, 0.5])
    assert [type(layer).__name__ for layer in dropped.layers] == ["LSTM", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.rate for layer in dropped.layers if isinstance(layer, Dropout)] == [0.3, 0.5]


def test_same_seed_same_network():
    a = Sequential.from_tmva(LAYOUTS[0][0], "5|3", seed=7)
    b = Sequential.from_tmva(LAYOUTS[0][0], "5|3", seed=7)
    c = Sequential.from_tmva(LAYOUTS[0][0], "5|3", seed=8)
    for k, p in a.parameters().items():
        np.testing.assert_array_equal(p, b.parameters()[k])
    assert any(not np.array_equal(p, c.parameters()[k]) for k, p in a.parameters().items())


def test_predict_proba_predict_evaluate():
    model = Sequential.from_tmva(LAYOUTS[0][0], "5|3", seed=0)
    X, y = data(n=40, dtype=np.float32)
    p = model.predict_proba(X)
    assert p.shape == (40,) and np.all((p > 0) & (p < 1))
    np.testing.assert_array_equal(model.predict(X), (p >= 0.5).astype(int))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-model.decision_function(X))), rtol=1e-6)
    # batching does not change the result
    np.testing.assert_allclose(model.predict_proba(X, batch_size=7), p, rtol=1e-6)
    result = model.evaluate(X, y)
    assert set(result) == {"loss", "roc_auc", "accuracy"}


@pytest.mark.parametrize("layout,loss", LAYOUTS)
def test_save_load_round_trip(tmp_path, layout, loss):
    model = Sequential.from_tmva(layout, "5|3", loss=loss, seed=3)
    X, y = data(n=30, dtype=np.float32)
    from bptt.data.arrays import Standardizer

    model.standardizer = Standardizer().fit(X * 3 + 1)
    path = model.save(tmp_path / "m.bptt")
    loaded = Sequential.load(path)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    assert loaded.config() == model.config()
    # the file is safetensors: an 8-byte little-endian header length, then a JSON header
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert raw[8:9] == b"{" and b"bptt-model" in raw[8 : 8 + n]
    header = json.loads(raw[8 : 8 + n])  # the whole header is JSON (a pickle would not parse)
    assert "__metadata__" in header and 8 + n < len(raw) and b"pickle" not in raw


def test_model_file_errors_and_atomic_save(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"load_model: no such file: '.*missing.bptt'"):
        Sequential.load(tmp_path / "missing.bptt")
    junk = tmp_path / "junk.bptt"
    junk.write_bytes(b"\x80\x04not a model")
    with pytest.raises(ValueError, match=r"load_model: '.*junk.bptt' is not a bptt model or checkpoint file"):
        Sequential.load(junk)
    model = Sequential.from_tmva(LAYOUTS[0][0], "5|3", seed=0)
    path = model.save(tmp_path / "m.bptt")
    before = open(path, "rb").read()
    import safetensors.numpy

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        Sequential.from_tmva(LAYOUTS[1][0], "5|3", seed=1).save(path)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["junk.bptt", "m.bptt"]


def test_config_errors():
    with pytest.raises(ValueError, match=r"Sequential: layers must be a non-empty list of bptt layers"):
        Sequential([])
    with pytest.raises(ValueError, match=r"not a bptt model configuration"):
        Sequential.from_config({"format": "something-else"})
    model = Sequential([LSTM(3, 4), Flatten()])
    with pytest.raises(ValueError, match=r"set_parameters: names must match the model's; missing \['0.U', '0.W', '0.b'\]"):
        model.set_parameters({})
    assert isinstance(GRU(3, 4), GRU)
