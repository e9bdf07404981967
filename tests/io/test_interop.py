"""Weights exchange with PyTorch and Keras 3 (``bptt.io.torch_weights``, ``bptt.io.keras_weights``).

PyTorch and Keras are test-only references here (the library modules import neither):

* torch → bptt → torch: the weights come back identical (GRU biases array by array; the LSTM/RNN
  biases, which bptt sums, as ``bias_ih + bias_hh``) and bptt's forward equals torch's in float64
  to 1e-10, for ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` (tanh, relu), one and two stacked layers,
  with and without biases;
* keras → bptt → keras: ``get_weights()`` arrays come back identical and bptt's forward equals
  ``model.predict`` in float32 to 1e-5 (relative to the output's largest value), for ``LSTM``,
  ``GRU`` (``reset_after`` True and False) and ``SimpleRNN``. That comparison is what checks the
  layout facts the module relies on (gate orders, bias shapes); they are also asserted directly;
* ``.weights.h5`` and ``.keras`` files written by Keras are read back;
* the error cases.
"""

from __future__ import annotations

import os
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bptt.io.keras_weights import from_keras, layers_from_keras, read_keras_weights, to_keras  # noqa: E402
from bptt.io.torch_weights import from_torch, load_torch_into, to_torch, torch_state_dict  # noqa: E402
from bptt.layers import GRU, LSTM, RNN  # noqa: E402

from keras_reference import KERAS_CASES, randomize  # noqa: E402
import keras_reference  # noqa: E402
import torch  # noqa: E402  (the test extra's PyTorch: a missing install fails, not skips)

# Keras' own NumPy-2 migration warning, raised inside keras for every get_weights()/predict().
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
    pytest.mark.usefixtures("torch_one_thread"),  # tests/conftest.py
]

B, T, I, H = 3, 5, 4, 3


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ─────────────────────────────────────────────── torch

TORCH_CASES = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]


def torch_module(cell, activation, num_layers, bias=True, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    if cell == "lstm":
        m = torch.nn.LSTM(I, H, num_layers=num_layers, bias=bias, batch_first=True, dtype=dtype)
    elif cell == "gru":
        m = torch.nn.GRU(I, H, num_layers=num_layers, bias=bias, batch_first=True, dtype=dtype)
    else:
        m = torch.nn.RNN(I, H, num_layers=num_layers, nonlinearity=activation, bias=bias, batch_first=True, dtype=dtype)
    with torch.no_grad():  # larger than the default init so every gate matters
        for p in m.parameters():
            p.uniform_(-0.8, 0.8)
    return m


def bptt_stack(cell, activation, num_layers, dtype=np.float64):
    layers = []
    for k in range(num_layers):
        n_in = I if k == 0 else H
        if cell == "lstm":
            layers.append(LSTM(n_in, H, return_sequences=True, dtype=dtype, seed=10 + k))
        elif cell == "gru":
            layers.append(GRU(n_in, H, return_sequences=True, dtype=dtype, seed=10 + k))
        else:
            layers.append(RNN(n_in, H, return_sequences=True, activation=activation, dtype=dtype, seed=10 + k))
    return layers


def run_stack(layers, x):
    for layer in layers:
        x = layer.forward(x, training=False)
    return x


def torch_out(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x))[0].numpy()


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,activation", TORCH_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_torch_round_trip(cell, activation, num_layers, bias):
    module = torch_module(cell, activation, num_layers, bias=bias)
    sd = module.state_dict()
    x = np.random.default_rng(1).standard_normal((B, T, I))

    params = from_torch(sd, cell)
    assert len(params) == num_layers
    assert params[0]["W"].shape == (I, GATE[cell] * H) and params[0]["W"].dtype == np.float64
    assert sorted(params[0]) == (["U", "W", "b", "b_u"] if cell == "gru" else ["U", "W", "b"])

    layers = load_torch_into(bptt_stack(cell, activation, num_layers), sd)
    assert rel_err(run_stack(layers, x), torch_out(module, x)) <= 1e-10

    back = torch_state_dict(layers, bias=bias)
    assert sorted(back) == sorted(sd)
    for k in range(num_layers):
        for w in ("weight_ih", "weight_hh"):
            np.testing.assert_array_equal(back[f"{w}_l{k}"], sd[f"{w}_l{k}"].numpy())
        if bias and cell == "gru":
            for b in ("bias_ih", "bias_hh"):
                np.testing.assert_array_equal(back[f"{b}_l{k}"], sd[f"{b}_l{k}"].numpy())
        elif bias:
            np.testing.assert_array_equal(back[f"bias_ih_l{k}"] + back[f"bias_hh_l{k}"],
                                          (sd[f"bias_ih_l{k}"] + sd[f"bias_hh_l{k}"]).numpy())
            assert not back[f"bias_hh_l{k}"].any()
    fresh = torch_module(cell, activation, num_layers, bias=bias, seed=99)
    fresh.load_state_dict({k: torch.from_numpy(a) for k, a in back.items()})
    assert rel_err(torch_out(fresh, x), torch_out(module, x)) <= 1e-10


