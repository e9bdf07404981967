"""Input validation of the public ``bptt.functional`` API.

API.md: bad input (wrong rank, mismatched shapes, wrong or mixed dtype, NaN or Inf) raises
``ValueError`` whose message names the argument, what was expected and what was received. Every
test here checks all three parts (plus the function name) with :func:`msg`, a regex that requires
the given literal pieces in order.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from bptt.functional import (
    BACKENDS,
    GRUCache,
    LSTMCache,
    RNNCache,
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)

B, T, I, H = 2, 3, 4, 5
CELLS = ("lstm", "gru", "rnn")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
FORWARD = {"lstm": lstm_forward, "gru": gru_forward, "rnn": rnn_forward}
BACKWARD = {"lstm": lstm_backward, "gru": gru_backward, "rnn": rnn_backward}
CACHE = {"lstm": LSTMCache, "gru": GRUCache, "rnn": RNNCache}
#: Per cell: bias vectors, initial states, final-state gradients of the backward pass.
BIASES = {"lstm": ("b",), "gru": ("b", "b_u"), "rnn": ("b",)}
STATES = {"lstm": ("h0", "c0"), "gru": ("h0",), "rnn": ("h0",)}
FINALS = {"lstm": ("dh_last", "dc_last"), "gru": ("dh_last",), "rnn": ("dh_last",)}


def per_cell(*tables):
    """``(cell, name)`` pairs for every name the cell has in any of ``tables``."""
    return [(c, n) for c in CELLS for table in tables for n in table[c]]


def msg(*pieces: str) -> str:
    """Regex matching the literal ``pieces`` in this order (anything in between)."""
    return ".*".join(re.escape(p) for p in pieces)


def valid_args(cell, dtype=np.float64, seed=0):
    """Keyword arguments of a valid forward call of ``cell`` (x is (B, T, I) = (2, 3, 4), H = 5)."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    args = {
        "x": rng.normal(size=(B, T, I)),
        "W": 0.5 * rng.normal(size=(I, G * H)),
        "U": 0.5 * rng.normal(size=(H, G * H)),
        "b": 0.5 * rng.normal(size=G * H),
        "h0": 0.5 * rng.normal(size=(B, H)),
    }
    if cell == "lstm":
        args["c0"] = rng.normal(size=(B, H))
    if cell == "gru":
        args["b_u"] = 0.5 * rng.normal(size=G * H)
    return {k: a.astype(dtype) for k, a in args.items()}


def call_forward(cell, **args):
    return FORWARD[cell](**args)


def run_forward(cell, dtype=np.float64, backend=None):
    """A valid forward pass: ``(h, cache)``."""
    return call_forward(cell, **valid_args(cell, dtype), backend=backend)


# ─────────────────────────────────────────────────────────────────────── forward: ranks, shapes


@pytest.mark.parametrize("cell", CELLS)
def test_x_of_rank_2(cell):
    args = valid_args(cell)
    args["x"] = args["x"][0]  # (T, I): the batch axis is missing
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: x ", "3-D", "(B, T, I)", f"got shape {(T, I)}")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
def test_W_first_dim_does_not_match_x(cell):
    G = GATES[cell]
    args = valid_args(cell)
    args["W"] = np.zeros((I + 1, G * H))
    with pytest.raises(
        ValueError,
        match=msg(f"{cell}_forward: W ", f"shape {(I, G * H)}", f"I = x.shape[2] = {I}", f"got {(I + 1, G * H)}"),
    ):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
def test_W_of_rank_1(cell):
    args = valid_args(cell)
    args["W"] = args["W"][0]
    G = GATES[cell]
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: W ", "2-D", f"(I, {G}H)", f"got shape {(G * H,)}")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("delta", [-1, +1])
def test_U_not_H_by_GH(cell, delta):
    G = GATES[cell]
    args = valid_args(cell)
    args["U"] = np.zeros((H, G * H + delta))
    with pytest.raises(
        ValueError,
        match=msg(f"{cell}_forward: U ", f"shape {(H, G * H)}", f"H = U.shape[0] = {H}", f"got {(H, G * H + delta)}"),
    ):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
