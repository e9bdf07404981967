"""Layers: gradient checks of every layer and option, stateful semantics, and layer-level errors."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import functional as F
from bptt.gradcheck import check_layer
from bptt.layers import GRU, LSTM, RNN, Dense, Flatten, Reshape

TOL = 1e-6

RECURRENT = [
    (LSTM, {}),
    (GRU, {"reset_after": True}),
    (GRU, {"reset_after": False}),
    (RNN, {"activation": "tanh"}),
    (RNN, {"activation": "relu"}),
    (RNN, {"activation": "sigmoid"}),
    (RNN, {"activation": "identity"}),
]
RID = [f"{c.__name__}-{'-'.join(map(str, o.values())) or 'default'}" for c, o in RECURRENT]


def x_of(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("cls,options", RECURRENT, ids=RID)
def test_recurrent_layer_gradients(cls, options, return_sequences):
    layer = cls(3, 4, return_sequences=return_sequences, seed=1, **options)
    layer.params["b"][...] = np.random.default_rng(2).normal(size=layer.params["b"].shape) * 0.3
    report = check_layer(layer, x_of((2, 5, 3)))
    expected = {"x", *layer.params, *[s for s in layer._states]}
    assert set(report.errors) == expected
    report.assert_ok(TOL)


@pytest.mark.parametrize("activation", Dense.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)], ids=["2d", "per-step"])
def test_dense_gradients(activation, shape):
    layer = Dense(3, 6, activation=activation, seed=0)
    layer.params["b"][...] = 0.1
    check_layer(layer, x_of(shape, seed=3)).assert_ok(TOL)


@pytest.mark.parametrize("layer", [Flatten(), Reshape((10, 3)), Reshape((-1, 5))], ids=["flatten", "reshape", "reshape-1"])
def test_shape_layers(layer):
    x = x_of((4, 5, 6))
    y = layer.forward(x)
    assert y.shape[0] == 4 and y.size == x.size
    np.testing.assert_array_equal(layer.backward(y), x)
    check_layer(layer, x).assert_ok(TOL)


def test_layer_outputs_match_functional():
    layer = LSTM(3, 4, return_sequences=True, dtype=np.float64, seed=0)
    x = x_of((2, 5, 3))
    h, _ = F.lstm_forward(x, layer.params["W"], layer.params["U"], layer.params["b"])
    np.testing.assert_array_equal(layer.forward(x), h)
    layer.return_sequences = False
    np.testing.assert_array_equal(layer.forward(x), h[:, -1])


def test_float32_default_and_outputs_keep_dtype():
    layer = GRU(3, 4, seed=0)
    assert all(p.dtype == np.float32 for p in layer.params.values())
    y = layer.forward(x_of((2, 5, 3), dtype=np.float32))
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_same_seed_same_weights():
    a, b = LSTM(5, 7, seed=42), LSTM(5, 7, seed=42)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    U = LSTM(5, 7, seed=0, dtype=np.float64).params["U"]
    for g in range(4):  # orthogonal per gate block
        np.testing.assert_allclose(U[:, g * 7 : (g + 1) * 7] @ U[:, g * 7 : (g + 1) * 7].T, np.eye(7), atol=1e-12)


# ─────────────────────────────────────────────────────────────── stateful (TMVA rememberState)


@pytest.mark.parametrize("cls,options", RECURRENT[:4], ids=RID[:4])
def test_stateful_carries_the_state_into_the_next_batch(cls, options):
    layer = cls(3, 4, stateful=True, return_sequences=True, dtype=np.float64, seed=0, **options)
    x1, x2 = x_of((2, 6, 3), 1), x_of((2, 6, 3), 2)
    y1 = layer.forward(x1)
    y2 = layer.forward(x2)
    # The same as running the concatenated sequence in one go.
    fresh = cls(3, 4, return_sequences=True, dtype=np.float64, seed=0, **options)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), fresh.forward(np.concatenate([x1, x2], axis=1)), rtol=1e-13)
    layer.reset_states()
    np.testing.assert_allclose(layer.forward(x2), fresh.forward(x2), rtol=1e-13)


@pytest.mark.parametrize("cls,options", RECURRENT[:4], ids=RID[:4])
def test_stateful_backward_uses_the_carried_state(cls, options):
    """Unlike TMVA, the backward of batch 2 differentiates the forward that really ran: from the
    state carried over from batch 1, not from zeros; and it returns the gradient w.r.t. that state."""
    layer = cls(3, 4, stateful=True, seed=0, **options)
    layer.forward(x_of((2, 6, 3), 1).astype(np.float32))
    carried = layer.get_state()
    assert all(np.abs(s).max() > 0.01 for s in carried.values())
    x2 = x_of((2, 6, 3), 2)
    report = check_layer(layer, x2)  # checks from the carried state, including d/d(carried state)
    assert set(report.errors) >= set(carried)
    report.assert_ok(TOL)
    # The gradients really depend on the carried state: from zeros they differ.
    zero_state = check_layer(layer, x2, initial_state={k: np.zeros_like(s) for k, s in carried.items()})
    assert np.abs(zero_state.analytic["W"] - report.analytic["W"]).max() > 1e-4
    # And the layer itself reports the state gradients after backward.
    y = layer.forward(x2.astype(np.float32))
    layer.backward(np.ones_like(y))
    assert set(layer.state_grads) == {"d" + k for k in carried}


def test_stateful_batch_size_change_continues_the_streams():
    """Row k of a batch continues row k of the batch before (stream k): a smaller batch continues
    the first streams and leaves the others' state alone; a larger one starts its extra rows from
    zeros. Oracle: the functional LSTM with h0/c0 carried by hand."""
    layer = LSTM(3, 4, stateful=True, seed=5, dtype=np.float64)
    W, U, b = (layer.params[k] for k in ("W", "U", "b"))
    x1, x2, x3 = x_of((4, 2, 3), seed=1), x_of((3, 2, 3), seed=2), x_of((6, 2, 3), seed=3)

    def run(x, h0, c0):
        h, cache = F.lstm_forward(x, W, U, b, h0=h0, c0=c0)
        return h[:, -1], cache.c[:, -1]

    h1, c1 = run(x1, None, None)
    np.testing.assert_allclose(layer.forward(x1), h1, rtol=1e-12)
    h2, c2 = run(x2, h1[:3], c1[:3])  # the partial batch continues streams 0-2
    np.testing.assert_allclose(layer.forward(x2), h2, rtol=1e-12)
    state = layer.get_state()
    np.testing.assert_allclose(state["h0"], np.r_[h2, h1[3:]], rtol=1e-12)  # stream 3 kept its state
    np.testing.assert_allclose(state["c0"], np.r_[c2, c1[3:]], rtol=1e-12)
    h0 = np.r_[state["h0"], np.zeros((2, 4))]  # streams 4 and 5 are new: zeros
    c0 = np.r_[state["c0"], np.zeros((2, 4))]
    h3, _ = run(x3, h0, c0)
    np.testing.assert_allclose(layer.forward(x3), h3, rtol=1e-12)
    layer.reset_states()
    np.testing.assert_allclose(layer.forward(x2), run(x2, None, None)[0], rtol=1e-12)


@pytest.mark.parametrize("cls", [GRU, RNN])
def test_stateful_partial_batch_for_one_state_cells(cls):
    layer = cls(2, 3, stateful=True, seed=4, dtype=np.float64)
    twin = cls(2, 3, seed=4, dtype=np.float64)  # the same weights, no carried state
    x1, x2 = x_of((5, 4, 2), seed=6), x_of((2, 4, 2), seed=7)
    h1 = layer.forward(x1)
    np.testing.assert_allclose(layer.forward(x2), twin.forward(x2, initial_state={"h0": h1[:2]}), rtol=1e-12)
    assert layer.get_state()["h0"].shape == (5, 3)
    np.testing.assert_array_equal(layer.get_state()["h0"][2:], h1[2:])


def test_inference_keeps_no_cache():
    layer = RNN(3, 4)
    layer.forward(x_of((2, 2, 3), dtype=np.float32), training=False)
    with pytest.raises(ValueError, match=r"RNN.backward: no forward pass to differentiate; call forward\(x, training=True\)"):
        layer.backward(np.ones((2, 4), np.float32))


@pytest.mark.parametrize("cls,options", RECURRENT[:4], ids=RID[:4])
def test_backward_spends_the_forward_cache(cls, options):
    """A recurrent layer's backward spends its forward's cache (keep_cache=False: the fast LSTM and GRU
    writes its gradients over the gate values), with the gradients of a kept cache; a second
    backward of the same forward asks for a new forward."""
    layer = cls(3, 4, return_sequences=True, seed=0, **options)
    x = x_of((32, 5, 3), dtype=np.float32)
    dy = x_of((32, 5, 4), seed=1, dtype=np.float32)
    layer.forward(x, training=True)
    cache = layer._cache
    fn = getattr(F, f"{cls.__name__.lower()}_backward")
    kept = fn(dy, cache)
    dx = layer.backward(dy)
    assert cache.spent_by == f"{cls.__name__.lower()}_backward" and layer._cache is None
    np.testing.assert_array_equal(dx, kept["dx"])
    for k in layer.params:
        np.testing.assert_array_equal(layer.grads[k], kept["d" + k], err_msg=k)
    with pytest.raises(ValueError, match=rf"{cls.__name__}.backward: no forward pass to differentiate"):
        layer.backward(dy)


# ─────────────────────────────────────────────────────────────────────────── layer-level errors


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: LSTM(0, 4), r"LSTM: input_size must be a positive integer; got 0"),
        (lambda: GRU(3, 2.5), r"GRU: hidden_size must be a positive integer; got 2.5"),
        (lambda: RNN(3, 4, activation="softplus"), r"RNN: activation must be one of 'tanh', 'sigmoid', 'relu', 'identity'; got 'softplus'"),
        (lambda: GRU(3, 4, reset_after="yes"), r"GRU: reset_after must be one of True, False; got 'yes'"),
        (lambda: Dense(3, 4, activation="elu"), r"Dense: activation must be one of .*'softmax'; got 'elu'"),
        (lambda: Dense(3, -1), r"Dense: out_features must be a positive integer; got -1"),
        (lambda: LSTM(3, 4, dtype=np.int32), r"LSTM: dtype must be one of .*float32.*float64.*; got dtype\('int32'\)"),
        (lambda: Reshape((0, 3)), r"Reshape: shape must be positive sizes with at most one -1; got \(0, 3\)"),
    ],
)
def test_constructor_errors(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_forward_and_backward_errors():
    lstm = LSTM(30, 10)
    with pytest.raises(ValueError, match=r"LSTM.forward: x must have shape \(B, T, 30\) \(input_size=30\); got \(100, 10, 20\)"):
        lstm.forward(np.zeros((100, 10, 20), np.float32))
    with pytest.raises(ValueError, match=r"LSTM.forward: x has dtype float64 but the layer's parameters are float32; convert x with x.astype\(np.float32\)"):
        lstm.forward(np.zeros((2, 3, 30)))
    with pytest.raises(ValueError, match=r"LSTM.forward: x contains NaN at index \(0, 1, 2\)"):
        x = np.zeros((2, 3, 30), np.float32)
        x[0, 1, 2] = np.nan
        lstm.forward(x)
    with pytest.raises(ValueError, match=r"LSTM.forward: initial_state keys must be among \('h0', 'c0'\); got \['h'\]"):
        lstm.forward(np.zeros((2, 3, 30), np.float32), initial_state={"h": np.zeros((2, 10), np.float32)})
    lstm.forward(np.zeros((2, 3, 30), np.float32))
    with pytest.raises(ValueError, match=r"LSTM.backward: dy must have shape \(2, 10\) \(the shape of the last forward output\); got \(2, 3, 10\)"):
        lstm.backward(np.zeros((2, 3, 10), np.float32))
    dense = Dense(4, 2)
    with pytest.raises(ValueError, match=r"Dense.forward: x must have last axis 4 \(in_features\); got shape \(3, 5\)"):
        dense.forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"Reshape.forward: x of shape \(2, 7\) has 7 values per sample, which cannot be reshaped to \(2, 3\)"):
        Reshape((2, 3)).forward(np.zeros((2, 7), np.float32))


def test_astype_converts_parameters_and_state():
    layer = LSTM(3, 4, stateful=True)
    layer.forward(x_of((2, 2, 3), dtype=np.float32))
    layer.astype(np.float64)
    assert all(p.dtype == np.float64 for p in layer.params.values())
    assert all(s.dtype == np.float64 for s in layer.get_state().values())
    assert layer.forward(x_of((2, 2, 3))).dtype == np.float64
