"""Saturated gates: float32 against the float64 reference where the true derivative is exactly 0.

Inputs of about 1e4 (data that was not standardised) drive gate pre-activations to |z| ≥ 150,
where σ and tanh are exactly 0, 1 or ±1 in both float32 and float64, and so are the derivatives
formed from them (y(1 − y), 1 − y²): exactly 0. A float32 tanh that stops short of ±1 (the fast
kernels' rational approximation clamped at ±(1 − 2.4e-7)) leaves derivatives of ~1e-7 there,
which the large inputs multiply into weight gradients of ~1e-2 where the exact value is 0.

The problems are built so that each gate column is either saturated at every step (it reads
the large input features with weights of one sign) or never (it reads none of them), which keeps
the unsaturated part well conditioned: float32 and float64 then agree there to the usual 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from problems import CELLS, GATES

from bptt import functional as F

#: (cell, options): every cell whose activations saturate (ReLU and identity do not).
SATURATING = [(cell, options) for cell, options in CELLS if options.get("activation") not in ("relu", "identity")]
BIG = 1e4
N_BIG = 3  # large input features; a saturated column's |z| ≥ N_BIG · 0.5 · BIG · 0.01 = 150


def case_id(case) -> str:
    cell, options = case
    return cell + "".join(f"-{k}={v}" for k, v in options.items())


def saturated_problem(cell, B, T, H, fraction, seed):
    """Float64 arrays for ``cell`` in which a ``fraction`` of the gate columns (all of them for 1)
    saturate at every step; returns the arrays and the boolean mask of saturated columns."""
    rng = np.random.default_rng(seed)
    G, n_small = GATES[cell], 3
    I = N_BIG + n_small
    saturated = rng.random(G * H) < fraction
    if fraction < 1:  # both kinds present, whatever the draw
        saturated[0], saturated[-1] = True, False
    x = np.concatenate([rng.uniform(0.5, 1.0, (B, T, N_BIG)) * BIG, rng.normal(size=(B, T, n_small))], axis=2)
    sign = rng.choice([-1.0, 1.0], G * H)
    W = np.empty((I, G * H))
    W[:N_BIG] = np.where(saturated, sign * rng.uniform(0.01, 0.05, (N_BIG, G * H)), 0.0)
    W[N_BIG:] = rng.normal(size=(n_small, G * H)) * np.where(saturated, 0.3, 0.6 / np.sqrt(n_small))
    arrays = {
        "x": x,
        "W": W,
        "U": rng.normal(size=(H, G * H)) * 0.6 / np.sqrt(H),
        "b": rng.normal(size=G * H) * 0.2,
        "h0": rng.normal(size=(B, H)) * 0.5,
    }
    if cell == "gru":
        arrays["b_u"] = rng.normal(size=G * H) * 0.2
    if cell == "lstm":
        arrays["c0"] = rng.normal(size=(B, H)) * 0.5
    return arrays, saturated


def tanh_blocks(cell, options, H):
    """The gate columns whose activation is tanh (saturating at ±1); the others saturate at 0 and 1."""
    blocks = np.zeros(GATES[cell] * H, bool)
    if cell == "lstm":
        blocks[2 * H : 3 * H] = True
    elif cell == "gru":
        blocks[2 * H :] = True
    else:
        blocks[:] = options["activation"] == "tanh"
    return blocks


def at_limits(gates, tanh_columns):
    """Where the post-activation gate values are exactly at their limits (0 or 1; ±1 for tanh)."""
    return np.where(tanh_columns, np.abs(gates) == 1, (gates == 0) | (gates == 1))


def run(cell, options, arrays, dtype, backend, dh, finals):
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    typed = {k: a.astype(dtype) for k, a in arrays.items()}
    h, cache = forward(**typed, **options, backend=backend)
    gates = np.array(cache.gates)
    grads = backward(dh.astype(dtype), cache, **{k: a.astype(dtype) for k, a in finals.items()})
    return h, gates, grads


def assert_close(actual, expected, what, rtol=1e-5, floor=1e-6, least=0.0):
    """Elementwise within ``rtol`` of the float64 value, with an absolute floor of ``floor`` times
    the largest |value| of the array, and at least ``least`` (by default 0: an array that is
    exactly zero in float64 must be exactly zero)."""
    expected = np.asarray(expected, np.float64)
    atol = max(floor * np.abs(expected).max(initial=0.0), least)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol, err_msg=what)


# (B, T, H): the hand-written products; a batch and width on which the fast path takes bptt's
# micro-kernel or BLAS per step.
SIZES = [(5, 4, 3), (64, 3, 16)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "B{}-T{}-H{}".format(*s))
@pytest.mark.parametrize("fraction", [1.0, 0.5], ids=["all-saturated", "mixed"])
@pytest.mark.parametrize("case", SATURATING, ids=case_id)
def test_saturated_gates_have_exactly_zero_derivative(case, fraction, size):
    cell, options = case
    B, T, H = size
    arrays, saturated = saturated_problem(cell, B, T, H, fraction, seed=B + T + H)
    rng = np.random.default_rng(7)
    dh = rng.normal(size=(B, T, H))
    finals = {"dh_last": rng.normal(size=(B, H))} | ({"dc_last": rng.normal(size=(B, H))} if cell == "lstm" else {})
    tanh_columns = tanh_blocks(cell, options, H)

    h64, gates64, g64 = run(cell, options, arrays, np.float64, "reference", dh, finals)
    limits64 = at_limits(gates64, tanh_columns)
    # the problem is what it claims: saturated columns at their limits at every step, the others not
    assert limits64[:, :, saturated].all()
    assert not limits64[:, :, ~saturated].any()
    assert (g64["dz"][limits64] == 0).all()  # the oracle itself: exact zeros
    if fraction == 1.0:  # no gradient passes a saturated gate (the GRU's dh0 passes by z ⊙ h_{t-1}, c0's by f ⊙ c)
        for k in ("dx", "dW", "dU", "db") + (("dh0",) if cell != "gru" else ()):
            assert not g64[k].any(), k

    for backend in ("fast", "reference"):  # float32: the same exact zeros as the float64 reference
        label = f"float32 {backend}"
        h, gates, g = run(cell, options, arrays, np.float32, backend, dh, finals)
        limits = at_limits(gates, tanh_columns)
        np.testing.assert_array_equal(limits, limits64, err_msg=f"{label}: gates at their limits")
        np.testing.assert_array_equal(g["dz"][limits], 0, err_msg=f"{label}: dz where the gates are at their limits")
        # the weight and bias gradients of saturated columns are sums of exact zeros
        for k in ("dW", "dU", "db") + (("db_u",) if cell == "gru" else ()):
            np.testing.assert_array_equal(g[k][..., saturated], 0, err_msg=f"{label}: {k} of saturated columns")
        assert_close(h, h64, f"{label}: h")
        for k in g64:
            assert_close(g[k], g64[k], f"{label}: {k}")

    # float64 fast: its σ is 1/(1 + e^-z), which keeps the exact tail value (e^-150 ≈ 7e-66) where
    # the reference's ½ tanh(z/2) + ½ gives 0; derivatives of that size, well below any floor
    h, gates, g = run(cell, options, arrays, np.float64, "fast", dh, finals)
    np.testing.assert_array_equal(g["dz"][at_limits(gates, tanh_columns)], 0)
    assert_close(h, h64, "float64 fast: h", rtol=1e-10, floor=1e-12, least=1e-300)
    for k in g64:
        assert_close(g[k], g64[k], f"float64 fast: {k}", rtol=1e-10, floor=1e-12, least=1e-50)
