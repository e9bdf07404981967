"""Bidirectional recurrent layers (issue 20, point 2) against PyTorch's bidirectional modules.

The reference is torch's ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``bidirectional=True`` and
``num_layers=2`` (the second layer reads the first's ``2H`` outputs) over
``pack_padded_sequence(..., enforce_sorted=False)`` / ``pad_packed_sequence``; bptt's side is two
stacked ``bidirectional=True`` layers given the same ``lengths``. The weights are copied into the
torch module here by hand (``weight_ih_l{k}[_reverse] = W[_reverse].T``, …), not by
bptt.io.torch_weights, which tests/io/test_bidirectional_io.py checks on its own.

Compared, relative error ≤ 1e-10 in float64: every output step (top layer with
``return_sequences=True``, the loss ``Σ out ⊙ R`` with R non-zero at padded steps too) or the
final states ``[h_n fwd | h_n rev]`` (``return_sequences=False``), each layer's final states
``h_n``, the gradients of x, of every parameter of both directions of both layers and of the
initial states (``h0``, ``c0``, ``h0_reverse``, ``c0_reverse`` ↔ torch's ``h0[2k]``,
``h0[2k + 1]``); hypothesis draws the sizes and the length patterns (all equal, all one, one
long and the rest short, random; B = 1, T = 1, H = 1 included). float32 within 1e-5 of float64;
central differences ≤ 1e-6 for a bidirectional layer with lengths. Every test runs twice: the
two directions one after the other, and at the same time on bptt's two threads
(``settings.parallel_directions``; tests/core/test_parallel_directions.py checks where each runs).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings as hsettings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bptt.gradcheck import gradcheck, weighted_sum
from bptt.layers import GRU, LSTM, RNN, Dense
from bptt.model import Sequential, layer_config, layer_from_config, load_model
from bptt.settings import override

from core.test_lengths_parity import PATTERNS, lengths_for
from core.test_torch_parity import TOL, rel_err

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py

LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
SUFFIXES = ("", "_reverse")


@pytest.fixture(autouse=True, params=[False, True], ids=["one_after_the_other", "at_once"])
def directions(request):
    with override(parallel_directions=request.param):
        yield request.param


def bptt_stack(cell, I, H, dtype, seed, top_sequences):
    cls = LAYERS[cell]
    kw = dict(bidirectional=True, dtype=dtype, bias_initializer="glorot_uniform")
    return [cls(I, H, return_sequences=True, seed=seed, **kw),
            cls(2 * H, H, return_sequences=top_sequences, seed=seed + 1, **kw)]


def torch_twin(cell, layers, dtype=torch.float64):
    """The torch module (num_layers=len(layers), bidirectional) with the layers' parameters."""
    I, H = layers[0].input_size, layers[0].hidden_size
    m = MODULES[cell](I, H, num_layers=len(layers), bidirectional=True, batch_first=True, dtype=dtype)
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for sfx in SUFFIXES:
                p = {n: torch.from_numpy(np.array(layer.params[n + sfx], np.float64)).to(dtype)
                     for n in ("W", "U", "b") + (("b_u",) if cell == "gru" else ())}
                getattr(m, f"weight_ih_l{k}{sfx}").copy_(p["W"].T)
                getattr(m, f"weight_hh_l{k}{sfx}").copy_(p["U"].T)
                getattr(m, f"bias_ih_l{k}{sfx}").copy_(p["b"])
                getattr(m, f"bias_hh_l{k}{sfx}").copy_(p["b_u"] if cell == "gru" else torch.zeros_like(p["b"]))
    return m


def make_problem(cell, B, T, I, H, seed, dtype, pattern):
    rng = np.random.default_rng(seed)
    lengths = lengths_for(pattern, B, T, rng)
    return {
        "x": rng.normal(size=(B, T, I)).astype(dtype),
        "h0": (0.5 * rng.normal(size=(4, B, H))).astype(dtype),
        "c0": (0.5 * rng.normal(size=(4, B, H))).astype(dtype),
        "R": rng.normal(size=(B, T, 2 * H)).astype(dtype),  # non-zero at padded steps: must not count
        "Rh": rng.normal(size=(B, 2 * H)).astype(dtype),
        "lengths": lengths,
    }


def initial(cell, p, k):
    s = {"h0": p["h0"][2 * k], "h0_reverse": p["h0"][2 * k + 1]}
    if cell == "lstm":
        s.update(c0=p["c0"][2 * k], c0_reverse=p["c0"][2 * k + 1])
    return s


