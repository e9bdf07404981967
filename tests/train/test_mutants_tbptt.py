"""Tests written against surviving mutants of bptt/tbptt.py (tools/mutation.py, full profile):
three stacked recurrent layers, per-step targets without their K axis, the carried states of
stateful layers when the batch has fewer rows than the streams or an update fails, and the
messages' function names. Oracle: the hand-written TBPTT of tests/tbptt_oracle.py."""

import numpy as np
import pytest

from bptt.layers import Dense
from bptt.model import Sequential
from bptt.tbptt import check_tbptt, run_batch

from tbptt_oracle import CELLS, _compare, _data, _model, _oracle_params, _sgd, hand_tbptt


def test_three_stacked_recurrent_layers_equal_the_windows_chained_by_hand():
    """Each recurrent layer starts every window from its own stored state (layer k's, k = 0, 1, 2)."""
    B, T, I, K = 4, 7, 3, 1
    model = _model(("LSTM", "GRU", "RNN"), True, "mse", K=K)
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, True, "mse", seed=11)
    L, w = np.array([7, 3, 6, 2]), np.ones(B)
    want_loss, want_updates, _ = hand_tbptt(rec, dense, "mse", True, x, y, w, L, 2, 4, float(L.sum()))
    log = []
    got = run_batch(model, x, y, lengths=L, k1=2, k2=4, update=_sgd(model, log))
    assert len(log) == want_updates and got == pytest.approx(want_loss, rel=1e-12)
    _compare(model, rec, dense)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_per_step_targets_without_their_one_output_axis(loss):
    """y of shape (B, T) for a network with one output per step is y[..., None]."""
    B, T, I = 4, 6, 3
    x, y = _data(B, T, I, 1, True, loss, seed=3)
    L = np.array([6, 2, 5, 3])
    results = []
    for targets in (y, y[..., 0]):
        model = _model(("GRU",), True, loss)
        log = []
        total = run_batch(model, x, targets, lengths=L, k1=2, k2=3, update=_sgd(model, log))
        results.append((total, log, model.parameters()))
    (t0, log0, p0), (t1, log1, p1) = results
    assert t1 == t0 and log1 == log0
    for k in p0:
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)


def _states(model):
    return [layer.get_state() for layer in model.layers if type(layer).__name__ in CELLS]


def test_streams_beyond_the_batch_keep_their_state_and_rows_continue_theirs():
    """A stateful layer carrying 6 streams, a batch of 4 rows: rows 0-3 start from streams 0-3 and
    leave their final states there; streams 4 and 5 are unchanged."""
    B, T, I, K, H = 4, 6, 3, 1, 4
    model = _model(("LSTM",), True, "mse", K=K, H=H, stateful=True)
    rng = np.random.default_rng(7)
    carried = {"h0": rng.normal(size=(6, H)), "c0": rng.normal(size=(6, H))}
    model.layers[0].set_state(carried)
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, True, "mse", seed=4)
    L = np.array([6, 2, 5, 3])
    init = [{n: a[:B] for n, a in carried.items()}]
    _, _, finals = hand_tbptt(rec, dense, "mse", True, x, y, np.ones(B), L, 2, 3, float(L.sum()), init=init)
    run_batch(model, x, y, lengths=L, k1=2, k2=3, update=_sgd(model))
    _compare(model, rec, dense)
    state = model.layers[0].get_state()
    for n in ("h0", "c0"):
        np.testing.assert_allclose(state[n][:B], finals[0][n], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(state[n][B:], carried[n][B:])


def test_a_failed_update_leaves_the_layers_as_they_were():
    model = _model(("LSTM", "GRU"), True, "mse", stateful=True)
    model.layers[0].set_state({"h0": np.full((3, 4), 0.5), "c0": np.full((3, 4), -0.5)})
    before = _states(model)
    x, y = _data(3, 5, 3, 1, True, "mse", seed=0)

    def failing(window_loss):
        raise RuntimeError("optimizer failed")

    with pytest.raises(RuntimeError, match="optimizer failed"):
        run_batch(model, x, y, k1=2, k2=2, update=failing)
    after = _states(model)
    assert [sorted(s) for s in after] == [sorted(s) for s in before]
    for a, b in zip(after, before):
        for n in a:
            np.testing.assert_array_equal(a[n], b[n])
    assert [layer.stateful for layer in model.layers if type(layer).__name__ in CELLS] == [True, True]


def test_a_layer_that_is_not_stateful_starts_each_batch_from_zeros_whatever_state_it_holds():
    B, T, I, K = 3, 5, 3, 1
    model = _model(("LSTM",), True, "mse", K=K)
    model.layers[0].state = {"h0": np.ones((B, 4)), "c0": np.ones((B, 4))}  # left over, not carried
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, True, "mse", seed=2)
    L = np.full(B, T)
    want, _, _ = hand_tbptt(rec, dense, "mse", True, x, y, np.ones(B), L, 2, 2, float(L.sum()))
    assert run_batch(model, x, y, k1=2, k2=2, update=_sgd(model)) == pytest.approx(want, rel=1e-12)
    _compare(model, rec, dense)


