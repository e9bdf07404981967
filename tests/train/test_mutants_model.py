"""bptt.model where mutation testing found no test (docs/mutation.md, issue 17).

What a user of :class:`bptt.model.Sequential` sees and the model's own tests left unchecked: the
exact configuration of every layer type (and that it rebuilds the same layer, seed and dtype
included), the networks ``from_tmva`` builds for reshapes, flattens and GRUs (TMVA's reset gate
before the product unless field 7 says otherwise) and the seeds it draws for them, the defaults
of ``from_config``, the messages that name the function and the argument, predictions in batches
(a stateful network carries its state from one batch into the next, which makes the batch size
visible), the 0.5 threshold of ``predict``, and ``evaluate``'s numbers for each loss. Expected
values are written by hand or computed here with NumPy and scikit-learn from the network's raw
outputs; networks are a few units wide so the file runs in about a second.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bptt.layers import GRU, LSTM, RNN, Dense, Flatten, Layer, Reshape
from bptt.layers.dropout import Dropout
from bptt.losses import MeanSquaredError
from bptt.model import Sequential, layer_config, layer_from_config
from bptt.tmva import TMVAOptionError


def sequences(n, T=5, F=3, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(n, T, F)).astype(dtype)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ── layer_config / layer_from_config

CONFIGS = [
    (
        lambda: RNN(2, 3, return_sequences=True, stateful=True, activation="relu", kernel_initializer="glorot_normal",
                    recurrent_initializer="gaussian", bias_initializer="uniform"),
        {"type": "RNN", "input_size": 2, "hidden_size": 3, "return_sequences": True, "stateful": True,
         "activation": "relu", "kernel_initializer": "glorot_normal", "recurrent_initializer": "gaussian",
         "bias_initializer": "uniform"},
    ),
    (
        lambda: GRU(2, 3, reset_after=False),
        {"type": "GRU", "input_size": 2, "hidden_size": 3, "return_sequences": False, "stateful": False,
         "reset_after": False, "kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
         "bias_initializer": "zeros"},
    ),
    (
        lambda: LSTM(4, 1, kernel_initializer="uniform"),
        {"type": "LSTM", "input_size": 4, "hidden_size": 1, "return_sequences": False, "stateful": False,
         "kernel_initializer": "uniform", "recurrent_initializer": "orthogonal", "bias_initializer": "zeros"},
    ),
    (
        lambda: Dense(4, 2, activation="sigmoid", kernel_initializer="gaussian"),
        {"type": "Dense", "in_features": 4, "out_features": 2, "activation": "sigmoid", "kernel_initializer": "gaussian"},
    ),
    (lambda: Flatten(), {"type": "Flatten"}),
    (lambda: Reshape((3, -1)), {"type": "Reshape", "shape": [3, -1]}),
    (lambda: Dropout(0.25), {"type": "Dropout", "rate": 0.25}),
]


@pytest.mark.parametrize("make,expected", CONFIGS, ids=[c[1]["type"] for c in CONFIGS])
def test_layer_config_is_the_whole_description_and_rebuilds_it(make, expected):
    cfg = layer_config(make())
    assert cfg == expected
    assert json.loads(json.dumps(cfg)) == cfg  # JSON-serialisable as it is
    assert layer_config(layer_from_config(cfg)) == expected


def test_layer_config_refuses_a_layer_it_cannot_rebuild():
    class Custom(Layer):
        pass

    message = ("layer_config: unsupported layer type Custom; expected one of LSTM, GRU, RNN, Dense, Flatten, "
               "Reshape, Dropout")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        layer_config(Custom())


@pytest.mark.parametrize("cls,cfg", [
    (LSTM, {"type": "LSTM", "input_size": 3, "hidden_size": 2}),
    (GRU, {"type": "GRU", "input_size": 3, "hidden_size": 2}),
    (RNN, {"type": "RNN", "input_size": 3, "hidden_size": 2}),
    (Dense, {"type": "Dense", "in_features": 3, "out_features": 2}),
])
def test_layer_from_config_passes_seed_and_dtype_on(cls, cfg):
    layer = layer_from_config(cfg, dtype=np.float64, seed=5)
    sizes = [v for k, v in cfg.items() if k != "type"]
    same = cls(*sizes, dtype=np.float64, seed=5)
    assert type(layer) is cls and layer.dtype == np.float64
    assert layer.params.keys() == same.params.keys()
    for k, p in same.params.items():
        np.testing.assert_array_equal(layer.params[k], p)
        assert layer.params[k].dtype == np.float64
    other = layer_from_config(cfg, dtype=np.float64, seed=6)
    assert not np.array_equal(other.params["W"], same.params["W"])


@pytest.mark.parametrize("cfg", [{"type": "Flatten"}, {"type": "Reshape", "shape": [5, 3]}])
def test_layer_from_config_shape_layers_take_the_dtype(cfg):
    assert layer_from_config(cfg, dtype=np.float64).dtype == np.float64
    assert layer_from_config(cfg).dtype == np.float32


def test_layer_from_config_reshape_and_dropout():
    reshape = layer_from_config({"type": "Reshape", "shape": [5, 3]})
    assert isinstance(reshape, Reshape) and reshape.shape == (5, 3)
    assert reshape.forward(np.arange(30.0).reshape(2, 15), training=False).shape == (2, 5, 3)
    drop = layer_from_config({"type": "Dropout", "rate": 0.5}, seed=3)
    assert isinstance(drop, Dropout) and drop.rate == 0.5 and drop.seed == 3
    # the same masks as a Dropout seeded with 3: the seed reaches the layer's generator
    x = np.ones((4, 8))
    np.testing.assert_array_equal(drop.forward(x), Dropout(0.5, seed=3).forward(x))


@pytest.mark.parametrize("cfg,message", [
    ({}, "layer_from_config: unknown layer type None"),
    ({"type": "Conv"}, "layer_from_config: unknown layer type 'Conv'"),
    ({"type": "LSTM", "input_size": 3}, "layer_from_config: bad configuration for a LSTM layer ('hidden_size'); got {}"),
    ({"type": "Dense", "in_features": 3}, "layer_from_config: bad configuration for a Dense layer ('out_features'); got {}"),
    ({"type": "Reshape"}, "layer_from_config: bad configuration for a Reshape layer ('shape'); got {}"),
    ({"type": "Dropout"}, "layer_from_config: bad configuration for a Dropout layer ('rate'); got {}"),
])
def test_layer_from_config_names_what_is_wrong(cfg, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        layer_from_config(cfg)


def test_layer_from_config_names_an_unexpected_option():
    cfg = {"type": "GRU", "input_size": 3, "hidden_size": 2, "units": 4}
    with pytest.raises(ValueError, match=r"^layer_from_config: bad configuration for a GRU layer \(.*'units'\); got \{'units': 4\}$"):
        layer_from_config(cfg)


# ── Sequential: construction, forward, parameters


def test_a_new_model_has_no_history_and_no_standardizer():
    model = Sequential([Dense(2, 1)])
    assert model.history is None and model.standardizer is None
    assert model.loss.name == "bce"


def test_a_loss_object_is_used_as_given():
    loss = MeanSquaredError()
    model = Sequential([Dense(2, 1)], loss=loss)
    assert model.loss is loss


def test_forward_is_inference_unless_asked():
    dense = Dense(4, 2, seed=0)
    model = Sequential([Dropout(0.5, seed=0), dense])
    x = np.ones((3, 4), np.float32)
    expected = x @ dense.params["W"] + dense.params["b"]  # the dropout is the identity at inference
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-6)
    assert not np.allclose(model.forward(x, training=True), expected)


def test_set_parameters_names_a_wrong_shape():
    model = Sequential([Dense(3, 4)])
    message = "Sequential.set_parameters: 0.W must have shape (3, 4) (the parameter's shape); got (4, 3)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.set_parameters({"0.W": np.zeros((4, 3)), "0.b": np.zeros(4)})


# ── config / from_config


def test_config_is_the_documented_record():
    model = Sequential([Flatten(dtype=np.float64), Dense(6, 2, activation="tanh", dtype=np.float64)], loss="mse")
    assert model.config() == {
        "format": "bptt-model",
        "version": 1,
        "loss": "mse",
        "dtype": "float64",
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "in_features": 6, "out_features": 2, "activation": "tanh",
             "kernel_initializer": "glorot_uniform"},
        ],
        "standardizer": None,
        "inputs": None,
    }
    model.inputs = [{"name": "x", "size": 6}]
    assert model.config()["inputs"] == [{"name": "x", "size": 6}]
    rebuilt = Sequential.from_config(model.config())
    assert rebuilt.dtype == np.float64 and all(layer.dtype == np.float64 for layer in rebuilt.layers)
    assert rebuilt.config() == model.config()


def test_from_config_defaults_to_float32_and_bce():
    model = Sequential.from_config({"format": "bptt-model", "layers": [{"type": "Dense", "in_features": 2, "out_features": 1}]})
    assert model.dtype == np.float32 and model.layers[0].params["W"].dtype == np.float32
    assert model.loss.name == "bce"


@pytest.mark.parametrize("config", [{"format": "keras"}, {}, [{"format": "bptt-model"}], None])
def test_from_config_refuses_what_is_not_a_model_configuration(config):
    message = "Sequential.from_config: not a bptt model configuration (format != 'bptt-model')"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Sequential.from_config(config)


# ── from_tmva


def test_from_tmva_seed_defaults_to_0_and_a_tuple_input_layout_is_time_features():
    layout = "LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR"
    default = Sequential.from_tmva(layout, "5|3").parameters()
    seeded = Sequential.from_tmva(layout, (5, 3), seed=0).parameters()
    assert default.keys() == seeded.keys()
    for k, p in default.items():
        np.testing.assert_array_equal(p, seeded[k])


def test_from_tmva_checks_the_input_layout_against_the_first_layer():
    with pytest.raises(TMVAOptionError, match=r"field 3 \(input size\) is 3 but InputLayout=5\|4 gives 4 features"):
        Sequential.from_tmva("LSTM|4|3|5,LINEAR", "5|4")
    with pytest.raises(TMVAOptionError, match=r"field 4 \(time steps\) is 5 but InputLayout=6\|3 gives 6 time steps"):
        Sequential.from_tmva("LSTM|4|3|5,LINEAR", (6, 3))


def test_from_tmva_draws_one_seed_per_layer_in_order():
    # Each layer is seeded with the next draw of numpy's default_rng(seed).integers(2**31); a
    # dropout layer draws its seed before the layer it precedes.
    model = Sequential.from_tmva("GRU|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR", "5|3", seed=11,
                                 dropout=[0.5, 0.0, 0.25])
    rng = np.random.default_rng(11)
    d0, s0, s1, d2, s2, s3 = (int(rng.integers(2**31)) for _ in range(6))
    drop0, gru, flat, drop2, dense, out = model.layers
    assert (type(drop0), drop0.seed, drop0.rate) == (Dropout, d0, 0.5)
    assert (type(drop2), drop2.seed, drop2.rate) == (Dropout, d2, 0.25)
    assert isinstance(flat, Flatten)
    expected = [
        (gru, GRU(3, 4, return_sequences=True, reset_after=False, seed=s0)),
        (dense, Dense(20, 6, activation="tanh", seed=s2)),
        (out, Dense(6, 1, seed=s3)),
    ]
    for layer, same in expected:
        for k, p in same.params.items():
            np.testing.assert_array_equal(layer.params[k], p)
    del s1  # drawn for the flatten, which has no parameters


@pytest.mark.parametrize("token,reset_after", [("GRU|4|3|5", False), ("GRU|4|3|5|0|0|0", False), ("GRU|4|3|5|0|0|1", True)])
def test_from_tmva_gru_resets_before_the_product_unless_field_7_says_after(token, reset_after):
    gru = Sequential.from_tmva(f"{token},LINEAR", "5|3").layers[0]
    assert isinstance(gru, GRU) and gru.reset_after is reset_after


def _run(model, n=4):
    X = sequences(n)
    out = model.predict_proba(X)
    assert out.shape == (n,) and np.all((out > 0) & (out < 1))


@pytest.mark.parametrize("layout,sizes", [
    # the last state only, then flattened: H values
    ("LSTM|4|3|5|0|0,RESHAPE|FLAT,LINEAR", [(4, 1)]),
    # a dense layer on a sequence works per step: 5 steps × 6 units flattened
    ("DENSE|6|TANH,RESHAPE|FLAT,LINEAR", [(3, 6), (30, 1)]),
    # a dense layer on flat values, flattened again: still 6 values
    ("RESHAPE|FLAT,DENSE|6|TANH,RESHAPE|FLAT,LINEAR", [(15, 6), (6, 1)]),
])
def test_from_tmva_sizes_follow_the_shape_flowing_through(layout, sizes):
    model = Sequential.from_tmva(layout, "5|3")
    assert [layer.params["W"].shape for layer in model.layers if "W" in layer.params][-len(sizes):] == sizes
    _run(model)


def test_from_tmva_reshape_drops_the_sizes_of_1():
    model = Sequential.from_tmva("RESHAPE|3|5|1,LSTM|4|5|3,LINEAR", "5|3", dtype=np.float64)
    reshape, lstm, out = model.layers
    assert isinstance(reshape, Reshape) and reshape.shape == (3, 5) and reshape.dtype == np.float64
    assert (lstm.input_size, lstm.hidden_size) == (5, 4)
    X = sequences(4, dtype=np.float64)
    h = lstm.forward(X.reshape(4, 3, 5), training=False)
    np.testing.assert_allclose(model.decision_function(X), (h @ out.params["W"] + out.params["b"])[:, 0])


def test_from_tmva_reshape_to_all_ones_is_one_value():
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|1|TANH,RESHAPE|1|1|1,LINEAR", "5|3")
    flat, dense, reshape, out = model.layers
    assert isinstance(reshape, Reshape) and reshape.shape == (1,) and out.params["W"].shape == (1, 1)
    _run(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_tmva_shape_layers_take_the_dtype(dtype):
    model = Sequential.from_tmva("RESHAPE|FLAT,RESHAPE|1|5|3,RESHAPE|FLAT,LINEAR", "5|3", dtype=dtype)
    assert [(type(layer), layer.dtype) for layer in model.layers] == [
        (Flatten, dtype), (Reshape, dtype), (Flatten, dtype), (Dense, dtype)]


def test_from_tmva_refuses_a_recurrent_layer_after_a_flatten():
    # check_layout follows the shape through the layers: after RESHAPE|FLAT an event is one vector,
    # which no recurrent layer can take (it used to be built and to fail in its forward pass).
    message = ("Layout token 2 'LSTM|4|15|5': an LSTM needs a sequence (time steps × features), but token 1 "
               "'RESHAPE|FLAT' gives one vector of 15 values per event, not a sequence; put RESHAPE|FLAT after "
               "the last recurrent layer")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Sequential.from_tmva("RESHAPE|FLAT,LSTM|4|15|5,LINEAR", "5|3")


# ── prediction


def test_prepare_names_the_function_and_x():
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "5|3")
    message = ("Sequential.decision_function: X must have dtype float32 or float64; got int64; convert it with "
               "X.astype(np.float32) (or float64 for verification)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.predict(np.zeros((2, 5, 3), np.int64))
    message = "Sequential.decision_function: X must be a 2-D array of shape (n, T, F); got shape (3,)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.predict_proba(np.zeros(3, np.float32))


def test_float64_data_is_converted_to_the_models_float32():
    model = Sequential.from_tmva("LSTM|4|3|5,LINEAR", "5|3", loss="mse")
    X = sequences(6, dtype=np.float64)
    out = model.predict(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(X.astype(np.float32)))


def test_predict_bce_at_the_threshold_is_signal():
    # every parameter 0: the logit is 0, the probability exactly 0.5, which is signal (as accuracy's threshold)
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "5|3")
    model.set_parameters({k: np.zeros_like(p) for k, p in model.parameters().items()})
    X = sequences(3)
    np.testing.assert_array_equal(model.predict_proba(X), [0.5, 0.5, 0.5])
    labels = model.predict(X)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [1, 1, 1])


def test_softmax_predictions_are_the_softmax_and_its_argmax():
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|4|IDENTITY", "5|3", loss="softmax_ce", seed=2)
    X = sequences(20)
    z = model.decision_function(X)
    assert z.shape == (20, 4)
    np.testing.assert_allclose(model.predict_proba(X), softmax(z), rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), np.argmax(z, axis=1))
    assert len(set(model.predict(X).tolist())) > 1  # not all one class: the argmax is over classes


def test_softmax_predictions_of_a_sequence_are_per_step():
    model = Sequential.from_tmva("LSTM|4|3|5|0|1,DENSE|3|IDENTITY", "5|3", loss="softmax_ce", seed=2)
    X = sequences(2)
    z = model.decision_function(X)
    assert z.shape == (2, 5, 3)
    np.testing.assert_allclose(model.predict_proba(X), softmax(z), rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), np.argmax(z, axis=2))


def test_mse_predicts_the_outputs_and_has_no_probabilities():
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|2|IDENTITY", "5|3", loss="mse", seed=2)
    X = sequences(3)
    layer = model.layers[1]
    expected = X.reshape(3, 15) @ layer.params["W"] + layer.params["b"]
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5)
    message = "Sequential.predict_proba: the loss 'mse' gives no probabilities; use predict"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.predict_proba(X)


# A stateful network carries its state from one batch to the next: what the predictions are
# depends on where the batches start, which makes the batch size observable.
def _stateful(loss="bce"):
    out = "LINEAR" if loss != "softmax_ce" else "DENSE|3|IDENTITY"
    return Sequential.from_tmva(f"RNN|2|1|1|1|0,{out}", "1|1", loss=loss, seed=4)


def _in_batches(model, X, batch_size):
    model.reset_states()
    out = np.concatenate([model.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    model.reset_states()
    return out


def _bce(z, y):
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


@pytest.mark.parametrize("batch_size", [2, None])  # None: the default, 4096 sequences
@pytest.mark.parametrize("method", ["decision_function", "predict_proba", "predict", "evaluate"])
def test_predictions_are_made_batch_by_batch(method, batch_size):
    model = _stateful()
    n, size = (6, 2) if batch_size else (8192, 4096)
    # seed 5: with batches of 2, two of the six labels differ from those of one batch of 6
    X = np.random.default_rng(5).normal(size=(n, 1, 1)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.float32)
    z = _in_batches(model, X, size)[:, 0]
    fresh = model.forward(X[size : 2 * size])[:, 0]  # the second batch without the state carried into it
    model.reset_states()
    assert not np.allclose(z[size : 2 * size], fresh)
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    args = (X, y) if method == "evaluate" else (X,)
    kwargs = {"batch_size": batch_size} if batch_size else {}
    got = getattr(model, method)(*args, **kwargs)
    if method == "decision_function":
        np.testing.assert_allclose(got, z, rtol=1e-6)
    elif method == "predict_proba":
        np.testing.assert_allclose(got, p, rtol=1e-5)
    elif method == "predict":
        np.testing.assert_array_equal(got, (p >= 0.5).astype(np.int64))
    else:
        assert got["loss"] == pytest.approx(_bce(z.astype(np.float64), y), rel=1e-5)


@pytest.mark.parametrize("loss", ["softmax_ce", "mse"])
def test_predict_is_made_batch_by_batch_for_every_loss(loss):
    model = _stateful(loss)
    X = np.random.default_rng(1).normal(size=(6, 1, 1)).astype(np.float32)
    z = _in_batches(model, X, 2)
    expected = np.argmax(z, axis=1) if loss == "softmax_ce" else z
    assert not np.array_equal(expected, model.predict(X, batch_size=6))  # one batch: nothing carried
    model.reset_states()
    np.testing.assert_allclose(model.predict(X, batch_size=2), expected, rtol=1e-6)


# ── evaluate


def test_evaluate_bce():
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|4|TANH,LINEAR", "5|3", seed=3)
    X = sequences(40)
    y = np.random.default_rng(5).integers(0, 2, 40)
    z = model.decision_function(X).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    result = model.evaluate(X, y)
    assert set(result) == {"loss", "roc_auc", "accuracy"}
    assert result["loss"] == pytest.approx(_bce(z, y), rel=1e-5)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y))


def test_evaluate_mse_compares_each_output_with_its_target():
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "5|3", loss="mse", seed=3)
    X = sequences(6)
    y = np.arange(6, dtype=np.float64)
    z = model.decision_function(X)
    assert z.shape == (6, 1)
    result = model.evaluate(X, y)
    assert set(result) == {"loss"}
    assert result["loss"] == pytest.approx(np.mean((z[:, 0].astype(np.float64) - y) ** 2), rel=1e-5)


def _softmax_case():
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|3|IDENTITY", "5|3", loss="softmax_ce", seed=2)
    X = sequences(12)
    z = model.decision_function(X).astype(np.float64)
    labels = np.array([0, 2, 2, 1, 0, 2, 0, 1, 0, 0, 1, 1])
    return model, X, z, labels


def test_evaluate_softmax_with_class_indices():
    model, X, z, labels = _softmax_case()
    logp = np.log(softmax(z))
    result = model.evaluate(X, labels)
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(-np.mean(logp[np.arange(12), labels]), rel=1e-5)
    accuracy = np.mean(np.argmax(z, axis=1) == labels)
    assert accuracy == 7 / 12  # neither 1/2 nor the 5/12 share of class 0
    assert result["accuracy"] == pytest.approx(accuracy)


def test_evaluate_softmax_with_class_probabilities():
    # The loss takes class probabilities (n, C) as targets; the accuracy then counts the most
    # probable class as the label (it used to fail: the (n,) predictions against the n·C values).
    model, X, z, labels = _softmax_case()
    probabilities = np.full((12, 3), 0.1)
    probabilities[np.arange(12), labels] = 0.8
    logp = np.log(softmax(z))
    result = model.evaluate(X, probabilities)
    assert result["loss"] == pytest.approx(-np.sum(probabilities * logp) / 12, rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(np.argmax(z, axis=1) == labels))
    one = model.evaluate(X[:1], probabilities[:1])
    assert one["accuracy"] == float(np.argmax(z[0]) == labels[0])


def test_evaluate_rounds_integer_targets_once_to_the_outputs_float32():
    # 2**62 + 2**38 + 1 lies just above the midpoint of two float32 neighbours, 2**62 and
    # 2**62 + 2**39: rounded once it becomes the upper one; through float64 first (which drops
    # the +1) it would be the exact midpoint and round to the even 2**62.
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "5|3", loss="mse", seed=3)
    y = np.full(2, 2**62 + 2**38 + 1, dtype=np.int64)
    # the outputs (about 1) vanish next to the target: the squared error is (2**62 + 2**39)**2 in
    # float32, 2**124 + 2**102 (the 2**78 term is below float32's resolution there)
    assert model.evaluate(sequences(2), y)["loss"] == 2.0**124 + 2.0**102
