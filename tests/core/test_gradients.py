"""Finite differences (float64, central) on every input, parameter and initial state of every cell,
on both backends explicitly: the plain NumPy reference (the oracle of the fast path's parity
tests, tests/kernels/test_backends.py) and the fast path (its default driver for each size)."""

from __future__ import annotations

import numpy as np
import pytest
from problems import CELLS, cell_id, make_problem, rel

from bptt import functional as F
from bptt.gradcheck import check_primitive

TOL = 1e-6
BACKENDS = ["reference", "fast"]

# (T, B, H, D): TMVA's own LSTM test sizes, the degenerate B = T = H = 1 corners, and a long sequence.
TMVA_SIZES = [(1, 2, 1, 2), (2, 3, 4, 5), (4, 2, 10, 5), (5, 64, 10, 5)]
CORNERS = [(1, 1, 1, 1), (3, 1, 1, 2), (1, 1, 3, 2), (1, 4, 1, 3)]
LONG = [(80, 2, 3, 2)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["all", "outputs", "final"])
@pytest.mark.parametrize("size", TMVA_SIZES + CORNERS + LONG, ids=lambda s: "T{}-B{}-H{}-D{}".format(*s))
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_finite_differences(case, size, loss, backend):
    """Non-zero initial states; the losses: on every output ("outputs"), on the final states only
    through dh_last (and dc_last) ("final"), both ("all")."""
    cell, options = case
    T, B, H, D = size
    # Long sequences get parameters that carry memory: otherwise the gradient reaching the first
    # steps falls below what central differences can resolve, and the check would measure nothing.
    seed = T * 1000 + B * 100 + H * 10 + D
    problem = make_problem(cell, B, T, D, H, seed, memory=size in LONG, activation=options.get("activation", "tanh"))
    report = check_primitive(cell, loss=loss, **problem, **options, backend=backend)
    _, cache = getattr(F, f"{cell}_forward")(**problem, **options, backend=backend)
    assert cache.layout == {"reference": "tbf", "fast": "ftb"}[backend]  # the backend checked is the one named
    if size in LONG:  # the gradient did reach the first step: the check below measures something
        assert min(np.abs(report.numeric[k]).max() for k in report.numeric) > 1e-4
    expected = {"x", "W", "U", "b", "h0"} | ({"b_u"} if cell == "gru" else set()) | ({"c0"} if cell == "lstm" else set())
    assert set(report.errors) == expected
    report.assert_ok(TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_zero_initial_states_by_default(case, backend):
    """Omitted initial states are zeros: same outputs as passing zeros explicitly."""
    cell, options = case
    p = make_problem(cell, 3, 4, 2, 5, states=False)
    forward = getattr(F, f"{cell}_forward")
    h_default, _ = forward(**p, **options, backend=backend)
    zeros = {"h0": np.zeros((3, 5))} | ({"c0": np.zeros((3, 5))} if cell == "lstm" else {})
    h_zeros, _ = forward(**p, **zeros, **options, backend=backend)
    np.testing.assert_array_equal(h_default, h_zeros)
    check_primitive(cell, **p, **options, backend=backend).assert_ok(TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_float32_agrees_with_float64(case, backend):
    """Outputs and every gradient in float32 within 1e-5 (normwise relative) of float64, on the same backend."""
    cell, options = case
    p32 = make_problem(cell, 8, 20, 6, 12, seed=3, dtype=np.float32)
    p64 = {k: a.astype(np.float64) for k, a in p32.items()}
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    rng = np.random.default_rng(1)
    dh = rng.normal(size=(8, 20, 12))
    h32, c32 = forward(**p32, **options, backend=backend)
    h64, c64 = forward(**p64, **options, backend=backend)
    assert h32.dtype == np.float32 and h64.dtype == np.float64
    assert rel(h32, h64) <= 1e-5
    g32 = backward(dh.astype(np.float32), c32)
    g64 = backward(dh, c64)
    for k in g64:
        assert g32[k].dtype == np.float32, k
        assert rel(g32[k], g64[k]) <= 1e-5, (k, rel(g32[k], g64[k]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_segments_chain_exactly(case, backend):
    """Two segments chained with the final-state gradients equal BPTT over the whole sequence.

    This is how stateful training and truncated BPTT compose: segment 2 starts from segment 1's
    final states, and its dh0 (dc0) flows back into segment 1 as dh_last (dc_last).
    """
    cell, options = case
    p = make_problem(cell, 3, 9, 4, 5, seed=7)
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    dh = np.random.default_rng(2).normal(size=(3, 9, 5))
    h, cache = forward(**p, **options, backend=backend)
    full = backward(dh, cache)

    params = {k: a for k, a in p.items() if k not in ("x", "h0", "c0")}
    first = {k: p[k] for k in ("h0", "c0") if k in p}
    h1, cache1 = forward(p["x"][:, :4], **params, **first, **options, backend=backend)
    carried = {"h0": h1[:, -1]} | ({"c0": cache1.c[:, -1]} if cell == "lstm" else {})
    h2, cache2 = forward(p["x"][:, 4:], **params, **carried, **options, backend=backend)
    np.testing.assert_allclose(np.concatenate([h1, h2], axis=1), h, rtol=1e-13, atol=1e-14)

    g2 = backward(dh[:, 4:], cache2)
    chain = {"dh_last": g2["dh0"]} | ({"dc_last": g2["dc0"]} if cell == "lstm" else {})
    g1 = backward(dh[:, :4], cache1, **chain)
    for k in params:
        np.testing.assert_allclose(g1["d" + k] + g2["d" + k], full["d" + k], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.concatenate([g1["dx"], g2["dx"]], axis=1), full["dx"], rtol=1e-12, atol=1e-13)
    for k in first:
        np.testing.assert_allclose(g1["d" + k], full["d" + k], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_per_step_deltas_by_finite_differences(backend):
    """dz_t and dc_t are the gradients w.r.t. the step-t pre-activations and cell state.

    Checked by perturbing one step at a time: a change δ of the bias at step t only is the same as
    a change δ of z_t; a change of c_t is made by perturbing c0 of a sequence started at step t.
    """
    p = make_problem("lstm", 2, 5, 3, 4, seed=11)
    dh = np.random.default_rng(5).normal(size=(2, 5, 4))
    h, cache = F.lstm_forward(**p, backend=backend)
    g = F.lstm_backward(dh, cache)
    eps = 1e-6
    for t in range(5):
        # dz_t: the bias at step t alone, via the input x_t augmented with a constant-one feature.
        x1 = np.concatenate([p["x"], np.zeros((2, 5, 1))], axis=2)
        W1 = np.concatenate([p["W"], np.zeros((1, 16))], axis=0)
        for j in range(16):
            for bi in range(2):
                vals = []
                for s in (+eps, -eps):
                    x1[bi, t, 3] = 1.0
                    W1[3, j] = s
                    hh, _ = F.lstm_forward(x1, W1, p["U"], p["b"], p["h0"], p["c0"], backend=backend)
                    vals.append(np.sum(hh * dh))
                    W1[3, j] = 0.0
                    x1[bi, t, 3] = 0.0
                num = (vals[0] - vals[1]) / (2 * eps)
                assert abs(num - g["dz"][bi, t, j]) <= 1e-7 * max(1.0, abs(num)), (t, j, bi)
        # dc_t: restart the sequence at step t + 1 from (h_t, c_t ± δ).
        for bi in range(2):
            for u in range(4):
                vals = []
                for s in (+eps, -eps):
                    c_t = cache.c[:, t].copy()
                    c_t[bi, u] += s
                    h_t = cache.gates[:, t, 12:] * np.tanh(c_t)
                    total = np.sum(h_t * dh[:, t])
                    if t < 4:
                        hh, _ = F.lstm_forward(p["x"][:, t + 1 :], p["W"], p["U"], p["b"], h_t, c_t, backend=backend)
                        total += np.sum(hh * dh[:, t + 1 :])
                    vals.append(total)
                num = (vals[0] - vals[1]) / (2 * eps)
                assert abs(num - g["dc"][bi, t, u]) <= 1e-7 * max(1.0, abs(num)), (t, u, bi)
