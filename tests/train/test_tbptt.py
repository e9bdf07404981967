"""Truncated BPTT (bptt.tbptt, issue 20 point 5) against outside oracles.

* A hand-written TBPTT: the windows written out row by row with the functional API
  (``lstm_forward``/``lstm_backward``, GRU, RNN; one sequence at a time, so no ``lengths``), each
  window's recomputed part and its segment as two calls chained by ``h0``/``c0`` forward and by
  ``dh_last``/``dc_last`` backward, a per-sequence loss entering as ``dh_last``, the Dense head, the
  loss gradients written by hand, and plain-NumPy SGD; weights after a batch compared in float64.
* ``k1 = k2 = T``: one update equal to the ordinary full-BPTT step (Sequential.forward/backward).
* PyTorch: each window's gradient with the state at the window's start detached.
"""

import numpy as np
import pytest
import torch

from tbptt_oracle import CELLS, _compare, _data, _model, _oracle_params, _sgd, hand_tbptt

from bptt.layers import GRU, LSTM, Dense, Dropout, Flatten
from bptt.model import Sequential
from bptt.tbptt import check_tbptt, run_batch, windows

CASES = [
    # kinds, per_step, loss, k1, k2, lengths (None: all T), weights
    (("LSTM",), True, "mse", 3, 3, [8, 1, 5, 3, 7], None),
    (("LSTM",), True, "mse", 2, 5, [8, 1, 5, 3, 7], None),
    (("LSTM",), True, "bce", 3, 20, [8, 2, 4, 6, 8], [1.0, 2.0, 0.5, 1.5, 1.0]),  # k2 beyond T
    (("GRU",), True, "bce", 3, 4, [8, 1, 4, 6, 2], None),
    (("GRU",), True, "mse", 4, 4, None, [0.5, 1.0, 2.0, 1.0, 3.0]),
    (("RNN",), True, "mse", 2, 2, None, None),
    (("RNN",), True, "mse", 3, 5, [7, 1, 2, 3, 6], None),
    (("LSTM", "LSTM"), True, "mse", 2, 3, [8, 1, 5, 3, 7], None),
    (("GRU", "LSTM"), True, "bce", 3, 3, [5, 8, 1, 6, 4], [2.0, 1.0, 1.0, 0.5, 1.0]),
    (("LSTM",), False, "bce", 3, 3, [8, 1, 5, 3, 7], None),  # per-sequence targets
    (("LSTM",), False, "mse", 2, 5, None, None),
    (("GRU", "LSTM"), False, "bce", 3, 3, [8, 2, 5, 3, 7], [1.0, 2.0, 1.0, 0.5, 1.0]),
    (("RNN", "GRU"), False, "mse", 2, 3, [6, 1, 4, 6, 3], None),
]


@pytest.mark.parametrize("kinds,per_step,loss,k1,k2,lengths,weights", CASES)
def test_one_batch_equals_the_windows_chained_by_hand(kinds, per_step, loss, k1, k2, lengths, weights):
    B, T, I, K = 5, 8, 3, 2 if loss == "mse" else 1
    model = _model(kinds, per_step, loss, K=K)
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, per_step, loss, seed=len(kinds) + k1 + k2)
    L = np.array(lengths) if lengths is not None else np.full(B, T)
    w = np.ones(B) if weights is None else np.array(weights)
    W_total = float(np.sum(w * L)) if per_step else float(np.sum(w))
    want_loss, want_updates, _ = hand_tbptt(rec, dense, loss, per_step, x, y, w, L, k1, k2, W_total)
    log = []
    got = run_batch(model, x, y, None if weights is None else w, None if lengths is None else L, k1=k1, k2=k2,
                    update=_sgd(model, log))
    assert len(log) == want_updates
    assert got == pytest.approx(want_loss, rel=1e-12)
    _compare(model, rec, dense)