GATE = {"lstm": 4, "gru": 3, "rnn": 1}


def test_torch_bptt_to_torch_and_back_is_exact():
    layers = [LSTM(I, H, dtype=np.float64, seed=0, bias_initializer="glorot_uniform"), LSTM(H, H, dtype=np.float64, seed=1)]
    sd = to_torch([layer.params for layer in layers], "LSTM")
    back = from_torch(sd, "lstm", num_layers=2)
    for layer, p in zip(layers, back):
        for k in layer.params:
            np.testing.assert_array_equal(p[k], layer.params[k])
            assert not np.shares_memory(p[k], sd["weight_ih_l0"])
    # the returned arrays are copies, not views of the parameters
    sd["weight_ih_l0"][...] = 0.0
    assert layers[0].params["W"].any()


def test_torch_float32_tensors_parameters_and_prefix():
    module = torch_module("gru", None, 1, dtype=torch.float32)
    # named_parameters tensors (requires_grad) inside a bigger model's naming
    sd = {f"encoder.{k}": p for k, p in module.named_parameters()}
    sd["head.weight"] = torch.zeros(1, H)
    params = from_torch(sd, "gru", prefix="encoder.")
    assert params[0]["W"].dtype == np.float32
    x = np.random.default_rng(2).standard_normal((B, T, I)).astype(np.float32)
    layer = GRU(I, H, return_sequences=True, seed=0)
    load_torch_into(layer, sd, prefix="encoder.")
    assert rel_err(layer.forward(x, training=False), torch_out(module, x)) <= 1e-5
    assert from_torch(module.state_dict(), "gru", dtype=np.float64)[0]["U"].dtype == np.float64


