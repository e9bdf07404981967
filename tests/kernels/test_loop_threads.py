"""The time loop on two threads, each over its own part of the batch.

Every sequence of a batch is independent until the weight gradients (GEMMs after the loop), so a
loop cut between two threads must give what the one-thread loop gives; test_backends.py runs its
reference comparisons on this driver too. Here: where the batch is cut, that results do not
depend on the cut, that failures reach the caller, and that a forked child can still cut.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from problems import CELLS, GATES, cell_id, make_problem, rel
from threadpoolctl import threadpool_limits

from bptt import _threads, functional as F
from bptt.kernels.microkernel import WIDE
from bptt.settings import OwnKernel, settings
from bptt.functional import _arrays, _plan

pytestmark = pytest.mark.usefixtures("fresh_worker")  # tests/kernels/conftest.py


@pytest.fixture
def loop_threads(monkeypatch):
    def set_to(n: int | None):
        monkeypatch.setattr(settings, "loop_threads", n)

    return set_to


@pytest.mark.parametrize(
    "T, B, H, G, dtype, expected",
    [
        (30, 256, 64, 4, np.float32, 128),  # the medium row: parts of 128, micro-kernel in both
        (100, 64, 128, 4, np.float32, 32),  # the long row: parts of 32
        (50, 128, 256, 3, np.float32, 64),
        # the large row: with AVX-512, parts of 16 on the micro-kernel's 16 x 16 tiles; without, the
        # micro-kernel stays out by default and BLAS on 16 columns is too slow
        (200, 32, 512, 4, np.float32, 16 if WIDE else 0),
        # H % 16 != 0: no 16 x 16 tiles, and BLAS on 16 columns is too slow; without AVX-512 the
        # 4 x 16 tile takes this loop's products (2·32·4·120² = 3.7 M flops a step) on 16 columns
        (200, 32, 120, 4, np.float32, 0 if WIDE else 16),
        (200, 32, 512, 4, np.float64, 0),  # float64: BLAS only
        (10, 100, 10, 4, np.float32, 0),  # the tutorial row: too little work to pay for a thread
        (50, 100, 256, 4, np.float32, 48),  # cut on a 64-byte boundary (16 float32)
        (50, 100, 256, 4, np.float64, 48),  # (8 float64)
        (50, 96, 256, 4, np.float32, 48),  # 96 is no multiple of 64: 16-column steps
        (50, 40, 256, 4, np.float64, 0),  # a part of 16 columns is too narrow
    ],
)
def test_where_the_batch_is_cut(loop_threads, monkeypatch, T, B, H, G, dtype, expected):
    loop_threads(None)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.AUTO)
    if _threads.blas_max_threads() < 2:
        pytest.skip("NumPy's BLAS runs one thread on this machine: loops never split")
    assert _plan._loop_split(T, B, H, G, dtype) == expected


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_packed_loops_weigh_the_real_steps_only(loop_threads, monkeypatch, cell):
    """With lengths, the rule weighs the loop's real work: B = 256, T = 40, H = 64 float32 cuts
    the batch when most steps are real and keeps one thread when the sequences are short (mean
    length 2: the work of a padded T = 2 loop, which stays on one thread)."""
    loop_threads(None)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.AUTO)
    monkeypatch.setattr(_plan, "blas_max_threads", lambda: 2)  # the rule as on a machine of two or more cores
    B, T, H = 256, 40, 64
    G = GATES[cell]
    assert _plan._loop_split(T, B, H, G, np.float32) and not _plan._loop_split(2, B, H, G, np.float32)
    p = make_problem(cell, B, T, 16, H, seed=3, dtype=np.float32)
    fwd = getattr(F, f"{cell}_forward")
    for lengths, parts in ((np.full(B, T - 1), 2), (np.full(B, 2), 1), (np.r_[np.ones(B - 1, int), T], 1)):
        _, cache = fwd(**p, lengths=lengths)
        assert len(cache.arrangement.parts) - 1 == parts, lengths


@pytest.mark.parametrize("ragged", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_calls_on_two_threads_run_within_own_threads(loop_threads, monkeypatch, cell, ragged):
    """A forward or backward call whose loop runs on bptt's two threads runs within
    bptt._threads.own_threads (NumPy's BLAS on one thread, bptt's worker spinning between its
    tasks; without lengths no OpenBLAS thread then spins beside the worker: the RNN's medium step
    4.5 → 3.3 ms); one whose loop runs on one thread does not (its GEMMs may want BLAS's threads).
    Either way the results are those of one thread."""
    from bptt.functional import _packed

    entered = []
    module = _packed if ragged else _plan
    real = module.own_threads
    monkeypatch.setattr(module, "own_threads", lambda: entered.append(1) or real())
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    B, T, H = 256, 12, 64
    p = make_problem(cell, B, T, 16, H, seed=3, dtype=np.float32)
    seq = {"lengths": np.random.default_rng(4).integers(1, T + 1, B)} if ragged else {}
    dh = np.random.default_rng(5).normal(size=(B, T, H)).astype(np.float32)
    fwd, bwd = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    results = {}
    for threads in (1, 2):
        loop_threads(threads)
        entered.clear()
        h, cache = fwd(**p, **seq)
        g = bwd(dh, cache, keep_cache=False)
        two = threads == 2 and _threads.blas_max_threads() >= 2
        if ragged:
            assert two == (len(cache.arrangement.parts) == 3)
        assert len(entered) == (2 if two else 0), (threads, entered)
        results[threads] = {"h": h, **{k: g[k] for k in ("dx", "dW", "dU", "db", "dh0")}}
    for k, v in results[1].items():
        assert rel(results[2][k], v) <= 1e-6, k


def test_one_thread_when_asked_or_when_blas_is_limited_to_one(loop_threads, monkeypatch):
    medium = (30, 256, 64, 4, np.float32)
    loop_threads(1)
    assert _plan._loop_split(*medium) == 0
    loop_threads(None)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.AUTO)
    with threadpool_limits(1, user_api="blas"):  # the user's limit on NumPy's BLAS holds for bptt's threads too
        assert _plan._loop_split(*medium) == 0
    loop_threads(2)  # forced: even tiny loops split, wherever a 64-byte boundary allows
    if _threads.blas_max_threads() >= 2:
        assert _plan._loop_split(2, 16, 3, 1, np.float64) == 8
        assert _plan._loop_split(2, 8, 3, 1, np.float64) == 0


@pytest.mark.parametrize(
    "T, B, H, G, dtype, wide, narrow",
    [
        # wide: with AVX-512 (8-row tiles); narrow: without (4-row tiles, and the micro-kernel only
        # where a step's product 2·B·G·H² is at most settings.narrow_cpu_own_kernel_flops, 10 M)
        (200, 32, 512, 4, np.float32, 256, 0),  # the large row: 8 x 32 tiles over the whole batch in both parts
        (30, 256, 64, 4, np.float32, 32, 32),  # the medium row (8.4 M flops a step)
        (50, 32, 120, 4, np.float32, 64, 60),  # the cut on a multiple of the tile's 8 (4) rows: parts of 64 and 56
        (50, 40, 256, 4, np.float32, 0, 0),  # 40 columns: no tile
        (200, 32, 512, 4, np.float64, 0, 0),  # float64: the micro-kernel is float32 only
        (10, 100, 10, 4, np.float32, 0, 0),  # the tutorial row: too little work to pay for a thread
        (200, 32, 512, 1, np.float32, 256, 0),  # the RNN's large row: the batch cut would leave parts of 16
        (50, 128, 256, 1, np.float32, 0, 0),  # the RNN's wide row: parts of 64 columns, the batch is cut instead
        (50, 128, 256, 3, np.float32, 128, 0),  # the GRU's wide row (50 M flops a step)
    ],
)
def test_where_the_units_are_cut(loop_threads, monkeypatch, T, B, H, G, dtype, wide, narrow):
    loop_threads(None)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.AUTO)
    monkeypatch.setattr(settings, "units_split", True)
    if _threads.blas_max_threads() < 2:
        pytest.skip("NumPy's BLAS runs one thread on this machine: loops never split")
    assert _plan._units_split(T, B, H, G, dtype) == (wide if WIDE else narrow)
    loop_threads(1)
    assert _plan._units_split(T, B, H, G, dtype) == 0
    loop_threads(None)
    monkeypatch.setattr(settings, "units_split", False)
    assert _plan._units_split(T, B, H, G, dtype) == 0


@pytest.mark.parametrize(
    "T, B, H, G, own",
    [
        (100, 64, 128, 4, True),  # the LSTM's long row: a step's product 2·64·4·128² = 8.4 M flops
        (30, 256, 64, 3, True),  # the GRU's medium row: 6.3 M
        (50, 128, 256, 4, False),  # the LSTM's wide row: 67 M
        (200, 32, 512, 1, False),  # the RNN's large row: 16.8 M (a part of 16 columns would be 8.4 M)
        (50, 128, 256, 1, False),  # the RNN's wide row: 16.8 M (parts of 64 columns: 8.4 M)
    ],
)
def test_without_avx512_the_micro_kernel_takes_the_small_steps_products(loop_threads, monkeypatch, T, B, H, G, own):
    """On a CPU without AVX-512 the micro-kernel's tile only matches OpenBLAS's rate: by default it
    takes a loop's per-step products (and splits forward loops by units) where the whole batch's
    step product 2·B·G·H² is at most ``settings.narrow_cpu_own_kernel_flops`` (10 M), else OpenBLAS
    does; the backward loop's packed U follows the plan. The input projection and the dot tiles
    stay on OpenBLAS there."""
    from bptt.functional._backend import _kernel

    loop_threads(None)
    monkeypatch.setattr(_kernel("microkernel"), "WIDE", False)
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.AUTO)
    monkeypatch.setattr(settings, "narrow_cpu_own_kernel", False)
    if _threads.blas_max_threads() < 2:
        pytest.skip("NumPy's BLAS runs one thread on this machine: loops never split")
    plan = _plan._loop_plan(T, B, H, G, np.float32)
    assert (plan.own == OwnKernel.ALL) == own and (plan.own == OwnKernel.OFF) != own
    assert (_plan._units_split(T, B, H, G, np.float32) > 0) == (own and G > 1)  # the RNN splits by batch
    U = np.zeros((H, G * H), np.float32)
    assert (_arrays._packed_rows(U, plan).shape[0] > 0) == own
    assert not _plan._own_kernel_on()  # no sizes: the projection's and the dot tiles' question
    monkeypatch.setattr(settings, "narrow_cpu_own_kernel_flops", 0)  # never
    assert _plan._loop_plan(T, B, H, G, np.float32).own == OwnKernel.OFF
    assert _plan._units_split(T, B, H, G, np.float32) == 0
    monkeypatch.setattr(settings, "narrow_cpu_own_kernel", True)  # everywhere, as with AVX-512
    assert _plan._own_kernel_on()


@pytest.mark.parametrize("B, H, cut_wide, cut_narrow", [(32, 24, 16, 12), (64, 16, 8, 8), (32, 56, 32, 28)])
@pytest.mark.parametrize("case", CELLS[:4], ids=cell_id)  # the LSTM, both GRU forms, the tanh RNN
def test_split_by_units_gives_the_one_thread_results(loop_threads, monkeypatch, case, B, H, cut_wide, cut_narrow):
    """Two threads, each over its own hidden units of every step and meeting after each step
    (bptt.kernels.sync), in the inference forward and in the cached forward, give the one-thread
    results: non-zero initial states, float32, within float32 rounding of the float64 reference,
    and the same gradients from the cache. (The reset-before GRU never splits by units: its n
    block's product needs r ⊙ h_{t-1} of every unit.) The cut is the multiple of the tile's rows
    nearest H / 2: 8 on AVX-512 CPUs (``cut_wide``), 4 on the others (``cut_narrow``)."""
    cell, options = case
    cut = cut_wide if WIDE else cut_narrow
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    monkeypatch.setattr(settings, "units_split", True)
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    T, I = 13, 5
    p64 = make_problem(cell, B, T, I, H, seed=B + H, memory=True)
    p32 = {k: a.astype(np.float32) for k, a in p64.items()}
    dh = np.random.default_rng(B).normal(size=(B, T, H)).astype(np.float32)
    loop_threads(1)
    one_inf, _ = forward(**p32, **options, keep_cache=False)
    one, one_cache = forward(**p32, **options)
    one_grads = backward(dh, one_cache)
    loop_threads(2)
    if _threads.blas_max_threads() < 2:
        pytest.skip("NumPy's BLAS runs one thread on this machine: loops never split")
    assert _plan._units_split(T, B, H, GATES[cell], np.float32) == cut
    two_inf, none = forward(**p32, **options, keep_cache=False)
    two, two_cache = forward(**p32, **options)
    reference, _ = forward(**{k: a.astype(np.float64) for k, a in p32.items()}, **options, backend="reference")
    assert none is None and two_inf.dtype == two.dtype == np.float32 and two.shape == (B, T, H)
    assert rel(two_inf, one_inf) <= 1e-6 and rel(two, one) <= 1e-6
    assert rel(two_inf, reference) <= 1e-5 and rel(two, reference) <= 1e-5
    assert rel(two_cache.gates, one_cache.gates) <= 1e-6
    loop_threads(1)  # the backward on one thread: the caches alone differ
    two_grads = backward(dh, two_cache)
    for k in one_grads:
        assert rel(two_grads[k], one_grads[k]) <= 1e-5, k


def test_loops_split_by_units_called_from_several_threads_at_once(loop_threads, monkeypatch):
    """bptt has one worker thread: when several threads run loops split by units at once, a
    caller's half waits for its worker half behind the others' and every result is still right."""
    import threading

    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    monkeypatch.setattr(settings, "units_split", True)
    loop_threads(2)
    if _threads.blas_max_threads() < 2:
        pytest.skip("NumPy's BLAS runs one thread on this machine: loops never split")
    B, T, I, H = 32, 40, 5, 24
    problems = [{k: a.astype(np.float32) for k, a in make_problem("lstm", B, T, I, H, seed=s).items()} for s in range(4)]
    assert _plan._units_split(T, B, H, 4, np.float32) == (16 if WIDE else 12)  # H / 2 on the tile's 8 or 4 rows
    expected = [F.lstm_forward(**p, keep_cache=False)[0] for p in problems]
    got = [None] * len(problems)

    def run(i):
        for _ in range(5):
            got[i] = F.lstm_forward(**problems[i], keep_cache=False)[0]

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)


def test_a_failure_in_one_half_ends_the_other_halfs_wait():
    """Halves that wait for each other's step flags: when one raises before publishing a step,
    the other's wait ends (every flag set to ABORT) and the caller gets the error, not a hang."""
    import threading

    import numba as nb

    from bptt.kernels import sync

    @nb.njit(nogil=True)
    def waiting_half(flags, p):
        sync.publish(flags, p, 5)
        sync.wait_for(flags, 1 - p, 5)

    def part(flags, p, fail):
        if p == fail:
            raise ValueError(f"half {p} failed")
        waiting_half(flags, p)

    for fail in (0, 1):
        flags = np.zeros(2 * sync.STRIDE, np.int64)
        errors = []

        def run(flags=flags, fail=fail):
            try:
                _threads.run_in_two_threads_meeting(part, (flags, 0, fail), (flags, 1, fail), flags)
            except ValueError as e:
                errors.append(str(e))

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        runner.join(timeout=60)
        assert not runner.is_alive(), "the other half still waits"
        assert errors == [f"half {fail} failed"]
    flags = np.zeros(2 * sync.STRIDE, np.int64)  # and without a failure both halves meet
    _threads.run_in_two_threads_meeting(waiting_half, (flags, 0), (flags, 1), flags)
    assert flags[0] == 5 and flags[sync.STRIDE] == 5


def run_all(cell, options, problem, dh, finals):
    forward, backward = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    h_inf, _ = forward(**problem, **options, keep_cache=False)
    h, cache = forward(**problem, **options)
    return {"h_inference": h_inf, "h": h, "gates": cache.gates, **backward(dh, cache, **finals)}


@pytest.mark.parametrize("dtype, B, H", [(np.float64, 100, 12), (np.float32, 128, 16), (np.float32, 32, 16)])
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_two_threads_give_the_one_thread_results(loop_threads, case, dtype, B, H):
    """B = 100 float64: cut at 48, BLAS in both parts; B = 128 float32: cut at 64, micro-kernel
    (8 x 32 tiles); B = 32 float32: cut at 16, micro-kernel (16 x 16 tiles)."""
    cell, options = case
    T, I = 9, 5
    problem = {k: a.astype(dtype) for k, a in make_problem(cell, B, T, I, H, seed=7).items()}
    rng = np.random.default_rng(8)
    dh = rng.normal(size=(B, T, H)).astype(dtype)
    finals = {"dh_last": rng.normal(size=(B, H)).astype(dtype)}
    if cell == "lstm":
        finals["dc_last"] = rng.normal(size=(B, H)).astype(dtype)
    loop_threads(1)
    one = run_all(cell, options, problem, dh, finals)
    loop_threads(2)
    assert _plan._loop_split(T, B, H, GATES[cell], dtype) in (16, 48, 64) or _threads.blas_max_threads() < 2
    two = run_all(cell, options, problem, dh, finals)
    assert set(one) == set(two)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for k in one:
        assert two[k].dtype == dtype, k
        assert rel(two[k], one[k]) <= tol, (k, rel(two[k], one[k]))




def test_a_failure_in_either_part_reaches_the_caller_and_the_worker_survives():
    def part(which, fail):
        if which == fail:
            raise ValueError(f"part {which} failed")
        return which

    for fail in (1, 2):
        with pytest.raises(ValueError, match=f"part {fail} failed"):
            _threads.run_in_two_threads(part, (1, fail), (2, fail))
    seen = []
    _threads.run_in_two_threads(lambda x: seen.append(x), ("here",), ("there",))
    assert sorted(seen) == ["here", "there"]


def _forked_lstm(queue):
    queue.put(F.lstm_forward(*_lstm_problem(), keep_cache=False)[0])


def _lstm_problem():
    rng = np.random.default_rng(11)
    B, T, I, H = 64, 4, 3, 8
    return (rng.normal(size=(B, T, I)), rng.normal(size=(I, 4 * H)) * 0.3, rng.normal(size=(H, 4 * H)) * 0.3,
            rng.normal(size=4 * H) * 0.1)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_runs_two_thread_loops(loop_threads):
    """The parent's worker thread does not exist in a forked child; the child starts its own."""
    loop_threads(2)
    expected = F.lstm_forward(*_lstm_problem(), keep_cache=False)[0]  # the parent's worker is now running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_lstm, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    "I, T, B, G_H, dtype, two_threads",
    [
        (30, 10, 100, 40, np.float32, False),  # the tutorial LSTM: micro-kernel, 1000 columns (31 tiles + 8 by hand)
        (5, 7, 37, 16, np.float32, True),  # two threads, 259 columns: each part ends in a hand-written tail
        (3, 2, 5, 8, np.float32, True),  # fewer than 64 columns: no cut, one thread
        (30, 10, 100, 10, np.float32, False),  # G·H % 8 != 0: 8 rows in tiles, 2 by hand
        (30, 10, 100, 30, np.float32, True),  # (24 and 6, on two threads)
        (4, 3, 50, 5, np.float32, False),  # fewer than 8 rows: all by hand
        (6, 4, 33, 24, np.float64, True),  # float64: BLAS
        # I = 128: project's column blocks are 512 wide (1050 columns: two blocks and a hand-written tail)
        (128, 7, 150, 64, np.float32, False),
        (128, 9, 150, 48, np.float32, True),
    ],
)
@pytest.mark.parametrize("own", [OwnKernel.AUTO, OwnKernel.OFF])
def test_input_projection_of_all_steps(monkeypatch, I, T, B, G_H, dtype, two_threads, own):
    """``Wᵀ X`` for all steps at once, by the micro-kernel (on two threads for large products;
    here forced by a zero threshold) or by BLAS; within float32 rounding of the float64 product."""
    monkeypatch.setattr(settings, "own_kernel", own)
    monkeypatch.setattr(settings, "projection_two_threads_flops", 0 if two_threads else 1e30)
    rng = np.random.default_rng(I + T + B)
    x_fm = rng.normal(size=(I, T, B)).astype(dtype)
    W = rng.normal(size=(I, G_H)).astype(dtype)
    out = _arrays._fm_input_projection(x_fm, W, G_H)
    expected = np.einsum("ig,itb->gtb", W.astype(np.float64), x_fm.astype(np.float64))
    assert out.shape == (G_H, T, B) and out.dtype == dtype
    assert rel(out, expected) <= (1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("I, T, B, G_H, two_threads", [(30, 10, 100, 40, False), (128, 9, 150, 48, True), (5, 7, 37, 16, True)])
@pytest.mark.parametrize("own", [OwnKernel.AUTO, OwnKernel.OFF])
def test_input_projection_of_the_first_steps_of_a_stacked_array(monkeypatch, I, T, B, G_H, two_threads, own):
    """The LSTM and RNN keep x in the first rows of one (I + H, T + 1, B) array with the states
    (_arrays._fm_stacked): the projection reads slots 0 … T-1 of rows T + 1 slots long, never
    slot T (NaN here), and writes an output whose rows are T slots long."""
    monkeypatch.setattr(settings, "own_kernel", own)
    monkeypatch.setattr(settings, "projection_two_threads_flops", 0 if two_threads else 1e30)
    rng = np.random.default_rng(I + T + B)
    x_slots = rng.normal(size=(I, T + 1, B)).astype(np.float32)
    x_slots[:, T] = np.nan
    W = rng.normal(size=(I, G_H)).astype(np.float32)
    out = _arrays._fm_input_projection(x_slots, W, G_H, T)
    expected = np.einsum("ig,itb->gtb", W.astype(np.float64), x_slots[:, :T].astype(np.float64))
    assert out.shape == (G_H, T, B)
    assert rel(out, expected) <= 1e-6


@pytest.mark.parametrize("case", [("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})],
                         ids=cell_id)
@pytest.mark.parametrize("B, I, H, expected", [(32, 6, 24, 8), (64, 30, 16, 32), (96, 8, 16, 8), (40, 6, 24, 0), (32, 6, 10, 8)])
def test_dx_computed_in_the_backward_loop(monkeypatch, case, B, I, H, expected):
    """Where the micro-kernel's 8 × 32 tile takes it (B a multiple of 32, W's I rows padded with
    zeros to a multiple of 8), the LSTM's and the GRU's backward loops compute dx_t = W dz_t at
    each step; that gives the dx of the GEMM after the loop, and the other gradients unchanged."""
    cell, options = case
    monkeypatch.setattr(settings, "own_kernel", OwnKernel.ALL)
    monkeypatch.setattr(settings, "loop_threads", 1)
    monkeypatch.setattr(settings, "dx_in_loop", True)
    T = 11
    p = {k: a.astype(np.float32) for k, a in make_problem(cell, B, T, I, H, seed=I + H).items()}
    if not WIDE:
        expected = 0 if B % 16 else expected  # the narrow CPU's 4 x 16 tile
    if GATES[cell] * H % 8 and H % 8:
        expected = 0  # the GRU with H = 10: 30 rows, no tile of 8 rows: the micro-kernel stays out
    Wp, dx = _arrays._dx_in_loop(p["W"], _plan._loop_plan(T, B, H, GATES[cell], np.float32), T)
    assert Wp.shape[0] == expected and (expected == 0 or (dx.shape == (expected, T, B) and np.all(Wp[I:] == 0)))
    dh = np.random.default_rng(0).normal(size=(B, T, H)).astype(np.float32)
    finals = {"dh_last": dh[:, 0], "dc_last": dh[:, 1]} if cell == "lstm" else {"dh_last": dh[:, 0]}
    fwd, bwd = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    in_loop = bwd(dh, fwd(**p, **options)[1], **finals)
    monkeypatch.setattr(settings, "dx_in_loop", False)
    after = bwd(dh, fwd(**p, **options)[1], **finals)
    p64 = {k: a.astype(np.float64) for k, a in p.items()}
    reference = bwd(dh.astype(np.float64), fwd(**p64, **options, backend="reference")[1],
                    **{k: a.astype(np.float64) for k, a in finals.items()})
    assert in_loop["dx"].shape == (B, T, I)
    for k in after:
        assert rel(in_loop[k], after[k]) <= 1e-6, k
        assert rel(in_loop[k], reference[k]) <= 1e-5, k