def test_stateful_layers_start_from_the_carried_state_and_carry_each_rows_final_state():
    B, T, I, K = 4, 7, 3, 1
    model = _model(("LSTM", "GRU"), True, "mse", K=K, stateful=True)
    rec, dense = _oracle_params(model)
    L, w = np.array([7, 2, 5, 4]), np.ones(4)
    finals = None
    for batch in range(2):  # the second batch continues the first's states
        x, y = _data(B, T, I, K, True, "mse", seed=batch)
        hand_loss, _, finals = hand_tbptt(rec, dense, "mse", True, x, y, w, L, 3, 5, float(L.sum()), init=finals)
        run_batch(model, x, y, lengths=L, k1=3, k2=5, update=_sgd(model))
        _compare(model, rec, dense)
        carried = [l.get_state() for l in model.layers if type(l).__name__ in CELLS]
        for mine, hand in zip(carried, finals):
            assert sorted(mine) == sorted(hand)
            for k in mine:
                np.testing.assert_allclose(mine[k], hand[k], rtol=0, atol=1e-12)


def test_non_stateful_layers_keep_no_state_and_each_batch_starts_from_zeros():
    model = _model(("LSTM",), True, "mse")
    x, y = _data(3, 6, 3, 1, True, "mse", seed=0)
    run_batch(model, x, y, k1=2, k2=2, update=_sgd(model))
    assert model.layers[0].state is None and model.layers[0].stateful is False


# ── k1 = k2 = T is the ordinary step


def _full_step_model(per_step):
    """A Dense and a Dropout acting per step before the recurrent layers too."""
    layers = [Dense(3, 3, "tanh", dtype=np.float64, seed=1, bias_initializer="glorot_uniform"), Dropout(0.0),
              LSTM(3, 4, return_sequences=True, dtype=np.float64, seed=2, bias_initializer="glorot_uniform"),
              GRU(4, 4, return_sequences=per_step, dtype=np.float64, seed=3, bias_initializer="glorot_uniform"),
              Dense(4, 1, dtype=np.float64, seed=4)]
    return Sequential(layers, loss="bce")


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("per_step", [True, False])
def test_k1_equal_k2_equal_T_is_the_full_bptt_step(per_step, weighted):
    B, T, I, K = 6, 9, 3, 1
    L = np.array([9, 1, 4, 9, 6, 2])
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.5, 1.0]) if weighted else None
    x, y = _data(B, T, I, K, per_step, "bce", seed=4)
    a, b = _full_step_model(per_step), _full_step_model(per_step)
    # fit's kind of divisor with weights: the batch's share of the training set's weight; without, the terms
    W_total = 6.0 if weighted else None
    loss_a = run_batch(a, x, y, w, L, k1=T, k2=T, weight_total=W_total, update=_sgd(a))
    out = b.forward(x, training=True, lengths=L)  # the ordinary step, written with the model's own passes
    if per_step:
        mask = np.arange(T)[None, :] < L[:, None]
        if weighted:
            loss_b, g = b.loss.value_and_grad(out[mask], y[mask], np.repeat(w, L), weight_total=W_total)
        else:
            loss_b, g = b.loss.value_and_grad(out[mask], y[mask])
        dout = np.zeros_like(out)
        dout[mask] = g
    elif weighted:
        loss_b, dout = b.loss.value_and_grad(out, y, w, weight_total=W_total)
    else:
        loss_b, dout = b.loss.value_and_grad(out, y)
    b.backward(dout)
    _sgd(b)(loss_b)
    assert loss_a == pytest.approx(loss_b, rel=1e-13)
    for k, p in a.parameters().items():
        if weighted:
            np.testing.assert_allclose(p, b.parameters()[k], rtol=0, atol=1e-13, err_msg=k)
        else:  # the same calls as fit's ordinary step: the same numbers
            np.testing.assert_array_equal(p, b.parameters()[k], err_msg=k)


def test_float32_follows_float64():
    x, y = _data(4, 9, 3, 1, True, "bce", seed=6)
    L = np.array([9, 4, 1, 7])
    runs = []
    for dtype in (np.float64, np.float32):
        model = _model(("LSTM", "GRU"), True, "bce")
        for layer in model.layers:
            layer.astype(dtype)
        run_batch(model, x.astype(dtype), y.astype(dtype), lengths=L, k1=2, k2=5, update=_sgd(model))
        runs.append(model.parameters())
    for k, p in runs[0].items():
        assert runs[1][k].dtype == np.float32
        np.testing.assert_allclose(runs[1][k], p, rtol=0, atol=1e-5, err_msg=k)