def test_torch_errors():
    lstm_sd = torch_module("lstm", None, 1).state_dict()
    bi_sd = torch.nn.LSTM(I, H, bidirectional=True).state_dict()  # bidirectional: tests/io/test_bidirectional_io.py
    with pytest.raises(ValueError, match=r"from_torch: missing weight_hh_l0_reverse \(layer 0 of 1\) \(the module is "
                                         r"bidirectional: every layer has both directions\)"):
        from_torch({k: a for k, a in bi_sd.items() if k != "weight_hh_l0_reverse"}, "lstm")
    with pytest.raises(ValueError, match=r"from_torch: LSTM projections \(proj_size > 0\).*weight_hr_l0"):
        from_torch(torch.nn.LSTM(I, H, proj_size=2).state_dict(), "lstm")
    with pytest.raises(ValueError, match=r"from_torch: cell must be one of 'lstm', 'gru', 'rnn'; got 'cnn'"):
        from_torch(lstm_sd, "cnn")
    with pytest.raises(ValueError, match=r"from_torch: .*weight_hh_l0 must have shape \(3·H, H\) for a GRU"):
        from_torch(lstm_sd, "gru")
    with pytest.raises(ValueError, match=r"from_torch: num_layers=2 but the state dict holds layers 0..0"):
        from_torch(lstm_sd, "lstm", num_layers=2)
    with pytest.raises(ValueError, match=r"from_torch: missing weight_hh_l0"):
        from_torch({"weight_ih_l0": np.zeros((4 * H, I))}, "lstm")
    with pytest.raises(ValueError, match=r"from_torch: missing bias_hh_l0"):
        from_torch({k: a for k, a in lstm_sd.items() if k != "bias_hh_l0"}, "lstm")
    with pytest.raises(ValueError, match=r"from_torch: unexpected keys \['fc.weight'\]"):
        from_torch({**lstm_sd, "fc.weight": np.zeros(3)}, "lstm")
    with pytest.raises(ValueError, match=r"from_torch: state_dict has no keys starting with prefix 'rnn.'"):
        from_torch(lstm_sd, "lstm", prefix="rnn.")
    with pytest.raises(ValueError, match=r"from_torch: weight_ih_l0 contains NaN"):
        from_torch({**lstm_sd, "weight_ih_l0": np.full((4 * H, I), np.nan)}, "lstm")

    with pytest.raises(ValueError, match=r"to_torch: a GRU with reset_after=False .* has no torch equivalent"):
        to_torch([GRU(I, H, reset_after=False).params], "gru", reset_after=False)
    with pytest.raises(ValueError, match=r"torch_state_dict: to_torch: a GRU with reset_after=False"):
        torch_state_dict([GRU(I, H, reset_after=False)])
    with pytest.raises(ValueError, match=r"load_torch_into: layer 0 is a GRU with reset_after=False"):
        load_torch_into(GRU(I, H, reset_after=False), torch_module("gru", None, 1).state_dict())
    with pytest.raises(ValueError, match=r"to_torch: params_list must be a list of params dicts.*\[layer.params\]"):
        to_torch(LSTM(I, H).params, "lstm")
    with pytest.raises(ValueError, match=r"to_torch: params_list\[0\] lacks \['b_u'\]"):
        to_torch([{"W": np.zeros((I, 3 * H)), "U": np.zeros((H, 3 * H)), "b": np.zeros(3 * H)}], "gru")
    with pytest.raises(ValueError, match=r"to_torch: params_list\[1\]\['W'\] has input size 4 but layer 0 has hidden size 3"):
        to_torch([LSTM(I, H).params, LSTM(I, H).params], "lstm")
    with pytest.raises(ValueError, match=r"to_torch: bias=False but params_list\[0\] has non-zero \['b'\]"):
        to_torch([RNN(I, H, bias_initializer="glorot_uniform", seed=0).params], "rnn", bias=False)
    with pytest.raises(ValueError, match=r"load_torch_into: all layers must be of one kind"):
        load_torch_into([LSTM(I, H), GRU(H, H)], lstm_sd)
    with pytest.raises(ValueError, match=r"load_torch_into: the state dict holds 1 layer\(s\) .* but 2 bptt"):
        load_torch_into([LSTM(I, H), LSTM(H, H)], lstm_sd)
    with pytest.raises(ValueError, match=r"load_torch_into: layer 0 W must have shape \(5, 12\)"):
        load_torch_into(LSTM(5, H), lstm_sd)
    with pytest.raises(ValueError, match=r"torch_state_dict: layers must be bptt LSTM, GRU or RNN layers; got Dense"):
        from bptt.layers import Dense

        torch_state_dict([Dense(2, 2)])


# ─────────────────────────────────────────────── keras


def keras_layer(keras, cell, reset_after, **kw):
    return keras_reference.keras_layer(keras, cell, reset_after, H, **kw)


