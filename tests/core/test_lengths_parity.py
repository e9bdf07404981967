"""``lengths=`` and ``reverse=`` of bptt.functional against PyTorch (issue 20, point 1).

The references, neither computed by bptt:

* torch's modules (LSTM, GRU reset-after, RNN tanh/relu) over ``pack_padded_sequence`` (unsorted
  lengths, ``enforce_sorted=False``) and ``pad_packed_sequence``: PyTorch's packed-sequence
  semantics themselves. ``reverse=True`` is the reverse half of a ``bidirectional=True`` module
  (its ``*_reverse`` parameters are bptt's, the forward half's are random and out of the loss);
* the cells torch has no module for (GRU reset-before, RNN sigmoid/identity): the step-by-step
  torch references of test_torch_parity run **one sequence at a time** over its real steps only
  (read backwards for ``reverse``), the definition of the semantics with no padding at all.

One loss touches every output step, the final states (h_T, and c_T for the LSTM), so ``dh``,
``dh_last`` and ``dc_last`` all enter; compared: h, the final states and the gradients of x, every
parameter and the initial states (relative error ≤ 1e-10 in float64; float32 ≤ 1e-5 against the
float64 reference on well-conditioned draws, as test_torch_parity filters them). Both backends.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings as hsettings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bptt.functional import (
    BACKENDS, final_state, gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward, rnn_forward,
)

from core.test_torch_parity import CELLS, TOL, _leaf, make_problem, ref_gru, ref_rnn, rel_err
from kernels.test_lengths_fast import PATTERNS, lengths_for

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py

MODULE_CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


# ─────────────────────────────────────────────────────────────────────────────── bptt


def run_bptt(cell, p, lengths, reverse, backend):
    x, W, U, h0, c0 = p["x"], p["W"], p["U"], p["h0"], p["c0"]
    kw = dict(lengths=lengths, reverse=reverse, backend=backend)
    if cell == "lstm":
        h, cache = lstm_forward(x, W, U, p["b_ih"] + p["b_hh"], h0, c0, **kw)
        c_T = final_state(cache.c, lengths, reverse)
        g = lstm_backward(p["R"], cache, dh_last=p["Rh"], dc_last=p["Rc"])
        extra = {"c_T": c_T, "dc0": g["dc0"]}
    elif cell.startswith("gru"):
        h, cache = gru_forward(x, W, U, p["b_ih"], p["b_hh"], h0, reset_after=cell == "gru", **kw)
        g = gru_backward(p["R"], cache, dh_last=p["Rh"])
        extra = {"db_u": g["db_u"]}
    else:
        h, cache = rnn_forward(x, W, U, p["b_ih"] + p["b_hh"], h0, activation=cell[4:], **kw)
        g = rnn_backward(p["R"], cache, dh_last=p["Rh"])
        extra = {}
    out = {"h": h, "h_T": final_state(h, lengths, reverse), "dx": g["dx"], "dW": g["dW"], "dU": g["dU"],
           "db": g["db"], "dh0": g["dh0"], **extra}
    return out, g


# ─────────────────────────────────────────────────────────────────────────── torch packed


def run_torch_packed(cell, p, lengths, reverse):
    """torch.nn.LSTM/GRU/RNN over a packed batch; for ``reverse`` the reverse half of a
    bidirectional module."""
    I, H = p["W"].shape[0], p["U"].shape[0]
    dtype = torch.from_numpy(p["W"]).dtype
    kw = dict(batch_first=True, dtype=dtype, bidirectional=reverse)
    m = {"lstm": lambda: torch.nn.LSTM(I, H, **kw), "gru": lambda: torch.nn.GRU(I, H, **kw)}.get(
        cell, lambda: torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw))()
    sfx = "_l0_reverse" if reverse else "_l0"
    with torch.no_grad():
        getattr(m, "weight_ih" + sfx).copy_(torch.from_numpy(p["W"]).T)
        getattr(m, "weight_hh" + sfx).copy_(torch.from_numpy(p["U"]).T)
        getattr(m, "bias_ih" + sfx).copy_(torch.from_numpy(p["b_ih"]))
        getattr(m, "bias_hh" + sfx).copy_(torch.from_numpy(p["b_hh"]))
    x, h0, c0 = _leaf(p["x"]), _leaf(p["h0"]), _leaf(p["c0"])
    B, T = p["x"].shape[:2]
    d = 1 if reverse else 0

    def states(s0):  # (directions, B, H); in reverse the forward half starts from zeros
        return torch.stack([torch.zeros_like(s0), s0]) if reverse else s0[None]

    packed = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
    if cell == "lstm":
        out, (hn, cn) = m(packed, (states(h0), states(c0)))
    else:
        out, hn = m(packed, states(h0))
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    out = out[..., H:] if reverse else out
    R, Rh, Rc = (torch.from_numpy(p[k]) for k in ("R", "Rh", "Rc"))
    loss = (out * R).sum() + (hn[d] * Rh).sum() + ((cn[d] * Rc).sum() if cell == "lstm" else 0)
    loss.backward()
    res = {"h": out, "h_T": hn[d], "dx": x.grad, "dW": getattr(m, "weight_ih" + sfx).grad.T,
           "dU": getattr(m, "weight_hh" + sfx).grad.T, "db": getattr(m, "bias_ih" + sfx).grad, "dh0": h0.grad}
    if cell == "lstm":
        res.update(c_T=cn[d], dc0=c0.grad)
    if cell == "gru":
        res["db_u"] = getattr(m, "bias_hh" + sfx).grad
    return {k: t.detach().numpy() for k, t in res.items()}


def run_torch_one_by_one(cell, p, lengths, reverse):
    """The step-by-step torch references over each sequence's real steps alone."""
    x, W, U, h0 = _leaf(p["x"]), _leaf(p["W"]), _leaf(p["U"]), _leaf(p["h0"])
    B, T = p["x"].shape[:2]
    H = p["U"].shape[0]
    gru = cell.startswith("gru")
    b = _leaf(p["b_ih"]) if gru else _leaf(p["b_ih"] + p["b_hh"])
    b_u = _leaf(p["b_hh"])
    rows, finals = [], []
    for k in range(B):
        L = int(lengths[k])
        xs = x[k : k + 1, :L]
        if reverse:
            xs = xs.flip(1)
        if gru:
            hs = ref_gru(xs, W, U, b, b_u, h0[k : k + 1], reset_after=False)
        else:
            hs = ref_rnn(xs, W, U, b, h0[k : k + 1], cell[4:])
        finals.append(hs[0, -1])
        if reverse:
            hs = hs.flip(1)
        rows.append(torch.cat([hs[0], torch.zeros(T - L, H, dtype=hs.dtype)]))
    h, h_T = torch.stack(rows), torch.stack(finals)
    loss = (h * torch.from_numpy(p["R"])).sum() + (h_T * torch.from_numpy(p["Rh"])).sum()
    loss.backward()
    res = {"h": h, "h_T": h_T, "dx": x.grad, "dW": W.grad, "dU": U.grad, "db": b.grad, "dh0": h0.grad}
    if gru:
        res["db_u"] = b_u.grad
    return {k: t.detach().numpy() for k, t in res.items()}