def test_dropout_of_rate_zero_between_layers_changes_nothing():
    x, y = _data(4, 7, 3, 1, True, "mse", seed=2)
    L = np.array([7, 3, 1, 5])
    a, b = _model(("LSTM", "RNN"), True, "mse"), _model(("LSTM", "RNN"), True, "mse", dropout=0.0)
    la = run_batch(a, x, y, lengths=L, k1=2, k2=4, update=_sgd(a))
    lb = run_batch(b, x, y, lengths=L, k1=2, k2=4, update=_sgd(b))
    assert la == lb
    pb = [p for k, p in b.parameters().items()]
    for p, q in zip(a.parameters().values(), pb):
        np.testing.assert_array_equal(p, q)


# ── PyTorch: each window's gradient, the state at its start detached


def test_each_window_gradient_equals_torch_with_the_state_detached_at_the_window_start():
    torch.set_default_dtype(torch.float64)
    B, T, I, H, K = 5, 10, 3, 4, 2
    k1, k2 = 3, 5
    L = np.array([10, 2, 7, 4, 9])
    w = np.array([1.0, 0.5, 2.0, 1.0, 1.5])
    model = Sequential([LSTM(I, H, return_sequences=True, dtype=np.float64, seed=1, bias_initializer="glorot_uniform"),
                        Dense(H, K, dtype=np.float64, seed=2, bias_initializer="glorot_uniform")], loss="mse")
    x, y = _data(B, T, I, K, True, "mse", seed=9)
    seen = []
    run_batch(model, x, y, w, L, k1=k1, k2=k2,
              update=lambda loss: seen.append((loss, {k: g.copy() for k, g in model.gradients().items()})))
    lstm = torch.nn.LSTM(I, H, batch_first=True)
    lin = torch.nn.Linear(H, K)
    p = model.parameters()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(p["0.W"].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p["0.U"].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p["0.b"]))
        lstm.bias_hh_l0.zero_()
        lin.weight.copy_(torch.from_numpy(p["1.W"].T.copy()))
        lin.bias.copy_(torch.from_numpy(p["1.b"]))
    W_total = float(np.sum(w * L))
    ups = [3, 6, 9, 10]
    assert len(seen) == len(ups)
    prev = 0
    for (loss, grads), u in zip(seen, ups):
        s = max(0, prev - (k2 - k1))
        rows = np.flatnonzero(L > prev)
        xt = torch.from_numpy(x[rows])
        with torch.no_grad():
            if s > 0:
                _, (h0, c0) = lstm(xt[:, :s])  # every row here is real up to prev >= s
            else:
                h0 = c0 = torch.zeros(1, len(rows), H)
        lens = np.minimum(L[rows], u) - s
        for prm in list(lstm.parameters()) + list(lin.parameters()):
            prm.grad = None
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt[:, s:u], torch.from_numpy(lens), batch_first=True,
                                                         enforce_sorted=False)
        out, _ = lstm(packed, (h0.detach(), c0.detach()))
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=u - s)
        o = lin(out)
        t = np.arange(u - s)[None, :]
        mask = torch.from_numpy((t >= prev - s) & (t < lens[:, None]))
        per_elem = (o - torch.from_numpy(y[rows, s:u])) ** 2
        factor = torch.from_numpy(w[rows] / W_total / K)[:, None, None]
        value = (per_elem * factor * mask[..., None]).sum()
        value.backward()
        assert loss == pytest.approx(value.item(), rel=1e-12)
        want = {"0.W": lstm.weight_ih_l0.grad.T, "0.U": lstm.weight_hh_l0.grad.T, "0.b": lstm.bias_ih_l0.grad,
                "1.W": lin.weight.grad.T, "1.b": lin.bias.grad}
        for k, g in want.items():
            np.testing.assert_allclose(grads[k], g.numpy(), rtol=0, atol=1e-10, err_msg=f"{k} at update {u}")
        prev = u


# ── the plan, the checks


def test_windows_written_out():
    assert windows(10, 4, 6) == [(0, 0, 4), (2, 4, 8), (6, 8, 10)]
    assert windows(7, 2, 2) == [(0, 0, 2), (2, 2, 4), (4, 4, 6), (6, 6, 7)]  # k1 = k2: the segments
    assert windows(5, 5, 5) == [(0, 0, 5)]
    assert windows(3, 5, 9) == [(0, 0, 3)]
    assert windows(7, 3, 5) == [(0, 0, 3), (1, 3, 6), (4, 6, 7)]
    assert windows(9, 2, 7) == [(0, 0, 2), (0, 2, 4), (0, 4, 6), (1, 6, 8), (3, 8, 9)]


