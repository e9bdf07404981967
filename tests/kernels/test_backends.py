"""The fast (Numba) path against the plain NumPy reference, on each of its drivers.

The reference kernels are the ones the finite-difference and PyTorch tests verify in detail; here
every output of the fast path must match them: to 1e-12 in float64, and in float32 to within 1e-5
of the float64 reference (the project's precision standard).
"""

from __future__ import annotations

import numpy as np
import pytest
from problems import CELLS, cell_id, make_problem, rel

from bptt import functional as F
from bptt.settings import OwnKernel, from_environment, settings
from bptt.functional import _arrays

# (B, T, I, H); the last two suit bptt's own float32 micro-kernel (B a multiple of 32, G·H and H of 8)
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 1), (3, 1, 2, 5), (5, 7, 3, 6), (8, 40, 5, 12), (32, 6, 5, 16), (64, 3, 4, 8)]


@pytest.fixture(params=["small", "blas", "own", "numpy-loop", "two-threads", "two-threads-small"])
def driver(request, monkeypatch):
    """Force, for every size, the compiled loop with the hand-written product (``small``), the
    compiled loop calling NumPy's BLAS (``blas``), the compiled loop with bptt's own float32
    micro-kernel wherever the shapes suit it and BLAS elsewhere (``own``), the Python loop with
    ``np.matmul`` that runs when no BLAS symbol can be called (``numpy-loop``), or the compiled
    loop on two threads, each over a part of the batch, wherever the batch can be cut on a 64-byte
    boundary (B ≥ 16 in float64, 32 in float32), with the micro-kernel and BLAS
    (``two-threads``) or the hand-written product (``two-threads-small``)."""
    small = request.param in ("small", "two-threads-small")
    monkeypatch.setattr(settings, "small_step_fmas", 1 << 40 if small else -1)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL if request.param in ("own", "two-threads") else OwnKernel.OFF)
    monkeypatch.setattr(settings, "loop_threads", 2 if request.param.startswith("two-threads") else 1)
    if request.param == "numpy-loop":
        monkeypatch.setattr(settings, "blas_call", False)
    elif request.param in ("blas", "own", "two-threads"):
        from bptt.kernels.blas import gemm_address

        if not gemm_address(np.float64) or not gemm_address(np.float32):
            pytest.skip("NumPy's BLAS has no cblas GEMM bptt can call")
    return request.param


def run(cell, options, problem, backend, dh, finals, keep_cache=True):
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    h, cache = forward(**problem, **options, backend=backend, keep_cache=keep_cache)
    if not keep_cache:
        return h, None, None
    return h, cache, backward(dh, cache, **finals)


def finals_for(cell, B, H, rng, dtype):
    f = {"dh_last": rng.normal(size=(B, H)).astype(dtype)}
    if cell == "lstm":
        f["dc_last"] = rng.normal(size=(B, H)).astype(dtype)
    return f


