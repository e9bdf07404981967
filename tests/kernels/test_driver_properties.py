"""Random sizes through every driver of the fast path, against the reference backend.

bptt.functional plans each call (``_loop_plan``, ``_units_split``, ``_time_major_inference``,
``_dx_in_loop``, ``_dot_tiles_for``) and runs one of several compiled drivers; tests/kernels/test_backends.py
runs each on a fixed list of shapes. Here hypothesis draws the sizes (with the constraints a
driver needs to be chosen at all: multiples of the micro-kernel's tiles, batches that can be cut),
the cell, the dtype, whether ``dh`` is given, and whether the backward spends its cache, and
forces the driver the way those tests do (through bptt.settings). Each example
asserts first that the plan is the driver named, then that every output agrees with the
reference backend: float64 within 1e-10 (normwise relative), float32 within 1e-5 of the float64
reference on the same (rounded) values elementwise, with an absolute floor of 1e-5 of the
array's largest value plus :data:`FLOOR32`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from problems import CELLS, GATES, make_problem, rel

from bptt import _threads, functional as F
from bptt.kernels.blas import gemm_address
from bptt.kernels.microkernel import MR, NC, can_tile
from bptt.functional import _plan
from bptt.settings import OwnKernel, override

#: The settings (bptt.settings) that force each driver, as tests/kernels/test_backends.py,
#: test_loop_threads.py and test_microkernel.py force them.
DRIVERS = {
    # as a user gets it: nothing forced
    "default": {},
    # the hand-written product per step after the input projection of all steps, which in float32
    # runs on the micro-kernel's tiles and the hand-written product for the rows and columns left over
    "projection": {"loop_threads": 1, "small_step_fmas": 1 << 40},
    # the compiled loop with the hand-written product
    "small": {"own_kernel": OwnKernel.OFF, "loop_threads": 1, "small_step_fmas": 1 << 40},
    # the compiled loop calling NumPy's BLAS per step
    "blas": {"own_kernel": OwnKernel.OFF, "loop_threads": 1, "small_step_fmas": -1},
    # bptt's micro-kernel per step (OwnKernel.ALL), dx in the backward loop, the dot tiles for the
    # weight gradients (from any size) and the micro-kernel's input projection
    "micro-kernel": {"own_kernel": OwnKernel.ALL, "loop_threads": 1, "small_step_fmas": -1, "dot_tiles_two_threads_flops": 0},
    # the hand-written loop's size with the micro-kernel taking the products (blas 0, own ALL)
    "small-micro-kernel": {"own_kernel": OwnKernel.ALL, "loop_threads": 1, "small_step_fmas": 1 << 40},
    # the Python loop with np.matmul: no BLAS symbol callable from compiled code
    "numpy-loop": {"blas_call": False, "loop_threads": 1, "small_step_fmas": -1},
    # two threads, each over a part of the batch (BLAS or the hand-written product per part), the
    # input projection and the dot tiles on two threads too
    "two-threads": {"own_kernel": OwnKernel.OFF, "loop_threads": 2, "projection_two_threads_flops": 0},
    # two threads, each over half of the hidden units, meeting after every step (micro-kernel)
    "units-split": {"own_kernel": OwnKernel.ALL, "loop_threads": 2, "small_step_fmas": -1, "dot_tiles_two_threads_flops": 0},
}


@st.composite
def problems(draw, driver):
    """``(cell, options, dtype, (B, T, I, H))`` suited to ``driver``."""
    case = draw(st.sampled_from(CELLS))
    cell, options = case
    dtype = np.float32 if driver in ("micro-kernel", "small-micro-kernel", "units-split") else draw(
        st.sampled_from([np.float32, np.float64]))
    T, I = draw(st.integers(1, 7)), draw(st.integers(1, 12))
    if driver in ("micro-kernel", "small-micro-kernel"):  # a tile over G·H rows or H rows
        B = draw(st.sampled_from([NC, 2 * NC, 3 * NC]))
        H = draw(st.integers(1, 6)) * MR
    elif driver == "units-split":  # each half of the units a tile's rows over the whole batch
        if cell == "gru" and not options["reset_after"]:
            case = cell, options = ("gru", {"reset_after": True})  # reset-before never splits by units
        B = draw(st.sampled_from([NC, 2 * NC]))
        H = draw(st.integers(2, 6)) * MR
    elif driver == "two-threads":  # a cut on a 64-byte boundary leaving both parts non-empty
        B = draw(st.integers(17, 96))
        H = draw(st.integers(1, 24))
    elif driver == "projection":  # no tile for the per-step product: it stays hand-written
        B, H = draw(st.integers(1, 96)), draw(st.integers(1, 24))
        if can_tile(GATES[cell] * H, B) or can_tile(H, B):
            B += 1
    else:
        B, H = draw(st.integers(1, 48)), draw(st.integers(1, 24))
    return cell, options, dtype, (B, T, I, H)


def assert_plan(driver, cell, dtype, B, T, I, H):
    """The plan is the driver named (so that a forcing that stopped working fails, not passes)."""
    G = GATES[cell]
    plan = _plan._loop_plan(T, B, H, G, dtype)
    if driver in ("blas", "micro-kernel", "two-threads", "units-split"):
        assert gemm_address(np.dtype(dtype)), "NumPy's BLAS has no cblas GEMM bptt can call: no BLAS driver to test"
    if driver in ("two-threads", "units-split"):
        assert _threads.blas_max_threads() >= 2, "NumPy's BLAS runs one thread here: loops never split"
    if driver == "default":
        assert plan.blas is not None or not gemm_address(np.dtype(dtype))
    elif driver == "projection":
        assert plan.blas == 0 and plan.split == 0 and not _plan._projection_in_loop(plan, I, H, G)
    elif driver == "small":
        assert (plan.blas, plan.own, plan.split) == (0, 0, 0)
    elif driver == "blas":
        assert plan.blas and plan.own == 0 and plan.split == 0
    elif driver == "micro-kernel":
        assert plan.blas and plan.own == 2 and plan.split == 0
        assert can_tile(G * H, B) or can_tile(H, B)
    elif driver == "small-micro-kernel":
        assert plan.blas == 0 and plan.own == 2 and plan.split == 0
    elif driver == "numpy-loop":
        assert plan.blas is None
    elif driver == "two-threads":
        assert 0 < plan.split < B
    elif driver == "units-split":
        assert 0 < _plan._units_split(T, B, H, G, dtype, plan) < H


#: The float32 comparison's absolute floor beyond 1e-5 of the array's largest value: the problems'
#: inputs, weights and loss gradients are O(1), so an output is a sum of O(1) terms, and one that
#: is small by cancellation carries float32 rounding of ~1e-7 absolute (seen: h = -5.2e-4 of a
#: one-unit RNN off by 1.6e-8, 3e-5 relative).
FLOOR32 = 1e-6


def close(actual, expected, dtype, what, terms: int = 1):
    """``terms``: how many O(1) products each value sums (a weight gradient sums one per step and
    sequence, B·T): float32 rounding of a sum grows as its square root, so the absolute floor does
    (seen: dU of a one-unit RNN, 246 terms summing to 0.0807, off by 3.6e-6 in float32, the fast
    and the reference path alike within float32's rounding of that sum)."""
    if dtype == np.float64:
        assert rel(actual, expected) <= 1e-10, (what, rel(actual, expected))
    else:
        expected = np.asarray(expected, np.float64)
        atol = 1e-5 * np.abs(expected).max(initial=0.0) + FLOOR32 * np.sqrt(terms)
        np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-5, atol=atol, err_msg=what)