def run_torch(cell, p, lengths, reverse):
    if cell in MODULE_CELLS:
        return run_torch_packed(cell, p, lengths, reverse)
    return run_torch_one_by_one(cell, p, lengths, reverse)


# ─────────────────────────────────────────────────────────────────────────────── checks




def check(cell, B, T, I, H, seed, dtype, backend, pattern, reverse, well_conditioned_only=False, drawn=True):
    p = make_problem(cell, B, T, I, H, seed, dtype)
    lengths = lengths_for(pattern, B, T, np.random.default_rng(seed))
    if drawn:
        note(f"lengths {lengths.tolist()} reverse {reverse}")
    p64 = {k: a.astype(np.float64) for k, a in p.items()}
    want = run_torch(cell, p64, lengths, reverse)  # float64 on the same (float32) values
    if dtype == np.float32 and well_conditioned_only:  # see test_torch_parity.check_parity
        want32 = run_torch(cell, p, lengths, reverse)
        assume(max(rel_err(want32[k], want[k]) for k in want) <= TOL[np.float32] / 20)
    got, grads = run_bptt(cell, p, lengths, reverse, backend)
    assert sorted(got) == sorted(want)
    assert all(a.dtype == dtype for a in got.values())
    errors = {k: rel_err(got[k], want[k]) for k in want}
    bad = {k: e for k, e in errors.items() if not e <= TOL[dtype]}
    assert not bad, f"relative error above {TOL[dtype]:g}: {bad} (all: {errors})"
    padded = np.arange(T)[None, :] >= lengths[:, None]
    for k in ("dx", "dz") + (("dc",) if cell == "lstm" else ()):  # no gradient at padded steps
        assert not np.any(grads[k][padded]), k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    B=st.integers(1, 6), T=st.integers(1, 6), I=st.integers(1, 4), H=st.integers(1, 5), seed=st.integers(0, 2**31),
    pattern=st.sampled_from(PATTERNS), reverse=st.booleans(),
)
def test_float64_parity_with_torch_packed_sequences(cell, backend, B, T, I, H, seed, pattern, reverse):
    check(cell, B, T, I, H, seed, np.float64, backend, pattern, reverse)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.filter_too_much])
@given(
    B=st.integers(1, 6), T=st.integers(1, 6), I=st.integers(1, 4), H=st.integers(3, 6), seed=st.integers(0, 2**31),
    pattern=st.sampled_from(PATTERNS), reverse=st.booleans(),
)
def test_float32_within_1e5_of_float64(cell, backend, B, T, I, H, seed, pattern, reverse):
    check(cell, B, T, I, H, seed, np.float32, backend, pattern, reverse, well_conditioned_only=True)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_edges_b1_t1_h1(cell, reverse, pattern):
    for backend in BACKENDS:
        for B, T, H in ((1, 1, 1), (1, 5, 1), (4, 1, 3)):
            check(cell, B, T, 2, H, 7, np.float64, backend, pattern, reverse, drawn=False)