@pytest.mark.parametrize("with_dh", [True, False], ids=["dh", "final-only"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_fast_equals_reference_float64(case, shape, with_dh, driver):
    cell, options = case
    B, T, I, H = shape
    problem = make_problem(cell, B, T, I, H, seed=B + 10 * T + 100 * H)
    rng = np.random.default_rng(3)
    dh = rng.normal(size=(B, T, H)) if with_dh else None
    finals = finals_for(cell, B, H, rng, np.float64)
    h_r, c_r, g_r = run(cell, options, problem, "reference", dh, finals)
    h_f, c_f, g_f = run(cell, options, problem, "fast", dh, finals)
    assert c_f.layout == "ftb" and c_r.layout == "tbf"
    assert rel(h_f, h_r) <= 1e-12
    assert rel(c_f.gates, c_r.gates) <= 1e-12
    if cell == "lstm":
        assert rel(c_f.c, c_r.c) <= 1e-12
    assert set(g_f) == set(g_r)
    for k in g_r:
        assert g_f[k].shape == g_r[k].shape, k
        assert rel(g_f[k], g_r[k]) <= 1e-12, (k, rel(g_f[k], g_r[k]))


@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_backward_reads_a_batch_major_dh_in_blocks_and_the_rest(case, driver):
    """The backward loops read the caller's batch-major dh in blocks of 16 units and the remaining
    units one by one: H = 37 is two blocks and 5 more. dh is a strided view here, not contiguous."""
    cell, options = case
    B, T, I, H = 6, 5, 3, 37
    problem = make_problem(cell, B, T, I, H, seed=11)
    rng = np.random.default_rng(12)
    dh = rng.normal(size=(B, T, 2 * H))[:, :, ::2]
    finals = finals_for(cell, B, H, rng, np.float64)
    _, _, g_r = run(cell, options, problem, "reference", dh, finals)
    _, _, g_f = run(cell, options, problem, "fast", dh, finals)
    for k in g_r:
        assert rel(g_f[k], g_r[k]) <= 1e-12, (k, rel(g_f[k], g_r[k]))


def float32_and_reference(case, shape, seed, dh_seed):
    """A float32 problem run on the fast path and the same values in float64 on the reference:
    ``(h_ref, grads_ref, h_fast, grads_fast, (problem32, dh32, finals32))``."""
    cell, options = case
    B, T, I, H = shape
    p64 = make_problem(cell, B, T, I, H, seed=seed, memory=True, activation=options.get("activation", "tanh"))
    p32 = {k: a.astype(np.float32) for k, a in p64.items()}
    p64 = {k: a.astype(np.float64) for k, a in p32.items()}  # the same values in both precisions
    rng = np.random.default_rng(dh_seed)
    dh = rng.normal(size=(B, T, H)).astype(np.float32)
    f32 = finals_for(cell, B, H, rng, np.float32)
    f64 = {k: a.astype(np.float64) for k, a in f32.items()}
    h_r, _, g_r = run(cell, options, p64, "reference", dh.astype(np.float64), f64)
    h_f, _, g_f = run(cell, options, p32, "fast", dh, f32)
    return h_r, g_r, h_f, g_f, (p32, dh, f32)


# B a multiple of 32, G·H and H of 8: the ``own`` driver's micro-kernel runs; H a multiple of 16:
# the backward loops' products on U packed in panels (bptt.kernels.microkernel.pack_rows)
@pytest.mark.parametrize("shape", [(32, 60, 6, 24), (32, 40, 6, 32)], ids=["H24", "H32-packed"])
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_fast_float32_within_1e5_of_float64_reference(case, driver, shape):
    cell, options = case
    h_r, g_r, h_f, g_f, (p32, dh, f32) = float32_and_reference(case, shape, seed=5, dh_seed=4)
    h_i, _, _ = run(cell, options, p32, "fast", dh, f32, keep_cache=False)
    assert h_f.dtype == h_i.dtype == np.float32
    assert rel(h_f, h_r) <= 1e-5
    assert rel(h_i, h_r) <= 1e-5
    for k in g_r:
        assert g_f[k].dtype == np.float32, k
        assert rel(g_f[k], g_r[k]) <= 1e-5, (k, rel(g_f[k], g_r[k]))


# Weight-gradient products per backward call: LSTM and RNN [dW; dU] in one; GRU dW, and dU in two
# column blocks (the r and z blocks over dz, the n block over dL/d(h U_n + b_un) or r ⊙ h).
DOT_PRODUCTS = {"lstm": 1, "rnn": 1, "gru-reset_after=True": 3, "gru-reset_after=False": 3}


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 5, 6), (32, 60, 6, 24), (16, 33, 9, 13)],
                         ids=lambda s: "B{}-T{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_weight_gradients_on_dot_tiles(case, shape, threads, monkeypatch):
    """Every weight-gradient product on bptt's dot tiles (its two-thread threshold set to 0), on one and
    two threads: float32 within 1e-5 of the float64 reference, dx and the bias gradients too."""
    monkeypatch.setattr(settings, "dot_tiles_two_threads_flops", 0)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    monkeypatch.setattr(settings, "loop_threads", int(threads))
    calls = []
    dot_product = _arrays._dot_product
    monkeypatch.setattr(_arrays, "_dot_product", lambda *a, **k: calls.append(a[0].shape) or dot_product(*a, **k))
    _, g_r, _, g_f, _ = float32_and_reference(case, shape, seed=7, dh_seed=8)
    assert len(calls) == DOT_PRODUCTS[cell_id(case).split("-activation")[0]], calls
    for k in g_r:
        assert rel(g_f[k], g_r[k]) <= 1e-5, (k, rel(g_f[k], g_r[k]))


