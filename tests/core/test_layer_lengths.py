"""Layers and Sequential pass ``lengths`` to the recurrent kernels (PyTorch packed semantics)."""

import numpy as np
import pytest
import torch

from bptt.layers import GRU, LSTM, RNN, Dense, Flatten
from bptt.model import Sequential

B, T, I, H = 5, 7, 3, 4
LENGTHS = np.array([7, 1, 3, 5, 2])


def _torch_twin(layer):
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[type(layer).__name__]
    net = cls(layer.input_size, layer.hidden_size, batch_first=True).double()
    G = layer.params["W"].shape[1] // layer.hidden_size
    with torch.no_grad():
        W, U = layer.params["W"], layer.params["U"]
        net.weight_ih_l0.copy_(torch.from_numpy(W.T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(U.T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(layer.params["b"].copy()))
        b_u = layer.params.get("b_u", np.zeros(G * layer.hidden_size))
        net.bias_hh_l0.copy_(torch.from_numpy(b_u.copy()))
    return net


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_last_output_and_carried_state_are_at_each_sequence_last_real_step(cls):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, I))
    layer = cls(I, H, dtype=np.float64, seed=2, stateful=True, bias_initializer="glorot_uniform")
    y = layer.forward(x, lengths=LENGTHS)
    net = _torch_twin(layer)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(LENGTHS),
                                                     batch_first=True, enforce_sorted=False)
    _, state = net(packed)
    h_n = (state[0] if cls is LSTM else state)[0].detach().numpy()
    np.testing.assert_allclose(y, h_n, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.state["h0"], h_n, rtol=0, atol=1e-12)
    if cls is LSTM:
        np.testing.assert_allclose(layer.state["c0"], state[1][0].detach().numpy(), rtol=0, atol=1e-12)
    # the gradient of the last output enters at the last real step: nothing reaches padded steps
    dx = layer.backward(np.ones_like(y))
    for b, n in enumerate(LENGTHS):
        assert not dx[b, n:].any()
        assert np.abs(dx[b, n - 1]).sum() > 0


def test_sequential_gives_lengths_to_recurrent_layers_and_zero_outputs_at_padded_steps():
    model = Sequential([LSTM(I, H, return_sequences=True, dtype=np.float64, seed=0),
                        GRU(H, H, dtype=np.float64, seed=1), Dense(H, 1, dtype=np.float64, seed=2)], loss="mse")
    x = np.random.default_rng(0).normal(size=(B, T, I))
    out = model.forward(x, lengths=LENGTHS)
    # truncating each sequence at its length gives the same output row by row
    for b, n in enumerate(LENGTHS):
        alone = model.forward(x[b : b + 1, :n])
        np.testing.assert_allclose(out[b], alone[0], rtol=0, atol=1e-12)


def test_lengths_refused_where_they_cannot_mean_time_steps():
    with pytest.raises(ValueError, match="Flatten layer comes before the first recurrent layer"):
        Sequential([Flatten(), Dense(T * I, 1)]).forward(np.zeros((B, T, I), np.float32), lengths=LENGTHS)
    with pytest.raises(ValueError, match="no recurrent layer"):
        Sequential([Dense(I, 1)]).forward(np.zeros((B, T, I), np.float32), lengths=LENGTHS)
    with pytest.raises(ValueError, match="lengths"):
        Sequential([LSTM(I, H)]).forward(np.zeros((B, T, I), np.float32), lengths=np.array([0, 1, 2, 3, 4]))
