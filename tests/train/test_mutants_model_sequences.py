"""bptt.model after issue 20, where mutation testing found no test among the module's own: the
bidirectional layers' records, lengths through ``Sequential.forward`` (stacked, after a layer that
returns one vector, in inference), the function names in the errors of predict, decision_function
and evaluate, per-step labels 0 at padded steps, ``reset_states`` passed on by ``predict``, event
weights and several bce units in ``evaluate``, a VarTransform's record, a float64 model's dtype and
``from_tmva``'s weight initialisation (docs/mutation.md). Expected values come from the layers called
by hand or are written out."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import metrics
from bptt.layers import GRU, LSTM, RNN, Dense, Reshape
from bptt.losses import sigmoid_probability
from bptt.model import Sequential, layer_config, layer_from_config
from bptt.transforms import VarTransform

L = np.array([4, 1, 3, 2])


def x_of(n=4, T=4, F=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, T, F)).astype(np.float32)


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_a_bidirectional_layer_is_recorded_as_one(cls):
    cfg = layer_config(cls(3, 4, bidirectional=True, return_sequences=True))
    assert cfg["bidirectional"] is True
    assert layer_from_config(cfg).bidirectional
    assert "bidirectional" not in layer_config(cls(3, 4))  # one-direction records stay as they were


def test_forward_gives_lengths_to_every_recurrent_layer_on_the_time_axis():
    model = Sequential([LSTM(3, 5, return_sequences=True, seed=0), GRU(5, 2, return_sequences=True, seed=1)])
    x = x_of()
    expected = model.layers[1].forward(model.layers[0].forward(x, lengths=L), lengths=L)
    np.testing.assert_array_equal(model.forward(x, lengths=L), expected)
    assert not np.array_equal(model.forward(x), expected)  # the lengths change the outputs


def test_after_a_layer_returning_one_vector_the_lengths_are_dropped():
    model = Sequential([LSTM(3, 4, seed=0), Reshape((4, 1)), RNN(1, 2, return_sequences=True, seed=1)])
    x = x_of()
    h = model.layers[0].forward(x, lengths=L)
    expected = model.layers[2].forward(h.reshape(4, 4, 1))  # its time axis is the 4 units: no lengths
    np.testing.assert_array_equal(model.forward(x, lengths=L), expected)


def test_forward_in_inference_keeps_no_cache_with_lengths():
    model = Sequential([LSTM(3, 4, return_sequences=True, seed=0), Dense(4, 1, seed=1)])
    model.forward(x_of(), training=False, lengths=L)
    assert model.layers[0]._cache is None
    model.forward(x_of(), training=True, lengths=L)
    assert model.layers[0]._cache is not None


def test_lengths_without_a_recurrent_layer_are_refused_by_name():
    model = Sequential([Dense(3, 1)])
    message = "Sequential.forward: lengths were given but the network has no recurrent layer to use them; pass lengths=None"
    with pytest.raises(ValueError) as info:
        model.forward(x_of(), lengths=L)
    assert str(info.value) == message


def per_step_softmax():
    """Per-step logits whose class 2 wins wherever the recurrent output is 0 (the padded steps)."""
    model = Sequential([RNN(3, 4, return_sequences=True, seed=0), Dense(4, 3, seed=1)], loss="softmax_ce")
    model.layers[1].params["b"][...] = [0.0, 0.0, 50.0]
    model.layers[1].params["W"][...] = 0.0
    model.layers[1].params["W"][:, 0] = 200.0
    return model


def test_per_step_labels_are_0_at_padded_steps():
    model = per_step_softmax()
    x = np.abs(x_of()) + 1.0  # positive inputs: the RNN's units positive, class 0 ahead at real steps
    logits = model.decision_function(x, lengths=L)
    labels = model.predict(x, lengths=L)
    real = np.arange(4)[None, :] < L[:, None]
    np.testing.assert_array_equal(labels[real], np.argmax(logits, axis=-1)[real])
    assert (labels[~real] == 0).all() and labels.shape == (4, 4)
    unpadded = model.predict(x)  # without lengths every step is real
    np.testing.assert_array_equal(unpadded, np.argmax(model.decision_function(x), axis=-1))


@pytest.mark.parametrize("call", ["predict", "decision_function", "evaluate"])
def test_bad_lengths_are_refused_in_the_name_of_decision_function(call):
    model = per_step_softmax()
    args = (x_of(), np.zeros((4, 4), np.int64)) if call == "evaluate" else (x_of(),)
    with pytest.raises(ValueError, match=r"^Sequential\.decision_function: lengths"):
        getattr(model, call)(*args, lengths=[4, 1, 3, 9])


def test_predict_names_decision_function_for_a_bad_batch_size():
    with pytest.raises(ValueError, match=r"^Sequential\.decision_function: batch_size"):
        per_step_softmax().predict(x_of(), batch_size=0)


def test_evaluate_names_itself_for_bad_targets():
    with pytest.raises(ValueError, match=r"^Sequential\.evaluate: "):
        per_step_softmax().evaluate(x_of(), np.zeros((4, 5), np.int64), lengths=L)


def stateful_mse():
    return Sequential([LSTM(3, 4, stateful=True, seed=0), Dense(4, 1, seed=1)], loss="mse")


def test_predict_resets_states_by_default_and_passes_reset_states_on():
    model, x = stateful_mse(), x_of()
    first = model.predict(x)
    np.testing.assert_array_equal(model.predict(x), first)  # reset before each call by default
    carried = model.predict(x, reset_states=False)  # continues from the state the last call left
    assert not np.allclose(carried, first)
    np.testing.assert_array_equal(model.predict(x, reset_states=True), first)


def test_evaluate_weighs_each_unit_of_several_bce_units_by_its_event():
    model = Sequential([LSTM(3, 4, seed=0), Dense(4, 2, seed=1)])  # two bce units per event
    x = x_of(n=6, seed=2)
    y = np.array([[0, 1], [1, 1], [0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    p = sigmoid_probability(model.decision_function(x)).reshape(-1)
    w_units = np.repeat(w, 2)
    result = model.evaluate(x, y, sample_weight=w)
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc(y.reshape(-1), p, sample_weight=w_units))
    assert result["accuracy"] == pytest.approx(metrics.accuracy(y.reshape(-1), p, sample_weight=w_units))


def test_a_var_transform_is_recorded_and_no_standardizer():
    model = Sequential([LSTM(3, 4, seed=0), Dense(4, 1, seed=1)])
    model.input_transform = VarTransform("N").fit(x_of(n=8))
    cfg = model.config()
    assert cfg["var_transform"] == model.input_transform.to_dict() and cfg["standardizer"] is None
    assert "var_transform" not in Sequential([Dense(3, 1)]).config()


def test_a_float64_model_is_rebuilt_in_float64():
    cfg = Sequential([LSTM(3, 4, dtype=np.float64), Dense(4, 1, dtype=np.float64)]).config()
    assert cfg["dtype"] == "float64"
    assert all(p.dtype == np.float64 for p in Sequential.from_config(cfg).parameters().values())


def test_from_tmva_applies_the_weight_initialization():
    zero = Sequential.from_tmva("LSTM|2|3|2,RESHAPE|FLAT,LINEAR", "2|3", weight_initialization="ZERO")
    assert all(not p.any() for p in zero.parameters().values())
    default = Sequential.from_tmva("LSTM|2|3|2,RESHAPE|FLAT,LINEAR", "2|3")
    assert any(p.any() for p in default.parameters().values())


def test_a_jagged_branch_may_hold_sequences_of_one_step():
    cfg = Sequential([Dense(4, 1)]).config()
    cfg["inputs"] = [{"name": "trk_pt", "size": 1, "jagged": True, "max_length": 1}]
    assert Sequential.from_config(cfg).inputs[0]["max_length"] == 1


def test_per_sequence_labels_with_lengths_are_the_argmax():
    """One label per sequence (no per-step outputs): the lengths choose each sequence's last real
    step, and no padding is applied to the labels."""
    model = Sequential([LSTM(3, 4, seed=0), Dense(4, 3, seed=1)], loss="softmax_ce")
    x = x_of(seed=3)
    labels = model.predict(x, lengths=L)
    assert labels.shape == (4,)
    np.testing.assert_array_equal(labels, np.argmax(model.decision_function(x, lengths=L), axis=-1))