@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_small_weight_gradients_take_the_dot_tiles_on_one_thread(case, monkeypatch):
    """Below ``settings.dot_tiles_two_threads_flops`` the weight-gradient products still take the
    dot tiles (faster than OpenBLAS there on one thread: docs/performance.md, "Small weight
    gradients"), on one thread: no second thread woken for them."""
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    calls, woken = [], []
    dot_product = _arrays._dot_product
    monkeypatch.setattr(_arrays, "_dot_product", lambda *a, **k: calls.append(a[0].shape) or dot_product(*a, **k))
    two = _arrays.run_in_two_threads
    monkeypatch.setattr(_arrays, "run_in_two_threads", lambda *a: woken.append(a[0]) or two(*a))
    _, g_r, _, g_f, _ = float32_and_reference(case, (16, 33, 9, 13), seed=3, dh_seed=4)
    assert len(calls) == DOT_PRODUCTS[cell_id(case).split("-activation")[0]], calls
    assert woken == []
    for k in g_r:
        assert rel(g_f[k], g_r[k]) <= 1e-5, (k, rel(g_f[k], g_r[k]))


@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_inference_path_keeps_no_cache(case, backend, driver):
    cell, options = case
    problem = make_problem(cell, 4, 9, 3, 5, seed=2)
    h_train, cache = getattr(F, f"{cell}_forward")(**problem, **options, backend=backend)
    h_infer, none = getattr(F, f"{cell}_forward")(**problem, **options, backend=backend, keep_cache=False)
    assert none is None and cache is not None
    np.testing.assert_array_equal(h_infer, h_train)


def test_backend_errors_and_environment(monkeypatch):
    p = make_problem("lstm", 2, 3, 2, 4)
    with pytest.raises(ValueError, match=r"lstm_forward: backend must be one of 'fast', 'reference'; got 'gpu'"):
        F.lstm_forward(**p, backend="gpu")
    monkeypatch.setattr(settings, "backend", "reference")
    assert F.default_backend() == "reference"
    assert F.lstm_forward(**p)[1].layout == "tbf"
    monkeypatch.setattr(settings, "backend", "fast")
    assert F.lstm_forward(**p)[1].layout == "ftb"
    with pytest.raises(ValueError, match=r"the environment variable BPTT_BACKEND must be one of fast, reference; got 'cuda'"):
        from_environment({"BPTT_BACKEND": "cuda"})


def test_float32_tanh_and_sigmoid_approximations():
    """The float32 rational tanh (and σ built on it) against float64 libm over their whole range."""
    from bptt.kernels import fast

    z = np.concatenate([np.linspace(-20, 20, 200001), [-1e30, -88.0, -1e-30, 0.0, 1e-30, 88.0, 1e30]]).astype(np.float32)
    out = np.empty_like(z)
    fast.activate_tanh(z, out)
    exact = np.tanh(z.astype(np.float64))
    assert np.abs(out - exact).max() <= 4 * np.finfo(np.float32).eps  # a few float32 ulps of 1
    assert np.all(np.abs(out) <= 1.0)
    fast.activate_sigmoid(z, out)
    exact = 0.5 * (1.0 + np.tanh(z.astype(np.float64) / 2))  # σ without overflow
    assert np.abs(out - exact).max() <= 4 * np.finfo(np.float32).eps
    assert np.all((out >= 0.0) & (out <= 1.0))


@pytest.mark.parametrize("H", [1, 3])
@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_inputs_are_never_modified(case, backend, H, driver):
    """Forward and backward leave every array the caller passed untouched, on both backends and
    both drivers; H = 1 is included because a transposed (B, 1) state is already contiguous, so a
    careless conversion would hand the kernels a view of the caller's array."""
    cell, options = case
    problem = make_problem(cell, 4, 5, 2, H, seed=9)
    rng = np.random.default_rng(0)
    dh = rng.normal(size=(4, 5, H))
    finals = finals_for(cell, 4, H, rng, np.float64)
    saved = {k: a.copy() for k, a in {**problem, **finals, "dh": dh}.items()}
    run(cell, options, problem, backend, dh, finals)
    for k, a in {**problem, **finals, "dh": dh}.items():
        np.testing.assert_array_equal(a, saved[k], err_msg=k)