def run_torch(cell, layers, p, top_sequences, with_initial, dtype=torch.float64):
    m = torch_twin(cell, layers, dtype)
    x = torch.tensor(p["x"], dtype=dtype, requires_grad=True)
    h0 = torch.tensor(p["h0"], dtype=dtype, requires_grad=True)
    c0 = torch.tensor(p["c0"], dtype=dtype, requires_grad=True)
    T = p["x"].shape[1]
    packed = pack_padded_sequence(x, torch.from_numpy(p["lengths"]), batch_first=True, enforce_sorted=False)
    state = None if not with_initial else ((h0, c0) if cell == "lstm" else h0)
    out, st_ = m(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n = st_[0] if cell == "lstm" else st_
    if top_sequences:
        loss = (out * torch.from_numpy(p["R"]).to(dtype)).sum()
    else:
        loss = (torch.cat([h_n[2], h_n[3]], dim=1) * torch.from_numpy(p["Rh"]).to(dtype)).sum()
    loss.backward()
    res = {"out": out if top_sequences else torch.cat([h_n[2], h_n[3]], dim=1), "h_n": h_n, "dx": x.grad}
    for k in range(len(layers)):
        for sfx in SUFFIXES:
            res[f"{k}.W{sfx}"] = getattr(m, f"weight_ih_l{k}{sfx}").grad.T
            res[f"{k}.U{sfx}"] = getattr(m, f"weight_hh_l{k}{sfx}").grad.T
            res[f"{k}.b{sfx}"] = getattr(m, f"bias_ih_l{k}{sfx}").grad
            if cell == "gru":
                res[f"{k}.b_u{sfx}"] = getattr(m, f"bias_hh_l{k}{sfx}").grad
    if with_initial:
        res["dh0"] = h0.grad
        if cell == "lstm":
            res["dc0"] = c0.grad
    return {k: t.detach().numpy() for k, t in res.items()}


def run_bptt(cell, layers, p, top_sequences, with_initial):
    L = p["lengths"]
    y, h_n = p["x"], []
    for k, layer in enumerate(layers):
        last = copy.deepcopy(layer)  # the same layer returning its last output: [h_n fwd | h_n rev]
        last.return_sequences = False
        state = initial(cell, p, k) if with_initial else None
        both = last.forward(y, training=False, initial_state=state, lengths=L)
        H = layer.hidden_size
        h_n += [both[:, :H], both[:, H:]]
        y = layer.forward(y, initial_state=state, lengths=L)
    dy = p["R"] if top_sequences else p["Rh"]
    for layer in reversed(layers):
        dy = layer.backward(dy)
    res = {"out": y, "h_n": np.stack(h_n), "dx": dy}
    for k, layer in enumerate(layers):
        res.update({f"{k}.{n}": g for n, g in layer.grads.items()})
    if with_initial:
        res["dh0"] = np.stack([lay.state_grads[f"dh0{s}"] for lay in layers for s in SUFFIXES])
        if cell == "lstm":
            res["dc0"] = np.stack([lay.state_grads[f"dc0{s}"] for lay in layers for s in SUFFIXES])
    return res


def check(cell, B, T, I, H, seed, pattern, top_sequences, with_initial, drawn=True):
    p = make_problem(cell, B, T, I, H, seed, np.float64, pattern)
    if drawn:
        note(f"lengths {p['lengths'].tolist()}")
    layers = bptt_stack(cell, I, H, np.float64, seed % 1000, top_sequences)
    want = run_torch(cell, layers, p, top_sequences, with_initial)
    got = run_bptt(cell, layers, p, top_sequences, with_initial)
    assert sorted(got) == sorted(want)
    assert all(a.dtype == np.float64 for a in got.values())
    errors = {k: rel_err(got[k], want[k]) for k in want}
    bad = {k: e for k, e in errors.items() if not e <= TOL[np.float64]}
    assert not bad, f"relative error above {TOL[np.float64]:g}: {bad} (all: {errors})"
    padded = np.arange(T)[None, :] >= p["lengths"][:, None]
    assert not np.any(got["dx"][padded]), "gradient at padded steps"
    if top_sequences:
        assert not np.any(got["out"][padded]), "outputs at padded steps must be 0"
    return errors


SIZES = dict(B=st.integers(1, 5), T=st.integers(1, 6), I=st.integers(1, 4), H=st.integers(1, 4),
             seed=st.integers(0, 2**31), pattern=st.sampled_from(PATTERNS), top_sequences=st.booleans(),
             with_initial=st.booleans())


@pytest.mark.parametrize("cell", LAYERS)
@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**SIZES)
def test_float64_parity_with_torch_bidirectional_two_layers_packed(cell, B, T, I, H, seed, pattern, top_sequences,
                                                                   with_initial):
    check(cell, B, T, I, H, seed, pattern, top_sequences, with_initial)


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_edges_b1_t1_h1(cell, pattern):
    for B, T, H in ((1, 1, 1), (1, 5, 1), (4, 1, 3), (3, 4, 1)):
        for top_sequences in (True, False):
            check(cell, B, T, 2, H, 11, pattern, top_sequences, with_initial=True, drawn=False)