def test_weight_total_divides_every_update():
    """weight_total = 0.5 (below 1) is accepted: each window's loss is Σ w ℓ / 0.5."""
    B, T, I, K = 3, 5, 3, 1
    model = _model(("RNN",), True, "mse", K=K)
    rec, dense = _oracle_params(model)
    x, y = _data(B, T, I, K, True, "mse", seed=5)
    L = np.array([5, 2, 4])
    want, _, _ = hand_tbptt(rec, dense, "mse", True, x, y, np.ones(B), L, 2, 3, 0.5)
    assert run_batch(model, x, y, lengths=L, k1=2, k2=3, weight_total=0.5, update=_sgd(model)) == pytest.approx(
        want, rel=1e-12)
    _compare(model, rec, dense)


def test_messages_name_the_function_and_the_argument():
    model = _model(("LSTM",), True, "mse")
    x, y = _data(3, 5, 3, 1, True, "mse", seed=0)
    up = _sgd(model)
    with pytest.raises(ValueError, match=r"^tbptt: xb must be a 3-D array of shape \(B, T, F\); got shape \(5, 3\)$"):
        run_batch(model, x[0], y, k1=2, k2=2, update=up)
    with pytest.raises(ValueError, match=r"^tbptt: lengths must lie in \[1, T\]"):
        run_batch(model, x, y, lengths=np.array([0, 5, 2]), k1=2, k2=2, update=up)
    with pytest.raises(ValueError, match=r"^tbptt: sample_weight"):
        run_batch(model, x, y, np.ones(2), k1=2, k2=2, update=up)
    # negative event weights are TMVA's; a batch whose weights sum to 0 has no divisor
    with pytest.raises(ValueError, match=r"^tbptt: the event weights wb sum to 0\.0 over the batch's real steps.*"
                                         r"pass weight_total"):
        run_batch(model, x, y, np.array([1.0, -2.0, 1.0]), k1=2, k2=2, update=up)
    assert np.isfinite(run_batch(model, x, y, np.array([1.0, -0.5, 1.0]), k1=2, k2=2, update=up))
    # small weights are fine: here they sum to 0.75 over the 15 real steps
    assert np.isfinite(run_batch(model, x, y, np.full(3, 0.05), k1=2, k2=2, update=up))
    seq = _model(("LSTM",), False, "mse")  # per-sequence targets: the weights sum over the sequences
    with pytest.raises(ValueError, match=r"^tbptt: the event weights wb sum to 0\.0 over the batch's sequences, "):
        run_batch(seq, x, y[:, 0], np.array([1.0, -1.0, 0.0]), k1=2, k2=2, update=_sgd(seq))
    for bad in (0, 0.0, -1.0, float("inf"), float("nan"), "1", True):
        with pytest.raises(ValueError, match=r"^tbptt: weight_total must be a finite positive number.*got"):
            run_batch(model, x, y, k1=2, k2=2, weight_total=bad, update=up)
    last = _model(("LSTM",), False, "mse")  # per-sequence outputs (B, K)
    with pytest.raises(ValueError, match=r"^tbptt: yb must have the leading axes \(B, \.\.\.\) with B = 3 "):
        run_batch(last, x, y[:2, 0], k1=2, k2=2, update=_sgd(last))
    dense_only = Sequential([Dense(3, 1)], loss="mse")
    with pytest.raises(ValueError, match=r"^fit: tbptt needs a recurrent layer.*the network has Dense: train it"):
        check_tbptt(dense_only, (2, 2))
    two = Sequential([Dense(3, 2), Dense(2, 1)], loss="mse")
    with pytest.raises(ValueError, match=r"the network has Dense, Dense: train it without tbptt"):
        check_tbptt(two, (2, 2))


@pytest.mark.parametrize("k2", [2, 4])
def test_each_step_runs_forward_once_per_window_and_once_in_the_main_pass(k2):
    """k1 = k2: every window is its segment and the main pass is the windows' own forward (each
    step computed once: docs of bptt.tbptt, "Dropout"); k2 > k1: the main pass runs each segment
    once (but for the first, whose window is the segment, and the last) and each window its steps
again. Counted as the rows × steps each forward call of the
    recurrent layer gets, against the windows of bptt.tbptt.windows written out here."""
    B, T, I, K, k1 = 4, 7, 3, 1, 2
    model = _model(("GRU",), True, "mse", K=K)
    layer = model.layers[0]
    calls = []
    forward = layer.forward

    def counting(x, *args, **kwargs):
        calls.append(x.shape[0] * x.shape[1])
        return forward(x, *args, **kwargs)

    layer.forward = counting
    x, y = _data(B, T, I, K, True, "mse", seed=1)
    L = np.array([7, 3, 6, 2])
    run_batch(model, x, y, lengths=L, k1=k1, k2=k2, update=_sgd(model))
    want = 0
    for a in range(0, int(L.max()), k1):
        b, s = min(a + k1, int(L.max())), max(0, a - (k2 - k1))
        rows = int(np.sum(L > a))
        want += rows * (b - s)  # the window
        if s < a and b < int(L.max()):  # the window is not the segment, and a later window starts at b - (k2 - k1)
            want += rows * (b - a)  # the main pass over the segment
    assert sum(calls) == want