def test_U_of_rank_3(cell):
    args = valid_args(cell)
    args["U"] = args["U"][None]
    G = GATES[cell]
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: U ", "2-D", f"(H, {G}H)", f"got shape {(1, H, G * H)}")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell, name", per_cell(BIASES))
def test_bias_of_wrong_length(cell, name):
    G = GATES[cell]
    args = valid_args(cell)
    args[name] = args[name][:-1]
    with pytest.raises(
        ValueError, match=msg(f"{cell}_forward: {name} ", f"shape {(G * H,)}", f"({G}H,)", f"got {(G * H - 1,)}")
    ):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
def test_bias_of_rank_2(cell):
    args = valid_args(cell)
    args["b"] = args["b"][None]
    G = GATES[cell]
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: b ", "1-D", f"({G}H,)", f"got shape {(1, G * H)}")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell, name", per_cell(STATES))
@pytest.mark.parametrize("shape", [(B + 1, H), (B, H - 1), (H, B)])
def test_initial_state_of_wrong_shape(cell, name, shape):
    args = valid_args(cell)
    args[name] = np.zeros(shape)
    with pytest.raises(
        ValueError,
        match=msg(f"{cell}_forward: {name} ", f"shape {(B, H)}", f"B = x.shape[0] = {B}, H = {H}", f"got {shape}"),
    ):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell, name", per_cell(STATES))
def test_initial_state_of_rank_1(cell, name):
    args = valid_args(cell)
    args[name] = np.zeros(H)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: {name} ", "2-D", "(B, H)", f"got shape {(H,)}")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(B, 0, I), (0, T, I), (B, T, 0)])
def test_x_with_empty_axis(cell, shape):
    args = valid_args(cell)
    args["x"] = np.zeros(shape)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: x ", "empty axis", "(B, T, I)", f"got shape {shape}")):
        call_forward(cell, **args)


def test_ragged_x():
    args = valid_args("lstm")
    args["x"] = [[[1.0, 2.0]], [[1.0]]]
    with pytest.raises(ValueError, match=msg("lstm_forward: x ", "(B, T, I)", "got list")):
        call_forward("lstm", **args)


# ──────────────────────────────────────────────────────────────────────────── forward: dtypes


@pytest.mark.parametrize("cell", CELLS)
def test_integer_x(cell):
    args = valid_args(cell)
    args["x"] = np.ones((B, T, I), dtype=np.int64)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: x ", "float32 or float64", "got int64")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name", ["W", "U", "b", "h0"])
def test_float16_parameter(cell, name):
    args = valid_args(cell)
    args[name] = args[name].astype(np.float16)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: {name} ", "float32 or float64", "got float16")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
def test_mixed_dtypes_x_float32_W_float64(cell):
    args = valid_args(cell, dtype=np.float32)
    args["W"] = args["W"].astype(np.float64)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: W ", "float64", "x ", "float32")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell, name", [(c, "U") for c in CELLS] + per_cell(BIASES, STATES))
def test_mixed_dtypes_one_float32_among_float64(cell, name):
    args = valid_args(cell)
    args[name] = args[name].astype(np.float32)
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: {name} ", "float32", "x ", "float64")):
        call_forward(cell, **args)


# ──────────────────────────────────────────────────────────────────────── forward: NaN and Inf