@pytest.mark.parametrize("cell", LAYERS)
def test_without_lengths_is_torch_without_packing(cell):
    """lengths=None: every sequence has T steps (the layer then reverses by flipping the batch)."""
    B, T, I, H = 3, 5, 2, 3
    p = make_problem(cell, B, T, I, H, 5, np.float64, "random")
    p["lengths"] = np.full(B, T)
    layers = bptt_stack(cell, I, H, np.float64, 5, True)
    want = run_torch(cell, layers, p, True, True)
    y = p["x"]
    for k, layer in enumerate(layers):
        y = layer.forward(y, initial_state=initial(cell, p, k))  # no lengths
    np.testing.assert_allclose(y, want["out"], rtol=0, atol=1e-12)
    dx = layers[0].backward(layers[1].backward(p["R"]))
    np.testing.assert_allclose(dx, want["dx"], rtol=0, atol=1e-12)
    for k, layer in enumerate(layers):
        for name, g in layer.grads.items():
            np.testing.assert_allclose(g, want[f"{k}.{name}"], rtol=0, atol=1e-11, err_msg=name)
    y = p["x"]  # lengths all T: the same, through the forward-direction call with lengths
    for k, layer in enumerate(layers):
        y = layer.forward(y, initial_state=initial(cell, p, k), lengths=p["lengths"])
    np.testing.assert_allclose(y, want["out"], rtol=0, atol=1e-12)
    dx = layers[0].backward(layers[1].backward(p["R"]))
    np.testing.assert_allclose(dx, want["dx"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", LAYERS)
@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.filter_too_much])
@given(B=st.integers(1, 5), T=st.integers(1, 6), I=st.integers(1, 4), H=st.integers(2, 5), seed=st.integers(0, 2**31),
       pattern=st.sampled_from(PATTERNS), top_sequences=st.booleans())
def test_float32_within_1e5_of_float64(cell, B, T, I, H, seed, pattern, top_sequences):
    """bptt in float32 against torch in float64 on the same float32 values; draws on which torch's own
    float32 strays beyond TOL/20 of its float64 are left out (ill-conditioned), as in test_torch_parity."""
    p = make_problem(cell, B, T, I, H, seed, np.float32, pattern)
    note(f"lengths {p['lengths'].tolist()}")
    layers = [layer.astype(np.float32) for layer in bptt_stack(cell, I, H, np.float64, seed % 1000, top_sequences)]
    want = run_torch(cell, layers, p, top_sequences, True)  # float64 arithmetic on the float32 values
    want32 = run_torch(cell, layers, p, top_sequences, True, dtype=torch.float32)
    assume(max(rel_err(want32[k], want[k]) for k in want) <= TOL[np.float32] / 20)
    got = run_bptt(cell, layers, p, top_sequences, True)
    assert all(a.dtype == np.float32 for a in got.values())
    errors = {k: rel_err(got[k], want[k]) for k in want}
    bad = {k: e for k, e in errors.items() if not e <= TOL[np.float32]}
    assert not bad, f"relative error above {TOL[np.float32]:g}: {bad} (all: {errors})"


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("lengths", [None, [4, 1, 3]])
def test_central_differences(cell, return_sequences, lengths):
    """x, every parameter of both directions and the four initial states, against central differences."""
    B, T, I, H = 3, 4, 2, 3
    rng = np.random.default_rng(1)
    layer = LAYERS[cell](I, H, bidirectional=True, return_sequences=return_sequences, dtype=np.float64, seed=3,
                         bias_initializer="glorot_uniform")
    L = None if lengths is None else np.array(lengths)
    x = rng.normal(size=(B, T, I))
    states = {k: 0.5 * rng.normal(size=(B, H)) for k in layer._states}
    assert set(states) == ({"h0", "h0_reverse"} | ({"c0", "c0_reverse"} if cell == "lstm" else set()))
    y = layer.forward(x, initial_state=states, lengths=L)
    R = rng.normal(size=y.shape)
    analytic = {"x": layer.backward(R), **{k: g.copy() for k, g in layer.grads.items()},
                **{k: layer.state_grads["d" + k] for k in states}}
    arrays = {"x": x, **layer.params, **states}
    report = gradcheck(lambda: weighted_sum(layer.forward(x, training=False, initial_state=states, lengths=L), R),
                       arrays, analytic)
    assert sorted(report.errors) == sorted(arrays)
    report.assert_ok(1e-6)


