"""Bidirectional layers through bptt.io (issue 20, point 2): PyTorch ``*_reverse`` state dicts and
Keras ``Bidirectional`` wrappers, each checked against the library itself.

* torch: ``nn.LSTM/GRU/RNN(bidirectional=True, num_layers=2)`` with random weights (biases
  included) → :func:`from_torch` / :func:`load_torch_into` → two stacked bptt layers whose outputs
  over packed sequences equal torch's in float64 to 1e-10; back with :func:`to_torch` /
  :func:`torch_state_dict` into a fresh torch module, which then computes the same;
* Keras (torch backend): ``Bidirectional(LSTM|GRU|SimpleRNN, merge_mode="concat")`` →
  :func:`from_keras` → bptt's forward equals ``model.predict`` to 1e-5 (float32), and
  :func:`to_keras` gives the wrapper's ``get_weights()`` back array for array; bptt → Keras
  through ``set_weights``; ``.keras`` / ``.weights.h5`` files read by :func:`layers_from_keras`;
  the other merge modes refused by name.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from keras_reference import KERAS_CASES, keras_layer, randomize  # noqa: E402

from bptt.io.keras_weights import from_keras, layers_from_keras, read_keras_weights, to_keras  # noqa: E402
from bptt.io.torch_weights import from_torch, load_torch_into, to_torch, torch_state_dict  # noqa: E402
from bptt.layers import GRU, LSTM, RNN  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
    pytest.mark.usefixtures("torch_one_thread"),  # tests/conftest.py
]

B, T, I, H = 4, 6, 3, 2
LENGTHS = np.array([6, 1, 4, 2])
LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ─────────────────────────────────────────────── torch


def torch_bi(cell, seed=0, num_layers=2):
    torch.manual_seed(seed)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    m = cls(I, H, num_layers=num_layers, bidirectional=True, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.9, 0.9)
    return m


def torch_packed_out(m, x, lengths=LENGTHS):
    packed = pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    out, _ = m(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0].detach().numpy()


def bptt_stack(cell, dtype=np.float64, num_layers=2):
    cls = LAYERS[cell]
    return [cls(I if k == 0 else 2 * H, H, bidirectional=True, return_sequences=True, dtype=dtype, seed=k)
            for k in range(num_layers)]


def run(layers, x, lengths=LENGTHS):
    for layer in layers:
        x = layer.forward(x, training=False, lengths=lengths)
    return x


@pytest.mark.parametrize("cell", LAYERS)
def test_torch_bidirectional_two_layers_in_and_out(cell):
    m = torch_bi(cell)
    sd = m.state_dict()
    assert "weight_ih_l1_reverse" in sd and sd["weight_ih_l1"].shape == (m.weight_hh_l0.shape[0], 2 * H)
    params = from_torch(sd, cell)
    assert sorted(params[1]) == sorted(bptt_stack(cell)[1].params)
    layers = bptt_stack(cell)
    for layer, p in zip(layers, params):
        for k in layer.params:
            layer.params[k][...] = p[k]
    x = np.random.default_rng(0).normal(size=(B, T, I))
    want = torch_packed_out(m, x)
    assert rel_err(run(layers, x), want) <= 1e-10

    filled = load_torch_into(bptt_stack(cell), sd)
    assert rel_err(run(filled, x), want) <= 1e-10

    back = torch_state_dict(filled)
    assert sorted(back) == sorted(sd)
    for k, a in back.items():  # the LSTM/RNN biases come back summed into bias_ih
        if cell != "gru" and k.startswith("bias_"):
            if k.startswith("bias_ih"):
                np.testing.assert_allclose(a, (sd[k] + sd[k.replace("bias_ih", "bias_hh")]).numpy(), rtol=1e-15)
            else:
                assert not a.any()
        else:
            np.testing.assert_array_equal(a, sd[k].numpy())
    fresh = torch_bi(cell, seed=1)
    fresh.load_state_dict({k: torch.from_numpy(a) for k, a in to_torch([layer.params for layer in filled], cell).items()})
    assert rel_err(torch_packed_out(fresh, x), want) <= 1e-10


def test_torch_bidirectional_errors():
    sd = torch_bi("gru").state_dict()
    with pytest.raises(ValueError, match=r"load_torch_into: the state dict is a bidirectional module \(\*_reverse keys\) "
                                         r"but layer 0 has bidirectional=False; build the bptt layers with bidirectional=True"):
        load_torch_into([GRU(I, H, return_sequences=True), GRU(2 * H, H)], sd)
    with pytest.raises(ValueError, match=r"load_torch_into: the state dict is a unidirectional module but layer 0 has "
                                         r"bidirectional=True"):
        load_torch_into(GRU(I, H, bidirectional=True), torch.nn.GRU(I, H).state_dict())
    with pytest.raises(ValueError, match=r"load_torch_into: layer 1 W must have shape \(2, 6\)"):
        load_torch_into([GRU(I, H, bidirectional=True), GRU(H, H, bidirectional=True)], sd)
    bad = dict(sd)
    bad["weight_ih_l1_reverse"] = torch.zeros(3 * H, H, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"from_torch: weight_ih_l1_reverse has input size 2 but layer 0 has hidden "
                                         r"size 2 and two directions \(4 outputs\)"):
        from_torch(bad, "gru")
    with pytest.raises(ValueError, match=r"to_torch: params_list mixes bidirectional layers \(with W_reverse\) and "
                                         r"unidirectional ones \(layers \[1\] have no W_reverse\)"):
        to_torch([GRU(I, H, bidirectional=True).params, GRU(2 * H, H).params], "gru")
    p = dict(LSTM(I, H, bidirectional=True).params)
    del p["U_reverse"]
    with pytest.raises(ValueError, match=r"to_torch: params_list\[0\] lacks \['U_reverse'\] for a bidirectional LSTM"):
        to_torch([p], "lstm")
    with pytest.raises(ValueError, match=r"to_torch: bias=False but params_list\[0\] has non-zero \['b_reverse'\]"):
        layer = RNN(I, H, bidirectional=True)
        layer.params["b_reverse"][0] = 1
        to_torch([layer.params], "rnn", bias=False)


# ─────────────────────────────────────────────── keras


def keras_cell(keras, cell, reset_after, **kw):
    return keras_layer(keras, cell, reset_after, H, **kw)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("cell,reset_after", KERAS_CASES)
def test_keras_bidirectional_round_trip(keras, cell, reset_after, return_sequences):
    wrapper = keras.layers.Bidirectional(keras_cell(keras, cell, reset_after, return_sequences=return_sequences),
                                         merge_mode="concat")
    model = keras.Sequential([keras.Input((T, I)), wrapper])
    randomize(wrapper, 1)
    weights = wrapper.get_weights()
    assert len(weights) == 6  # the forward layer's three arrays, then the backward layer's
    params = from_keras(weights, cell, reset_after=reset_after)
    layer = LAYERS[cell](I, H, bidirectional=True, return_sequences=return_sequences,
                         **({"reset_after": reset_after} if cell == "gru" else {}))
    assert sorted(params) == sorted(layer.params)
    for k in layer.params:
        layer.params[k][...] = params[k]
    x = np.random.default_rng(2).standard_normal((B, T, I)).astype(np.float32)
    assert rel_err(layer.forward(x, training=False), model.predict(x, verbose=0)) <= 1e-5
    back = to_keras(layer.params, cell, reset_after=reset_after)
    assert len(back) == 6
    for a, w in zip(back, weights):
        np.testing.assert_array_equal(a, w)


@pytest.mark.parametrize("cell,reset_after", KERAS_CASES)
def test_bptt_bidirectional_to_keras(keras, cell, reset_after):
    layer = LAYERS[cell](I, H, bidirectional=True, return_sequences=True, seed=3,
                         **({"reset_after": reset_after} if cell == "gru" else {}))
    rng = np.random.default_rng(3)
    for p in layer.params.values():
        p[...] = rng.uniform(-0.8, 0.8, p.shape)
    wrapper = keras.layers.Bidirectional(keras_cell(keras, cell, reset_after, return_sequences=True))
    model = keras.Sequential([keras.Input((T, I)), wrapper])
    wrapper.set_weights(to_keras(layer.params, cell, reset_after=reset_after))
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    assert rel_err(model.predict(x, verbose=0), layer.forward(x, training=False)) <= 1e-5


def test_keras_bidirectional_use_bias_false(keras):
    wrapper = keras.layers.Bidirectional(keras.layers.LSTM(H, use_bias=False, return_sequences=True))
    model = keras.Sequential([keras.Input((T, I)), wrapper])
    randomize(wrapper, 4)
    assert len(wrapper.get_weights()) == 4
    layer = LSTM(I, H, bidirectional=True, return_sequences=True)
    for k, p in from_keras(wrapper.get_weights(), "lstm").items():
        layer.params[k][...] = p
    assert not layer.params["b"].any() and not layer.params["b_reverse"].any()
    x = np.random.default_rng(5).standard_normal((B, T, I)).astype(np.float32)
    assert rel_err(layer.forward(x, training=False), model.predict(x, verbose=0)) <= 1e-5
    assert len(to_keras(layer.params, "lstm", use_bias=False)) == 4


@pytest.fixture(scope="module")
def keras_bi_files(keras, tmp_path_factory):
    """Bidirectional(GRU, sequences) → Bidirectional(LSTM, last) → SimpleRNN, saved both ways."""
    layers = [keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True), name="bgru"),
              keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True), name="blstm"),
              keras.layers.SimpleRNN(2, name="last")]
    model = keras.Sequential([keras.Input((T, I))] + layers)
    for k, layer in enumerate(layers):
        randomize(layer, 20 + k)
    d = tmp_path_factory.mktemp("keras_bi")
    model.save(d / "m.keras")
    model.save_weights(d / "m.weights.h5")
    x = np.random.default_rng(6).standard_normal((B, T, I)).astype(np.float32)
    return {"dir": d, "x": x, "y": model.predict(x, verbose=0), "weights": [layer.get_weights() for layer in layers]}


@pytest.mark.parametrize("name", ["m.keras", "m.weights.h5"])
def test_keras_bidirectional_files(keras_bi_files, name):
    entries = read_keras_weights(keras_bi_files["dir"] / name)
    assert [(n, c) for n, c, _, _ in entries] == [("bgru", "gru"), ("blstm", "lstm"), ("last", "rnn")]
    for (_, _, _, weights), expected in zip(entries, keras_bi_files["weights"]):
        assert len(weights) == len(expected)
        for a, b in zip(weights, expected):
            np.testing.assert_array_equal(a, b)
    configs = {n: cfg for n, _, cfg, _ in entries}
    assert configs["bgru"]["bidirectional"] is True and "bidirectional" not in configs["last"]
    layers = layers_from_keras(keras_bi_files["dir"] / name)
    assert [getattr(layer, "bidirectional", False) for layer in layers] == [True, True, False]
    assert layers[1].input_size == 2 * H and layers[2].input_size == 2 * H
    if name.endswith(".keras"):  # the configuration: merge mode and return_sequences
        assert configs["bgru"]["merge_mode"] == "concat" and configs["bgru"]["backward_layer"]["go_backwards"] is True
        y = keras_bi_files["x"]
        for layer in layers:
            y = layer.forward(y, training=False)
        assert rel_err(y, keras_bi_files["y"]) <= 1e-5


@pytest.mark.parametrize("mode", ["sum", "mul", "ave", None])
def test_keras_merge_modes_other_than_concat_refused_by_name(keras, tmp_path, mode):
    wrapper = keras.layers.Bidirectional(keras.layers.GRU(H), merge_mode=mode, name="merged")
    keras.Sequential([keras.Input((T, I)), wrapper]).save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=rf"layers_from_keras: layer 'merged' is a Bidirectional wrapper with "
                                         rf"merge_mode={mode!r}; bptt's bidirectional layers concatenate"):
        layers_from_keras(tmp_path / "m.keras")


def test_keras_backward_layer_unlike_the_forward_one_refused(keras, tmp_path):
    wrapper = keras.layers.Bidirectional(keras.layers.SimpleRNN(H), name="odd",
                                         backward_layer=keras.layers.SimpleRNN(H, activation="relu", go_backwards=True))
    keras.Sequential([keras.Input((T, I)), wrapper]).save(tmp_path / "odd.keras")
    with pytest.raises(ValueError, match=r"layers_from_keras: layer 'odd' is a Bidirectional wrapper whose backward "
                                         r"layer differs from its forward layer: activation='relu' \(forward 'tanh'\)"):
        layers_from_keras(tmp_path / "odd.keras")


def test_keras_bidirectional_weight_errors():
    k, rk, b = np.zeros((I, 4 * H), np.float32), np.zeros((H, 4 * H), np.float32), np.zeros(4 * H, np.float32)
    with pytest.raises(ValueError, match=r"from_keras: weights\[4\] \(recurrent_kernel\) must have shape \(H, 4·H\)"):
        from_keras([k, rk, b, k, np.zeros((H, 3 * H), np.float32), b], "lstm")
    with pytest.raises(ValueError, match=r"from_keras: a Bidirectional wrapper's two layers must have the same sizes"):
        from_keras([k, rk, b, np.zeros((I + 1, 4 * H), np.float32), rk, b], "lstm")
    with pytest.raises(ValueError, match=r"from_keras: weights must be the list .* length 5"):
        from_keras([k, rk, b, k, rk], "lstm")
    p = dict(GRU(I, H, bidirectional=True).params)
    del p["b_u_reverse"]
    with pytest.raises(ValueError, match=r"to_keras: params lacks \['b_u_reverse'\] for a bidirectional GRU"):
        to_keras(p, "gru")