def test_per_sequence_targets_update_only_where_a_sequence_ends():
    model = _model(("GRU",), False, "mse")
    x, y = _data(3, 9, 3, 1, False, "mse", seed=1)
    calls = []
    run_batch(model, x, y, k1=2, k2=3, update=calls.append)  # no lengths: one loss, in the last segment
    assert len(calls) == 1
    calls = []
    run_batch(model, x, y, lengths=np.array([2, 9, 1]), k1=2, k2=2, update=calls.append)  # segments 1 and 5
    assert len(calls) == 2


def test_tbptt_values_refused_with_what_was_expected():
    model = _model(("LSTM",), True, "mse")
    assert check_tbptt(model, (2, 5)) == (2, 5)
    assert check_tbptt(model, 4) == (4, 4)
    assert check_tbptt(model, [np.int64(1), 3]) == (1, 3)
    with pytest.raises(ValueError, match=r"k2 >= k1; got tbptt=\(5, 2\).*drop the losses of the first 3 steps"):
        check_tbptt(model, (5, 2))
    with pytest.raises(ValueError, match=r"k1 >= 1.*got tbptt=\(0, 3\)"):
        check_tbptt(model, (0, 3))
    for bad in [(2.0, 3), (True, 2), (1, 2, 3), "2,3", None]:
        with pytest.raises(ValueError, match=r"tbptt must be a pair of integers \(k1, k2\) with 1 <= k1 <= k2"):
            check_tbptt(model, bad)


def test_networks_where_time_does_not_pass_step_by_step_are_refused():
    tutorial = Sequential.from_tmva("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", "10|30", seed=0)
    refused = r"Flatten \(layer 1\) comes after a recurrent layer returning sequences.*RESHAPE\|FLAT"
    with pytest.raises(ValueError, match=refused):
        check_tbptt(tutorial, (2, 2))
    with pytest.raises(ValueError, match="tbptt needs a recurrent layer"):
        check_tbptt(Sequential([Flatten(), Dense(6, 1)]), (2, 2))
    with pytest.raises(ValueError, match=r"Flatten \(layer 0\) comes before the last recurrent layer"):
        check_tbptt(Sequential([Flatten(), LSTM(3, 2)]), (2, 2))
    mid = Sequential([LSTM(3, 2), GRU(2, 2)])
    with pytest.raises(ValueError, match=r"LSTM \(layer 0\) has return_sequences=False"):
        check_tbptt(mid, (2, 2))
    bi = _model(("LSTM",), True, "mse")
    bi.layers[0].bidirectional = True
    with pytest.raises(ValueError, match="bidirectional layer, LSTM"):
        check_tbptt(bi, (2, 2))
    # after a last output (return_sequences=False) any layer acts on the vector
    assert check_tbptt(Sequential([LSTM(3, 2), Flatten(), Dense(2, 1)]), (2, 3)) == (2, 3)


def test_run_batch_arguments_checked():
    model = _model(("LSTM",), True, "mse")
    x, y = _data(3, 5, 3, 1, True, "mse", seed=0)
    up = _sgd(model)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\] = \[1, 5\]; got values from 0 to 5"):
        run_batch(model, x, y, lengths=np.array([0, 5, 2]), k1=2, k2=2, update=up)
    with pytest.raises(ValueError, match=r"lengths must be an integer array of shape \(B,\) = \(3,\)"):
        run_batch(model, x, y, lengths=np.array([1.0, 5.0, 2.0]), k1=2, k2=2, update=up)
    with pytest.raises(ValueError, match=r"yb must have the leading axes \(B, T, \.\.\.\) = \(3, 5\)"):
        run_batch(model, x, y[:, :4], k1=2, k2=2, update=up)
    with pytest.raises(ValueError, match="weight_total must be a finite positive number"):
        run_batch(model, x, y, k1=2, k2=2, weight_total=0.0, update=up)
    with pytest.raises(ValueError, match="update must be a callable"):
        run_batch(model, x, y, k1=2, k2=2, update=None)
    with pytest.raises(ValueError, match="k2 >= k1"):
        run_batch(model, x, y, k1=3, k2=2, update=up)