def test_parameter_names_shapes_and_output_layout():
    gru = GRU(3, 4, bidirectional=True, seed=0)
    assert list(gru.params) == ["W", "U", "b", "b_u", "W_reverse", "U_reverse", "b_reverse", "b_u_reverse"]
    assert [a.shape for a in gru.params.values()] == [(3, 12), (4, 12), (12,), (12,)] * 2
    assert gru.output_size == 8 and GRU(3, 4).output_size == 4
    assert list(LSTM(2, 1, bidirectional=True).params) == ["W", "U", "b", "W_reverse", "U_reverse", "b_reverse"]
    assert not np.array_equal(gru.params["W"], gru.params["W_reverse"])  # two independent draws
    # the forward half is the unidirectional layer with the same parameters, the reverse half is the
    # unidirectional layer over the time-reversed sequences (lengths: each sequence's real steps)
    x = np.random.default_rng(0).normal(size=(3, 5, 3)).astype(np.float32)
    L = np.array([5, 2, 3])
    seq = copy.deepcopy(gru)
    seq.return_sequences = True
    y = seq.forward(x, lengths=L)
    fwd, rev = GRU(3, 4, return_sequences=True), GRU(3, 4, return_sequences=True)
    for k in fwd.params:
        fwd.params[k][...] = gru.params[k]
        rev.params[k][...] = gru.params[k + "_reverse"]
    np.testing.assert_allclose(y[..., :4], fwd.forward(x, lengths=L), rtol=1e-6, atol=1e-6)
    for b, n in enumerate(L):
        alone = rev.forward(x[b : b + 1, :n][:, ::-1].copy())[0, ::-1]
        np.testing.assert_allclose(y[b, :n, 4:], alone, rtol=1e-6, atol=1e-6)
        assert not y[b, n:].any()
    last = gru.forward(x, lengths=L)  # (B, 2H): forward at lengths - 1, reverse after step 0
    np.testing.assert_array_equal(last[:, :4], y[np.arange(3), L - 1, :4])
    np.testing.assert_array_equal(last[:, 4:], y[:, 0, 4:])


def test_refusals():
    with pytest.raises(ValueError, match="stateful=True cannot be combined with bidirectional=True"):
        LSTM(2, 3, bidirectional=True, stateful=True)
    with pytest.raises(ValueError, match="bidirectional must be True or False; got 'yes'"):
        RNN(2, 3, bidirectional="yes")
    layer = LSTM(2, 3, bidirectional=True)
    with pytest.raises(ValueError, match=r"initial_state keys must be among \('h0', 'c0', 'h0_reverse', 'c0_reverse'\)"):
        layer.forward(np.zeros((1, 2, 2), np.float32), initial_state={"h_reverse": np.zeros((1, 3), np.float32)})
    layer.forward(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 6\)"):
        layer.backward(np.zeros((1, 3), np.float32))  # the unidirectional shape


def test_sequential_config_and_model_file_round_trip(tmp_path):
    model = Sequential([GRU(3, 4, bidirectional=True, return_sequences=True, seed=0),
                        LSTM(8, 2, bidirectional=True, seed=1), Dense(4, 1, seed=2)])
    cfg = layer_config(model.layers[0])
    assert cfg["bidirectional"] is True and "bidirectional" not in layer_config(GRU(3, 4))
    assert layer_config(layer_from_config(cfg)) == cfg
    back = load_model(model.save(tmp_path / "m.bptt"))
    assert [getattr(layer, "bidirectional", None) for layer in back.layers] == [True, True, None]
    assert sorted(back.parameters()) == sorted(model.parameters())
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    L = np.array([5, 1, 2, 4])
    np.testing.assert_array_equal(back.forward(x, lengths=L), model.forward(x, lengths=L))
    # Sequential gives the lengths to both layers: row by row, the sequence cut at its length
    out = model.forward(x, lengths=L)
    for b, n in enumerate(L):
        np.testing.assert_allclose(out[b], model.forward(x[b : b + 1, :n])[0], rtol=1e-5, atol=1e-6)
