"""Finite inputs whose results overflow: a ValueError that names the function, the result, the
largest input and what to do, from every cell, both backends and each driver of the fast path,
instead of NaN returned as a gradient (issue 17: ``lstm_backward(np.full((4, 5, 6), 3e38,
np.float32), cache)`` returned NaN in dx, dW, dU, db and dh0).

The check runs after the kernels, on the forward outputs and the gradients; the inputs were
checked finite on the way in, so a NaN or Inf there is an overflow."""

from __future__ import annotations

import re

import numpy as np
import pytest
from problems import CELLS, cell_id, make_problem

from bptt import functional as F
from bptt._validation import NonFiniteError
from bptt.settings import settings

BIG = {np.float32: 3e38, np.float64: 1.7e308}
LARGEST = {np.float32: np.finfo(np.float32).max, np.float64: np.finfo(np.float64).max}


@pytest.fixture(params=["default", "small", "blas", "numpy-loop", "two-threads"])
def fast_driver(request, monkeypatch):
    """The fast path as it chooses, or forced onto each of its drivers as tests/kernels/test_backends.py does."""
    if request.param != "default":
        small = request.param == "small"
        monkeypatch.setattr(settings, "small_step_fmas", 1 << 40 if small else -1)
        monkeypatch.setattr(settings, "loop_threads", int("2" if request.param == "two-threads" else "1"))
        if request.param == "numpy-loop":
            monkeypatch.setattr(settings, "blas_call", False)
    return request.param


def assert_overflow_error(excinfo, fn, dtype, largest):
    """The message names the function, a result, the largest input with its magnitude and a remedy."""
    assert isinstance(excinfo.value, NonFiniteError)  # so bptt.train.fit reports divergence
    message = str(excinfo.value)
    assert message.startswith(f"{fn}: the result ")
    assert re.search(r"holds (NaN|Inf) although every input is finite", message), message
    assert f"The largest input is {largest}: largest |value| " in message, message
    assert f"scale {largest} down" in message, message
    assert ("or run in float64" in message) == (dtype == np.float32), message