def run_against_reference(driver, problem, data):
    cell, options, dtype, (B, T, I, H) = problem
    forced = DRIVERS[driver]
    # the float64 reference runs on the same values as the fast path (float32: rounded first)
    p = {k: a.astype(dtype) for k, a in make_problem(cell, B, T, I, H, seed=data.draw(st.integers(0, 2**16), label="seed"),
                                                      activation=options.get("activation", "tanh")).items()}
    p64 = {k: a.astype(np.float64) for k, a in p.items()}
    rng = np.random.default_rng(B * T + I * H)
    dh64 = rng.normal(size=(B, T, H)).astype(dtype).astype(np.float64) if data.draw(st.booleans(), label="with dh") else None
    finals64 = {"dh_last": rng.normal(size=(B, H))} | ({"dc_last": rng.normal(size=(B, H))} if cell == "lstm" else {})
    finals64 = {k: a.astype(dtype).astype(np.float64) for k, a in finals64.items()}
    keep_cache = data.draw(st.booleans(), label="backward keeps its cache")
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")

    h_ref, cache_ref = forward(**p64, **options, backend="reference")
    g_ref = backward(dh64, cache_ref, **finals64)
    with override(**forced):
        assert_plan(driver, cell, dtype, B, T, I, H)
        h_inf, none = forward(**p, **options, backend="fast", keep_cache=False)
        h, cache = forward(**p, **options, backend="fast")
        gates = np.array(cache.gates)
        c = np.array(cache.c) if cell == "lstm" else None
        dh = None if dh64 is None else dh64.astype(dtype)
        g = backward(dh, cache, **{k: a.astype(dtype) for k, a in finals64.items()}, keep_cache=keep_cache)
    assert none is None and cache.layout == "ftb"
    assert h.dtype == h_inf.dtype == dtype and h.shape == h_inf.shape == (B, T, H)
    close(h, h_ref, dtype, "h")
    close(h_inf, h_ref, dtype, "h (inference)")
    close(gates, cache_ref.gates, dtype, "gates")
    if cell == "lstm":
        close(c, cache_ref.c, dtype, "c")
    assert set(g) == set(g_ref)
    for k in g_ref:
        assert g[k].shape == g_ref[k].shape and g[k].dtype == dtype, k
        close(g[k], g_ref[k], dtype, k, terms=B * T if k in ("dW", "dU", "db", "db_u") else 1)


@pytest.mark.parametrize("driver", list(DRIVERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_fast_driver_matches_the_reference_on_random_sizes(driver, data):
    run_against_reference(driver, data.draw(problems(driver), label="problem"), data)