def bptt_layer(cell, reset_after, n_in=I, activation="tanh", dtype=np.float32):
    if cell == "lstm":
        return LSTM(n_in, H, return_sequences=True, dtype=dtype, seed=5)
    if cell == "gru":
        return GRU(n_in, H, reset_after=reset_after, return_sequences=True, dtype=dtype, seed=5)
    return RNN(n_in, H, activation=activation, return_sequences=True, dtype=dtype, seed=5)


@pytest.mark.parametrize("cell,reset_after", KERAS_CASES)
def test_keras_round_trip(keras, cell, reset_after):
    keras.utils.set_random_seed(0)
    layer = keras_layer(keras, cell, reset_after, return_sequences=True)
    model = keras.Sequential([keras.Input((T, I)), layer])
    randomize(layer, 1)
    weights = layer.get_weights()
    # the Keras 3 layout facts the module relies on
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    bias_shape = (2, G * H) if cell == "gru" and reset_after else (G * H,)
    assert [w.shape for w in weights] == [(I, G * H), (H, G * H), bias_shape]

    params = from_keras(weights, cell, reset_after=reset_after)
    ours = bptt_layer(cell, reset_after)
    for k, p in ours.params.items():
        p[...] = params[k]
    x = np.random.default_rng(2).standard_normal((B, T, I)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    assert rel_err(ours.forward(x, training=False), expected) <= 1e-5

    back = to_keras(ours.params, cell, reset_after=reset_after)
    assert len(back) == 3
    for a, w in zip(back, weights):
        assert a.dtype == w.dtype
        np.testing.assert_array_equal(a, w)


@pytest.mark.parametrize("cell,reset_after", KERAS_CASES)
def test_bptt_to_keras(keras, cell, reset_after):
    """bptt weights (every bias non-zero, GRU b_u included) give Keras the same function."""
    ours = bptt_layer(cell, reset_after, activation="relu")
    rng = np.random.default_rng(3)
    for p in ours.params.values():
        p[...] = rng.uniform(-0.8, 0.8, p.shape)
    kw = {"activation": "relu"} if cell == "rnn" else {}
    layer = keras_layer(keras, cell, reset_after, return_sequences=True, **kw)
    model = keras.Sequential([keras.Input((T, I)), layer])
    layer.set_weights(to_keras(ours.params, cell, reset_after=reset_after))
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    assert rel_err(model.predict(x, verbose=0), ours.forward(x, training=False)) <= 1e-5
    if cell == "gru" and not reset_after:  # b_u is folded into b
        p = from_keras(layer.get_weights(), "gru", reset_after=False)
        assert not p["b_u"].any()
        np.testing.assert_allclose(p["b"], ours.params["b"] + ours.params["b_u"], rtol=1e-6)


def test_keras_use_bias_false(keras):
    layer = keras.layers.GRU(H, use_bias=False, return_sequences=True)
    model = keras.Sequential([keras.Input((T, I)), layer])
    randomize(layer, 4)
    assert len(layer.get_weights()) == 2
    ours = bptt_layer("gru", True)
    for k, p in from_keras(layer.get_weights(), "gru").items():
        ours.params[k][...] = p
    assert not ours.params["b"].any() and not ours.params["b_u"].any()
    x = np.random.default_rng(5).standard_normal((B, T, I)).astype(np.float32)
    assert rel_err(ours.forward(x, training=False), model.predict(x, verbose=0)) <= 1e-5
    back = to_keras(ours.params, "gru", use_bias=False)
    assert len(back) == 2
    for a, w in zip(back, layer.get_weights()):
        np.testing.assert_array_equal(a, w)


@pytest.fixture(scope="module")
def keras_files(keras, tmp_path_factory):
    """A Keras model (LSTM → GRU(reset_after=False) → SimpleRNN(relu)) saved both ways."""
    keras.utils.set_random_seed(0)
    layers = [keras.layers.LSTM(H, return_sequences=True, name="enc"),
              keras.layers.GRU(H, reset_after=False, return_sequences=True, name="mid"),
              keras.layers.SimpleRNN(2, activation="relu", name="last")]
    model = keras.Sequential([keras.Input((T, I))] + layers)
    for k, layer in enumerate(layers):
        randomize(layer, 10 + k)
    d = tmp_path_factory.mktemp("keras")
    model.save_weights(d / "m.weights.h5")
    model.save(d / "m.keras")
    x = np.random.default_rng(6).standard_normal((B, T, I)).astype(np.float32)
    return {"dir": d, "x": x, "y": model.predict(x, verbose=0), "weights": [layer.get_weights() for layer in layers]}


@pytest.mark.parametrize("name", ["m.weights.h5", "m.keras"])
def test_read_keras_files(keras_files, name):
    entries = read_keras_weights(keras_files["dir"] / name)
    if name.endswith(".weights.h5"):  # no layer order in the file: sorted by HDF5 key (gru, lstm, simple_rnn)
        assert [(n, c) for n, c, _, _ in entries] == [("mid", "gru"), ("enc", "lstm"), ("last", "rnn")]
        entries = [entries[1], entries[0], entries[2]]
    assert [(n, c) for n, c, _, _ in entries] == [("enc", "lstm"), ("mid", "gru"), ("last", "rnn")]
    for (_, _, _, weights), expected in zip(entries, keras_files["weights"]):
        assert len(weights) == len(expected)
        for a, b in zip(weights, expected):
            np.testing.assert_array_equal(a, b)
    configs = {n: cfg for n, _, cfg, _ in entries}
    assert configs["mid"]["reset_after"] is False and configs["enc"]["units"] == H
    if name.endswith(".keras"):  # the full Keras config
        assert configs["last"]["activation"] == "relu" and configs["enc"]["return_sequences"] is True
        layers = layers_from_keras(keras_files["dir"] / name)
        assert [type(layer).__name__ for layer in layers] == ["LSTM", "GRU", "RNN"]
        assert layers[1].reset_after is False and layers[2].activation == "relu"
        assert [layer.return_sequences for layer in layers] == [True, True, False]
        y = keras_files["x"]
        for layer in layers:
            y = layer.forward(y, training=False)
        assert rel_err(y, keras_files["y"]) <= 1e-5
    else:  # only what the shapes tell
        assert configs["last"] == {"units": 2, "use_bias": True}


def test_read_keras_nested_functional(keras, tmp_path):
    inner = keras.Sequential([keras.Input((T, I)), keras.layers.SimpleRNN(H, name="inner_rnn")], name="inner")
    inp = keras.Input((T, I))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([inner(inp), keras.layers.GRU(2, name="g")(inp)]))
    model = keras.Model(inp, out)
    model.save(tmp_path / "nested.keras")
    entries = read_keras_weights(tmp_path / "nested.keras")
    assert sorted((n, c) for n, c, _, _ in entries) == [("g", "gru"), ("inner_rnn", "rnn")]
    by_name = {n: w for n, _, _, w in entries}
    for a, b in zip(by_name["inner_rnn"], model.get_layer("inner").get_layer("inner_rnn").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_errors(keras, tmp_path):
    with pytest.raises(ValueError, match=r"read_keras_weights: no such file: .*missing.keras"):
        read_keras_weights(tmp_path / "missing.keras")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=r"read_keras_weights: .*junk.h5' is neither an HDF5 weights file"):
        read_keras_weights(tmp_path / "junk.h5")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ValueError, match=r"read_keras_weights: .* zip archive without model.weights.h5"):
        read_keras_weights(tmp_path / "other.keras")
    dense = keras.Sequential([keras.Input((I,)), keras.layers.Dense(2)])
    dense.save_weights(tmp_path / "dense.weights.h5")
    with pytest.raises(ValueError, match=r"read_keras_weights: .* holds no Keras LSTM, GRU or SimpleRNN layer"):
        read_keras_weights(tmp_path / "dense.weights.h5")

    k, rk = np.zeros((I, 3 * H), np.float32), np.zeros((H, 3 * H), np.float32)
    with pytest.raises(ValueError, match=r"from_keras: weights\[2\] \(bias\) must have shape \(9,\) for a GRU with "
                                         r"reset_after=False; got \(2, 9\).*pass reset_after=True"):
        from_keras([k, rk, np.zeros((2, 3 * H), np.float32)], "gru", reset_after=False)
    with pytest.raises(ValueError, match=r"from_keras: weights\[2\] \(bias\) must have shape \(2, 9\) .*got \(9,\)"):
        from_keras([k, rk, np.zeros(3 * H, np.float32)], "gru")
    with pytest.raises(ValueError, match=r"from_keras: weights\[1\] \(recurrent_kernel\) must have shape \(H, 4·H\) for a LSTM"):
        from_keras([k, rk], "lstm")
    with pytest.raises(ValueError, match=r"from_keras: weights must be the list layer.get_weights\(\) returns.*length 1"):
        from_keras([k], "gru")
    with pytest.raises(ValueError, match=r"from_keras: weights\[0\] \(kernel\) has dtype float64 but .* float32"):
        from_keras([k.astype(np.float64), rk], "gru")
    with pytest.raises(ValueError, match=r"to_keras: params lacks \['b_u'\] for a GRU"):
        to_keras({"W": k, "U": rk, "b": np.zeros(3 * H, np.float32)}, "gru")
    with pytest.raises(ValueError, match=r"to_keras: use_bias=False but params has non-zero \['b'\]"):
        to_keras(LSTM(I, H, bias_initializer="glorot_uniform", seed=0).params, "lstm", use_bias=False)
    with pytest.raises(ValueError, match=r"to_keras: reset_after must be one of True, False; got 'yes'"):
        to_keras(GRU(I, H).params, "gru", reset_after="yes")