@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_outputs_sharing_the_cache_are_read_only(case, backend):
    """An in-place edit of h (or of cache.gates / cache.c) would change what backward
    differentiates; it raises instead. A copy is writable and leaves the gradients alone."""
    cell, options = case
    problem = make_problem(cell, 1, 4, 2, 3, seed=1)  # B = 1: also the case where x could be a view
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    h, cache = forward(**problem, **options, backend=backend)
    before = backward(np.ones_like(h), cache)["dW"].copy()
    with pytest.raises(ValueError, match="read-only"):
        h -= 0.1
    with pytest.raises(ValueError, match="read-only"):
        cache.gates[...] = 0
    problem["x"] += 1.0  # the caller may change its input: the cache holds its own copy
    y = h.copy()
    y -= 0.1
    np.testing.assert_array_equal(backward(np.ones_like(h), cache)["dW"], before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (5, 7, 3, 6), (32, 6, 5, 16), (64, 3, 4, 8)],
                         ids=lambda s: "B{}-T{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_backward_spending_the_cache_gives_the_same_gradients(case, backend, shape, dtype, driver):
    """``keep_cache=False``: the same gradients to the bit; the fast LSTM and GRU write dz over the
    cache's gate values, the LSTM dc over its cell states (so they share that memory, and do not
    when the cache is kept); the spent cache refuses a second backward, its gates and cell
    states, and keeps its hidden states."""
    cell, options = case
    B, T, I, H = shape
    problem = {k: a.astype(dtype) for k, a in make_problem(cell, B, T, I, H, seed=7).items()}
    rng = np.random.default_rng(8)
    dh = rng.normal(size=(B, T, H)).astype(dtype)
    finals = finals_for(cell, B, H, rng, dtype)
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    h, cache = forward(**problem, **options, backend=backend)
    kept = backward(dh, cache, **finals)
    assert not np.shares_memory(kept["dz"], cache.gates_s)
    if cell == "lstm":
        assert not np.shares_memory(kept["dc"], cache.c_s)
    h_before = cache.h.copy()
    spent = backward(dh, cache, **finals, keep_cache=False)
    assert set(spent) == set(kept)
    for k in kept:
        np.testing.assert_array_equal(spent[k], kept[k], err_msg=k)
    assert np.shares_memory(spent["dz"], cache.gates_s) == (cell in ("lstm", "gru") and backend == "fast")
    if cell == "lstm":
        assert np.shares_memory(spent["dc"], cache.c_s) == (backend == "fast")
        with pytest.raises(ValueError, match="cache.c: this cache was spent by lstm_backward"):
            cache.c
    assert cache.spent_by == f"{cell}_backward"
    with pytest.raises(ValueError, match=f"spent by an earlier {cell}_backward.*keep_cache=False.*run the forward"):
        backward(dh, cache, **finals)
    with pytest.raises(ValueError, match="cache.gates: this cache was spent"):
        cache.gates
    np.testing.assert_array_equal(cache.h, h_before)


@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_backward_keep_cache_must_be_a_bool(case):
    cell, options = case
    problem = make_problem(cell, 2, 3, 2, 3, seed=1)
    h, cache = getattr(F, f"{cell}_forward")(**problem, **options)
    with pytest.raises(ValueError, match=r"keep_cache must be True or False; got 'no'"):
        getattr(F, f"{cell}_backward")(np.ones_like(h), cache, keep_cache="no")
    assert cache.spent_by is None  # nothing spent by a call that was refused
    getattr(F, f"{cell}_backward")(np.ones_like(h), cache, keep_cache=np.bool_(False))
    assert cache.spent_by == f"{cell}_backward"


@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_float32_inference_within_rounding_of_the_cached_forward(case, driver):
    """In float32 the LSTM's inference loop fuses its cell into one pass (bptt.kernels.fast.
    lstm_cell_forward_inference), which fastmath may contract differently from the staged cell of
    the cached forward: the two agree to float32 rounding (in float64 exactly, tested above)."""
    cell, options = case
    problem = {k: a.astype(np.float32) for k, a in make_problem(cell, 32, 20, 6, 16, seed=3).items()}
    h_train, _ = getattr(F, f"{cell}_forward")(**problem, **options)
    h_infer, _ = getattr(F, f"{cell}_forward")(**problem, **options, keep_cache=False)
    assert rel(h_infer, h_train) <= 1e-6