def test_the_issue_example_raises():
    """The exact call of the issue: LSTM (B, T, H) = (4, 5, 6), float32, dh of 3e38 everywhere."""
    p = make_problem("lstm", 4, 5, 3, 6, seed=0, dtype=np.float32)
    for backend in ("fast", "reference"):
        _, cache = F.lstm_forward(**p, backend=backend)
        with pytest.raises(ValueError, match=r"lstm_backward: .*dh: largest \|value\| 3\.0e\+38") as excinfo:
            F.lstm_backward(np.full((4, 5, 6), 3e38, np.float32), cache)
        assert_overflow_error(excinfo, "lstm_backward", np.float32, "dh")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_backward_overflow_raises(case, backend, dtype):
    cell, options = case
    B, T, I, H = 4, 5, 3, 6
    p = make_problem(cell, B, T, I, H, seed=1, dtype=dtype)
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    _, cache = forward(**p, **options, backend=backend)
    with pytest.raises(ValueError) as excinfo:  # dh_t + dh_{t+1} U ... overflows at the latest there
        backward(np.full((B, T, H), LARGEST[dtype], dtype), cache)
    assert_overflow_error(excinfo, f"{cell}_backward", dtype, "dh")
    # the final-state gradient alone overflows as well (dz_T of the largest values, then x dz_T in
    # dW), and is the one named
    with pytest.raises(ValueError) as excinfo:
        backward(np.zeros((B, T, H), dtype), cache, dh_last=np.full((B, H), LARGEST[dtype], dtype))
    assert_overflow_error(excinfo, f"{cell}_backward", dtype, "dh_last")
    # large but harmless: no error, finite gradients
    grads = backward(np.full((B, T, H), 1e3, dtype), cache)
    assert all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("keep_cache", [True, False], ids=["cached", "inference"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_backward_overflow_raises_on_each_fast_driver(cell, keep_cache, fast_driver):
    """Every driver (B = 64, H = 16: BLAS or bptt's micro-kernel per step unless forced small);
    ``keep_cache`` here is the backward's: False spends the cache."""
    B, T, I, H = 64, 4, 5, 16
    p = make_problem(cell, B, T, I, H, seed=2, dtype=np.float32)
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    _, cache = forward(**p, backend="fast")
    with pytest.raises(ValueError) as excinfo:
        backward(np.full((B, T, H), 3e38, np.float32), cache, keep_cache=keep_cache)
    assert_overflow_error(excinfo, f"{cell}_backward", np.float32, "dh")


@pytest.mark.parametrize("lengths", [None, [4, 1, 3]], ids=["full", "lengths"])
@pytest.mark.parametrize("keep_cache", [True, False], ids=["cached", "inference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_unbounded_rnn_forward_overflow_raises(activation, backend, dtype, keep_cache, lengths):
    """ReLU and identity RNNs: x W of the largest finite values overflows to Inf (h is unbounded).
    With lengths the fast path checks each sequence's final state in its packed layout (the
    identity RNN's; the ReLU's, every state)."""
    B, T, I, H = 3, 4, 2, 5
    p = make_problem("rnn", B, T, I, H, seed=3, dtype=dtype)
    p["x"] = np.full((B, T, I), BIG[dtype], dtype)
    p["W"] = np.abs(p["W"]) + 1
    with pytest.raises(ValueError) as excinfo:
        F.rnn_forward(**p, activation=activation, backend=backend, keep_cache=keep_cache, lengths=lengths)
    assert_overflow_error(excinfo, "rnn_forward", dtype, "x")
    assert "the result h holds" in str(excinfo.value)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_forward_overflow_in_the_last_units_of_final_states_raises(backend, reverse):
    """An overflow in some units only of the final states is caught: every unit is checked. All
    lengths 1 (each final state is the first step's, no state product to spread it), W's columns
    of the first units zero, so only units I … H − 1 overflow (the fast path reads the final
    states from rows of its packed layout)."""
    B, T, I, H = 3, 3, 2, 5
    p = make_problem("rnn", B, T, I, H, seed=7, dtype=np.float32)
    p["x"] = np.full((B, T, I), 3e38, np.float32)
    p["W"] = np.abs(p["W"]) + 1
    p["W"][:, :I] = 0
    with pytest.raises(ValueError) as excinfo:
        F.rnn_forward(**p, activation="identity", backend=backend, lengths=[1, 1, 1], reverse=reverse)
    assert_overflow_error(excinfo, "rnn_forward", np.float32, "x")
    assert "the result h holds Inf" in str(excinfo.value)


@pytest.mark.parametrize("keep_cache", [True, False], ids=["cached", "inference"])
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_unbounded_rnn_forward_overflow_raises_on_each_fast_driver(activation, keep_cache, fast_driver):
    B, T, I, H = 64, 4, 5, 16
    p = make_problem("rnn", B, T, I, H, seed=4, dtype=np.float32)
    p["x"] = np.full((B, T, I), 3e38, np.float32)
    p["W"] = np.abs(p["W"]) + 1
    with pytest.raises(ValueError) as excinfo:
        F.rnn_forward(**p, activation=activation, backend="fast", keep_cache=keep_cache)
    assert_overflow_error(excinfo, "rnn_forward", np.float32, "x")


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("case", CELLS[:4], ids=cell_id)
def test_saturating_forward_of_large_inputs_is_finite(case, backend):
    """Pre-activations that overflow to +Inf or −Inf with one sign saturate the gates (σ(±Inf) = 1
    or 0, tanh(±Inf) = ±1): the bounded cells' outputs stay finite (|h| ≤ 1, or the GRU's
    ≤ max(1, |h0|), which it may carry), and no error is raised."""
    cell, options = case
    B, T, I, H = 3, 4, 2, 5
    p = make_problem(cell, B, T, I, H, seed=6, dtype=np.float32)
    p["x"] = np.full((B, T, I), 3e38, np.float32)
    p["W"] = np.sign(p["W"]) * (np.abs(p["W"]) + 1)
    h, _ = getattr(F, f"{cell}_forward")(**p, **options, backend=backend)
    bound = max(1.0, float(np.abs(p["h0"]).max())) if cell == "gru" else 1.0
    assert np.isfinite(h).all() and (np.abs(h) <= bound + 1e-6).all()