def test_library_modules_import_neither_torch_nor_keras():
    import subprocess
    import sys

    code = ("import sys, bptt.io.torch_weights, bptt.io.keras_weights; "
            "print(sorted(m for m in ('torch', 'keras', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_layers_from_keras_limits(keras, tmp_path):
    """Bidirectional wrappers are one entry each (tests/io/test_bidirectional_io.py has their
    numbers); configurations bptt cannot run are refused."""
    model = keras.Sequential([keras.Input((T, I)),
                              keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True), name="bi"),
                              keras.layers.GRU(H, name="g")])
    model.save(tmp_path / "bi.keras")
    assert [(n, c) for n, c, _, _ in read_keras_weights(tmp_path / "bi.keras")] == [("bi", "lstm"), ("g", "gru")]
    model.save_weights(tmp_path / "bi.weights.h5")
    bi, layer = layers_from_keras(tmp_path / "bi.weights.h5", dtype=np.float64)  # shapes only: defaults
    assert (type(bi).__name__, bi.bidirectional, bi.input_size, bi.hidden_size) == ("LSTM", True, I, 2)
    assert (type(layer).__name__, layer.input_size, layer.return_sequences, layer.dtype) == ("GRU", 4, False, np.float64)

    keras.Sequential([keras.Input((T, I)), keras.layers.LSTM(H, activation="relu", name="r")]).save(tmp_path / "relu.keras")
    with pytest.raises(ValueError, match=r"layers_from_keras: layer 'r' has activation='relu'; bptt's LSTM uses 'tanh'"):
        layers_from_keras(tmp_path / "relu.keras")
    keras.Sequential([keras.Input((T, I)), keras.layers.GRU(H, go_backwards=True, name="b")]).save(tmp_path / "back.keras")
    with pytest.raises(ValueError, match=r"layers_from_keras: layer 'b' has go_backwards=True"):
        layers_from_keras(tmp_path / "back.keras")
