"""bptt.trace with lengths: the flow of a ragged batch equals each sequence's flow cut to its
length, padded steps are shown as such, and the norms are not diluted by padded rows."""

import numpy as np
import pytest

from bptt.layers import GRU, LSTM, RNN, Dense
from bptt.model import Sequential
from bptt.trace import GATE_NAMES, format_table, gradient_flow, model_flow

B, T, I, H = 4, 5, 3, 3
LENGTHS = np.array([5, 2, 1, 3])
CASES = [("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False}), ("rnn", {})]


def make_args(cell, seed=0):
    rng = np.random.default_rng(seed)
    G = len(GATE_NAMES[cell])
    args = {"x": rng.normal(size=(B, T, I)), "W": rng.normal(size=(I, G * H)) * 0.6,
            "U": rng.normal(size=(H, G * H)) * 0.6, "b": rng.normal(size=G * H) * 0.1,
            "h0": rng.normal(size=(B, H)) * 0.5}
    if cell == "gru":
        args["b_u"] = rng.normal(size=G * H) * 0.1
    if cell == "lstm":
        args["c0"] = rng.normal(size=(B, H)) * 0.5
    return args


def row(args, b, n):
    """Sequence b alone, cut to its n real steps."""
    return {k: (a[b : b + 1, :n] if k == "x" else a[b : b + 1] if k in ("h0", "c0") else a) for k, a in args.items()}


@pytest.mark.parametrize("cell, options", CASES)
def test_the_flow_of_a_ragged_batch_is_each_sequence_cut_to_its_length(cell, options):
    args = make_args(cell)
    rng = np.random.default_rng(1)
    dh, dh_last = rng.normal(size=(B, T, H)), rng.normal(size=(B, H))
    dc_last = rng.normal(size=(B, H)) if cell == "lstm" else None
    flow = gradient_flow(cell, args, dh, dh_last=dh_last, dc_last=dc_last, lengths=LENGTHS, **options)
    for b, n in enumerate(LENGTHS):
        alone = gradient_flow(cell, row(args, b, n), dh[b : b + 1, :n], dh_last=dh_last[b : b + 1],
                              dc_last=None if dc_last is None else dc_last[b : b + 1], **options)
        for name in ("dz", "dh", "gates", "h") + (("dc", "c") if cell == "lstm" else ()):
            np.testing.assert_allclose(getattr(flow, name)[b, :n], getattr(alone, name)[0], rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name}, sequence {b}")
            if name in ("dz", "dh", "dc"):
                assert not getattr(flow, name)[b, n:].any(), f"{name} at the padded steps of sequence {b}"
    # the norms: over the sequences real at each step, scaled to the batch
    real = np.arange(T)[None, :] < LENGTHS[:, None]
    counts = real.sum(axis=0)
    dh_sq = np.array([sum(float(np.sum(flow.dh[b, t] ** 2)) for b in range(B) if real[b, t]) for t in range(T)])
    np.testing.assert_allclose(flow.dh_norms, np.sqrt(dh_sq * B / counts), rtol=1e-12)
    G = len(GATE_NAMES[cell])
    dz = flow.dz.reshape(B, T, G, H)
    gate_sq = np.array([[sum(float(np.sum(dz[b, t, g] ** 2)) for b in range(B) if real[b, t]) for g in range(G)]
                        for t in range(T)])
    np.testing.assert_allclose(flow.gate_norms, np.sqrt(gate_sq * B / counts[:, None]), rtol=1e-12)


def test_equal_lengths_give_the_plain_norms_and_a_step_no_sequence_reaches_is_nan():
    args = make_args("lstm")
    dh = np.random.default_rng(2).normal(size=(B, T, H))
    plain = gradient_flow("lstm", args, dh)
    full = gradient_flow("lstm", args, dh, lengths=np.full(B, T))
    np.testing.assert_allclose(full.dh_norms, plain.dh_norms, rtol=1e-12)
    np.testing.assert_allclose(full.gate_norms, plain.gate_norms, rtol=1e-12)
    short = gradient_flow("lstm", args, dh, lengths=np.array([3, 2, 1, 3]))
    assert np.isnan(short.dh_norms[3:]).all() and np.isfinite(short.dh_norms[:3]).all()


def test_the_table_shows_the_padded_steps_as_such():
    flow = gradient_flow("rnn", make_args("rnn"), np.ones((B, T, H)), lengths=LENGTHS)
    text = format_table(flow, batch=1)
    assert "sequence 1 of the batch: 2 real steps of 5, steps 2-4 are padding (pad)" in text
    lines = text.splitlines()
    forward = lines[lines.index("Forward: gate values per step") + 2 :][:T]
    assert [line.split()[0] for line in forward] == ["0", "1", "2", "3", "4"]
    assert all("pad" not in line for line in forward[:2]) and all(line.split()[1:] == ["pad"] * 6 for line in forward[2:])
    norms = lines[lines.index(next(line for line in lines if line.startswith("Norms per step"))) + 1 :]
    assert norms[0].split() == ["t", "|dz_a|", "|dh|", "real"]
    assert [line.split()[-1] for line in norms[1:]] == ["1", "1", "2", "3", "4"]  # steps 4 … 0
    wide = gradient_flow("lstm", {**make_args("lstm"), "x": np.zeros((B, T + 1, I))}, lengths=np.array([2, 2, 1, 3]),
                         dh_last=np.ones((B, H)))
    rows = format_table(wide).splitlines()
    assert rows[-1].split()[-1] == "4" and rows[-6].split()[1:] == ["pad"] * 6 + ["0"]  # step 5: nobody


def test_model_flow_with_lengths_is_each_sequence_traced_alone():
    """Per-step targets over the real steps: sequence b's deltas in the batch are its deltas alone,
    scaled by (its real steps) / (the batch's real steps), the two losses' normalisations."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(B, T, I))
    y = (rng.random((B, T)) < 0.5).astype(float)
    model = Sequential([GRU(I, H, return_sequences=True, dtype=np.float64, seed=4), Dense(H, 1, dtype=np.float64, seed=5)])
    garbage = np.where((np.arange(T)[None, :] < LENGTHS[:, None])[..., None], X, 1e9)
    flow = model_flow(model, garbage, np.where(np.arange(T)[None, :] < LENGTHS[:, None], y, 7.0), lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        alone = model_flow(model, X[b : b + 1, :n], y[b : b + 1, :n])
        np.testing.assert_allclose(flow.dz[b, :n] * LENGTHS.sum(), alone.dz[0] * n, rtol=1e-10, atol=1e-13)
    last = Sequential([LSTM(I, H, dtype=np.float64, seed=6), Dense(H, 1, dtype=np.float64, seed=7)])
    flow = model_flow(last, X, y[:, 0], lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        alone = model_flow(last, X[b : b + 1, :n], y[b : b + 1, 0])
        np.testing.assert_allclose(flow.dz[b, :n] * B, alone.dz[0], rtol=1e-10, atol=1e-13)
        assert not flow.dz[b, n:].any()


def test_a_bidirectional_layer_is_refused_with_what_to_do():
    from bptt.trace import layer_flow

    layer = RNN(I, H, bidirectional=True, dtype=np.float64)
    with pytest.raises(ValueError, match=r"layer_flow: a bidirectional RNN has two directions; trace one direction"):
        layer_flow(layer, np.zeros((B, T, I)), np.zeros((B, 2 * H)))