@pytest.mark.parametrize("cell", CELLS)
def test_nan_in_x(cell):
    args = valid_args(cell)
    args["x"][1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: x ", "NaN", "index (1, 2, 3)", "finite")):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_W(cell, value):
    args = valid_args(cell)
    args["W"][2, GATES[cell] * H - 1] = value
    with pytest.raises(
        ValueError, match=msg(f"{cell}_forward: W ", "Inf", f"index (2, {GATES[cell] * H - 1})", "finite")
    ):
        call_forward(cell, **args)


@pytest.mark.parametrize("cell, name", [(c, "U") for c in CELLS] + per_cell(BIASES, STATES))
def test_nan_in_state_or_parameter(cell, name):
    args = valid_args(cell)
    index = (0,) * args[name].ndim
    index = index[:-1] + (1,)
    args[name][index] = np.nan
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: {name} ", "NaN", f"index {index}", "finite")):
        call_forward(cell, **args)


def test_nan_reports_first_index():
    args = valid_args("rnn")
    args["h0"][1, 4] = np.nan
    args["h0"][1, 2] = np.inf
    with pytest.raises(ValueError, match=msg("rnn_forward: h0 ", "Inf", "index (1, 2)")):
        call_forward("rnn", **args)


def test_nan_in_float32_input():
    args = valid_args("gru", dtype=np.float32)
    args["x"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=msg("gru_forward: x ", "NaN", "index (0, 0, 0)")):
        call_forward("gru", **args)


# The compiled finite check (bptt.kernels.fast.all_finite) that float_array uses for C-contiguous
# arrays once the fast path is loaded; NumPy's isfinite is the reference.
FINITE_SIZES = (1, 2, 15, 16, 17, 31, 33, 64, 100, 1000)  # around the vector widths and their remainders


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", FINITE_SIZES)
def test_compiled_finite_check_finds_every_position(dtype, size):
    from bptt.kernels import fast

    info = np.finfo(dtype)
    a = np.random.default_rng(size).standard_normal(size).astype(dtype)
    a[0], a[-1] = info.max, -info.smallest_subnormal  # the extremes that are still finite
    assert fast.all_finite(a)
    assert fast.all_finite(a.reshape(1, size, 1))
    for bad in (np.nan, np.inf, -np.inf, -np.nan):
        for k in {0, size // 2, size - 1}:
            b = a.copy()
            b[k] = bad
            assert not fast.all_finite(b), (bad, k)
            b.flags.writeable = False  # read-only arrays (the forward outputs) compile apart
            assert not fast.all_finite(b.reshape(size, 1)), (bad, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_check_of_strided_arrays(dtype):
    """Non-contiguous arrays go to NumPy; the error names the index in the caller's array."""
    from bptt.kernels import fast  # noqa: F401 - loaded: the compiled check is live
    from bptt._validation import _all_finite

    x = np.zeros((B, 2 * T, I), dtype)
    x[1, 3, 2] = np.nan
    view = x[:, 1::2]
    assert not view.flags.c_contiguous and not _all_finite(view)
    args = valid_args("lstm", dtype=dtype)
    args["x"] = view
    with pytest.raises(ValueError, match=msg("lstm_forward: x ", "NaN", "index (1, 1, 2)", "finite")):
        call_forward("lstm", **args)
    assert _all_finite(x[:, ::2])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("where", ["first", "last"])
def test_nan_in_x_on_the_fast_path(cell, where):
    from bptt.kernels import fast  # noqa: F401 - loaded: the compiled check is live

    args = valid_args(cell, dtype=np.float32)
    index = (0, 0, 0) if where == "first" else (B - 1, T - 1, I - 1)
    args["x"][index] = np.inf
    with pytest.raises(ValueError, match=msg(f"{cell}_forward: x ", "Inf", f"index {index}", "finite")):
        call_forward(cell, **args)


# ───────────────────────────────────────────────────────────────────── forward: option values


@pytest.mark.parametrize("value", ["yes", None, 2, "True"])
def test_invalid_reset_after(value):
    with pytest.raises(
        ValueError, match=msg("gru_forward: reset_after ", "True, False", f"got {value!r}")
    ):
        gru_forward(**valid_args("gru"), reset_after=value)


@pytest.mark.parametrize("value", ["softplus", "Tanh", "softmax", None])
def test_invalid_activation(value):
    with pytest.raises(
        ValueError,
        match=msg("rnn_forward: activation ", "'tanh'", "'sigmoid'", "'relu'", "'identity'", f"got {value!r}"),
    ):
        rnn_forward(**valid_args("rnn"), activation=value)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("value", ["gpu", "Fast", ""])
def test_invalid_backend(cell, value):
    with pytest.raises(
        ValueError, match=msg(f"{cell}_forward: backend ", ", ".join(map(repr, BACKENDS)), f"got {value!r}")
    ):
        call_forward(cell, **valid_args(cell), backend=value)


def test_invalid_backend_environment_variable(monkeypatch):
    """BPTT_BACKEND is read once, when bptt is imported: a wrong value stops the import."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", "import bptt"], env={**os.environ, "BPTT_BACKEND": "cuda"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "ValueError: the environment variable BPTT_BACKEND must be one of fast, reference; got 'cuda'" in run.stderr


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_every_documented_activation_is_accepted(activation):
    h, _ = rnn_forward(**valid_args("rnn"), activation=activation)
    assert h.shape == (B, T, H)


@pytest.mark.parametrize("reset_after", [True, False])
def test_both_reset_after_values_are_accepted(reset_after):
    h, _ = gru_forward(**valid_args("gru"), reset_after=reset_after)
    assert h.shape == (B, T, H)


# ───────────────────────────────────────────────────────────────────────────────── backward


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(B, T + 1, H), (B, T, H + 1), (B + 1, T, H), (T, B, H)])
def test_dh_of_wrong_shape(cell, shape, backend):
    _, cache = run_forward(cell, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: dh ", f"shape {(B, T, H)}", "(B, T, H)", f"got {shape}")
    ):
        BACKWARD[cell](np.zeros(shape), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_dh_of_wrong_rank(cell, backend):
    _, cache = run_forward(cell, backend=backend)
    with pytest.raises(ValueError, match=msg(f"{cell}_backward: dh ", "3-D", "(B, T, H)", f"got shape {(B, H)}")):
        BACKWARD[cell](np.zeros((B, H)), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_dh_float32_against_float64_forward(cell, backend):
    h, cache = run_forward(cell, np.float64, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: dh ", "float32", "forward pass ran in float64")
    ):
        BACKWARD[cell](np.ones_like(h, dtype=np.float32), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_dh_float64_against_float32_forward(cell, backend):
    h, cache = run_forward(cell, np.float32, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: dh ", "float64", "forward pass ran in float32")
    ):
        BACKWARD[cell](np.ones_like(h, dtype=np.float64), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_integer_dh(cell, backend):
    h, cache = run_forward(cell, backend=backend)
    with pytest.raises(ValueError, match=msg(f"{cell}_backward: dh ", "float32 or float64", "got int64")):
        BACKWARD[cell](np.ones(h.shape, dtype=np.int64), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, name", per_cell(FINALS))
@pytest.mark.parametrize("shape", [(B + 1, H), (B, H + 1), (H, B)])
def test_final_state_grad_of_wrong_shape(cell, name, shape, backend):
    h, cache = run_forward(cell, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: {name} ", f"shape {(B, H)}", "(B, H)", f"got {shape}")
    ):
        BACKWARD[cell](np.ones_like(h), cache, **{name: np.zeros(shape)})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, name", per_cell(FINALS))
def test_final_state_grad_of_wrong_rank(cell, name, backend):
    h, cache = run_forward(cell, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: {name} ", "2-D", "(B, H)", f"got shape {(B, T, H)}")
    ):
        BACKWARD[cell](None, cache, **{name: np.zeros((B, T, H))})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, name", per_cell(FINALS))
def test_final_state_grad_of_wrong_dtype(cell, name, backend):
    h, cache = run_forward(cell, backend=backend)
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: {name} ", "float32", "forward pass ran in float64")
    ):
        BACKWARD[cell](np.ones_like(h), cache, **{name: np.zeros((B, H), np.float32)})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_nan_in_dh(cell, backend):
    h, cache = run_forward(cell, backend=backend)
    dh = np.ones_like(h)
    dh[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=msg(f"{cell}_backward: dh ", "NaN", "index (1, 0, 2)", "finite")):
        BACKWARD[cell](dh, cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, name", per_cell(FINALS))
def test_inf_in_final_state_grad(cell, name, backend):
    h, cache = run_forward(cell, backend=backend)
    g = np.zeros((B, H))
    g[1, 3] = np.inf
    with pytest.raises(ValueError, match=msg(f"{cell}_backward: {name} ", "Inf", "index (1, 3)", "finite")):
        BACKWARD[cell](np.ones_like(h), cache, **{name: g})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, other", [(c, o) for c in CELLS for o in CELLS if o != c])
def test_cache_of_another_cell(cell, other, backend):
    h, cache = run_forward(other, backend=backend)
    with pytest.raises(
        ValueError,
        match=msg(f"{cell}_backward: cache ", f"{CACHE[cell].__name__} returned by", f"got {CACHE[other].__name__}"),
    ):
        BACKWARD[cell](np.ones_like(h), cache)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_cache_passed_to_lstm_backward(backend):
    h, cache = run_forward("gru", backend=backend)
    with pytest.raises(ValueError, match=msg("lstm_backward: cache ", "LSTMCache", "got GRUCache")):
        lstm_backward(np.ones_like(h), cache)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [None, {"h": 1}, "cache"])
def test_cache_that_is_not_a_cache(cell, bad):
    with pytest.raises(
        ValueError, match=msg(f"{cell}_backward: cache ", CACHE[cell].__name__, f"got {type(bad).__name__}")
    ):
        BACKWARD[cell](np.ones((B, T, H)), bad)


# ──────────────────────────────────────────────────────────────── dh=None: no per-step loss


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_dh_none_equals_zeros(cell, dtype, backend):
    """``dh=None`` means no loss on the per-step outputs: the same as passing zeros."""
    h, cache = run_forward(cell, dtype, backend=backend)
    rng = np.random.default_rng(1)
    finals = {"dh_last": rng.normal(size=(B, H)).astype(dtype)}
    if cell == "lstm":
        finals["dc_last"] = rng.normal(size=(B, H)).astype(dtype)
    got = BACKWARD[cell](None, cache, **finals)
    want = BACKWARD[cell](np.zeros_like(h), cache, **finals)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert np.any(got["dh0"] != 0)  # the final-state gradient did reach the initial state


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_backward_dh_none_with_dh_last(backend):
    """Only h_T carries a loss: ``dh=None`` with ``dh_last``, checked also against the last step's
    closed form."""
    h, cache = run_forward("lstm", backend=backend)
    dh_last = np.linspace(-1.0, 1.0, B * H).reshape(B, H)
    got = lstm_backward(None, cache, dh_last=dh_last)
    want = lstm_backward(np.zeros_like(h), cache, dh_last=dh_last)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # at the last step, dL/dc_T = dh_T · o_T · (1 − tanh²(c_T)) (no dc_last given)
    o_T = cache.gates[:, -1, 3 * H :]
    np.testing.assert_allclose(got["dc"][:, -1], dh_last * o_T * (1 - np.tanh(cache.c[:, -1]) ** 2), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_backward_with_nothing_gives_zero_gradients(cell, backend):
    h, cache = run_forward(cell, backend=backend)
    g = BACKWARD[cell](None, cache)
    for k, a in g.items():
        assert not np.any(a), k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_calls_do_not_modify_their_arguments(cell, backend):
    """Forward and backward leave the caller's arrays (inputs, dh, dh_last, dc_last) untouched."""
    args = valid_args(cell)
    h, cache = call_forward(cell, **args, backend=backend)
    rng = np.random.default_rng(2)
    grads = {"dh": rng.normal(size=h.shape)}
    grads.update({name: rng.normal(size=(B, H)) for name in FINALS[cell]})
    args_before = {k: a.copy() for k, a in args.items()}
    grads_before = {k: a.copy() for k, a in grads.items()}
    BACKWARD[cell](cache=cache, **grads)
    for k in args:
        np.testing.assert_array_equal(args[k], args_before[k], err_msg=k)
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_before[k], err_msg=k)
