"""``lengths=`` / ``reverse=`` in the fast kernels where the small torch-parity draws of
tests/core/test_lengths_parity.py do not reach: batches the loops cut in two (the sequences dealt
to the parts alternately), float32 products on bptt's micro-kernel over the running columns
rounded up to its tile, the spent cache (``keep_cache=False``), inference, drawn sizes and length
patterns; the packed layout the fast path runs over (bptt.functional._packed: its tables by hand,
the real steps only); and the rules the contract states outright: lengths all T give the bits
of no lengths, finite differences, the validation messages.

The oracle here is the reference backend, itself checked against PyTorch's packed sequences in
tests/core/test_lengths_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from bptt import functional as F
from bptt.gradcheck import check_primitive
from bptt.settings import override, settings

CELLS = ("lstm", "gru", "gru_before", "rnn_tanh", "rnn_relu")


def problem(cell, B, T, I, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3, "gru_before": 3}.get(cell, 1)
    p = {"x": rng.standard_normal((B, T, I)), "W": 0.4 * rng.standard_normal((I, G * H)),
         "U": 0.4 * rng.standard_normal((H, G * H)), "b": 0.3 * rng.standard_normal(G * H),
         "h0": 0.5 * rng.standard_normal((B, H)), "dh": rng.standard_normal((B, T, H)),
         "dh_last": rng.standard_normal((B, H))}
    if cell == "lstm":
        p.update(c0=rng.standard_normal((B, H)), dc_last=rng.standard_normal((B, H)))
    if cell.startswith("gru"):
        p["b_u"] = 0.3 * rng.standard_normal(G * H)
    return {k: a.astype(dtype) for k, a in p.items()}


def run(cell, p, backend, keep_cache=True, forward_only=False, **seq):
    if cell == "lstm":
        h, cache = F.lstm_forward(p["x"], p["W"], p["U"], p["b"], p["h0"], p["c0"], backend=backend,
                                  keep_cache=not forward_only, **seq)
        if forward_only:
            return {"h": h}
        # copies: without lengths (or with all of them T) these are views of the cache, which a
        # spending backward writes its deltas over
        out = {"h": h, "c": np.array(cache.c), "gates": np.array(cache.gates)}
        g = F.lstm_backward(p["dh"], cache, p["dh_last"], p["dc_last"], keep_cache=keep_cache)
    elif cell.startswith("gru"):
        h, cache = F.gru_forward(p["x"], p["W"], p["U"], p["b"], p["b_u"], p["h0"], reset_after=cell == "gru",
                                 backend=backend, keep_cache=not forward_only, **seq)
        if forward_only:
            return {"h": h}
        out = {"h": h, "gates": np.array(cache.gates)}
        g = F.gru_backward(p["dh"], cache, p["dh_last"], keep_cache=keep_cache)
    else:
        h, cache = F.rnn_forward(p["x"], p["W"], p["U"], p["b"], p["h0"], activation=cell[4:], backend=backend,
                                 keep_cache=not forward_only, **seq)
        if forward_only:
            return {"h": h}
        out = {"h": h}
        g = F.rnn_backward(p["dh"], cache, p["dh_last"], keep_cache=keep_cache)
    out.update(g)
    return out


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def ragged(B, T, seed=1):
    rng = np.random.default_rng(seed)
    L = np.clip(rng.poisson(T / 3, B), 1, T)
    L[rng.integers(B)] = T
    return L


@pytest.fixture
def loop_threads(monkeypatch):
    return lambda n: monkeypatch.setattr(settings, "loop_threads", n)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("B,H", [(67, 16), (64, 32)])
def test_fast_matches_reference_on_cut_batches_and_tiles(cell, dtype, threads, B, H, loop_threads):
    """Both directions, the cached backward and the spent one (dz, dc written over the cache),
    and inference: fast against reference, zeros at the padded steps of h and of every per-step
    gradient (the fast kernels leave padded slots unwritten but for zeroing them)."""
    loop_threads(threads)
    T, I = 9, 5
    p = problem(cell, B, T, I, H, dtype)
    L = ragged(B, T)
    padded = np.arange(T)[None, :] >= L[:, None]
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for reverse in (False, True):
        seq = dict(lengths=L, reverse=reverse)
        want = run(cell, p, "reference", **seq)
        for keep in (True, False):
            got = run(cell, p, "fast", keep_cache=keep, **seq)
            errors = {k: rel(got[k], want[k]) for k in want}
            assert max(errors.values()) <= tol, (keep, reverse, errors)
            for k in ("h", "dx", "dz") + (("dc", "c") if cell == "lstm" else ()):
                assert not np.any(got[k][padded]), k
        h = run(cell, p, "fast", forward_only=True, **seq)["h"]
        assert rel(h, want["h"]) <= tol


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lengths_all_t_give_the_bits_of_no_lengths(cell, backend, dtype):
    B, T = 33, 6
    p = problem(cell, B, T, 4, 16, dtype)
    plain = run(cell, p, backend)
    full = run(cell, p, backend, lengths=np.full(B, T), reverse=False)
    for k in plain:
        assert np.array_equal(plain[k], full[k]), k


@pytest.mark.parametrize("cell", CELLS)
def test_reverse_is_the_forward_pass_over_each_sequence_read_backwards(cell):
    """A hand-built oracle: reversing each sequence's real steps, running forward with the same
    lengths and reversing back gives reverse=True."""
    B, T = 7, 6
    p = problem(cell, B, T, 3, 4, np.float64)
    L = np.array([6, 1, 3, 6, 2, 5, 4])
    flip = np.array([[L[b] - 1 - t if t < L[b] else t for t in range(T)] for b in range(B)])
    rows = np.arange(B)[:, None]
    q = dict(p, x=p["x"][rows, flip], dh=p["dh"][rows, flip])
    for backend in F.BACKENDS:
        want = run(cell, q, backend, lengths=L)
        got = run(cell, p, backend, lengths=L, reverse=True)
        for k in ("h", "dx", "dz"):
            assert rel(got[k], want[k][rows, flip]) <= 1e-13, (backend, k)
        for k in ("dW", "dU", "db", "dh0"):
            assert rel(got[k], want[k]) <= 1e-13, (backend, k)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_finite_differences(cell, backend, reverse):
    rng = np.random.default_rng(3)
    B, T, I, H = 4, 5, 3, 3
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    arrays = dict(x=rng.standard_normal((B, T, I)), W=0.5 * rng.standard_normal((I, G * H)),
                  U=0.5 * rng.standard_normal((H, G * H)), b=0.3 * rng.standard_normal(G * H),
                  h0=rng.standard_normal((B, H)))
    if cell == "lstm":
        arrays["c0"] = rng.standard_normal((B, H))
    if cell == "gru":
        arrays["b_u"] = 0.3 * rng.standard_normal(G * H)
    report = check_primitive(cell, lengths=np.array([5, 2, 1, 4]), reverse=reverse, backend=backend, **arrays)
    assert report.passed(1e-6), report.errors
    # the padded steps of x have no effect: their numerical gradient is 0 as well
    assert not np.any(report.numeric["x"][1, 2:]) and not np.any(report.numeric["x"][2, 1:])


@pytest.mark.parametrize("lengths,message", [
    (np.array([3.0, 2.0]), "got dtype float64 (convert it with np.asarray(lengths, dtype=np.int64))"),
    (np.array([3, 2, 1]), "got shape (3,)"),
    (np.array([[3, 2]]), "got shape (1, 2)"),
    (np.array([0, 2]), "got lengths[0] = 0"),
    (np.array([3, 4]), "got lengths[1] = 4"),
    (True, "got True"),
    (np.array([True, True]), "got dtype bool"),
    ("ab", "got 'ab'"),
])
def test_lengths_are_validated(lengths, message):
    x, W, U, b = np.zeros((2, 3, 1)), np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(4)
    with pytest.raises(ValueError) as e:
        F.lstm_forward(x, W, U, b, lengths=lengths)
    assert str(e.value).startswith("lstm_forward: lengths must be an integer array of shape (B,) = (2,) with "
                                   "1 <= lengths[b] <= T = 3")
    assert message in str(e.value)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", F.BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.filterwarnings("error")  # no Inf · 0 at the padded steps either
def test_dh_is_read_and_checked_at_the_real_steps_only(cell, backend, dtype, reverse):
    """dh at padded steps takes no part (PyTorch's packed sequences): NaN and Inf there change no
    gradient by a bit and raise nothing; a NaN or Inf at a real step raises, naming the first in
    the caller's order."""
    B, T = 5, 6
    L = np.array([6, 1, 3, 2, 5])
    p = problem(cell, B, T, 3, 4, dtype, seed=4)
    real = (np.arange(T)[None, :] < L[:, None])[:, :, None]
    p["dh"] = np.where(real, p["dh"], 0).astype(dtype)
    clean = run(cell, p, backend, lengths=L, reverse=reverse)
    p["dh"][~real[:, :, 0]] = np.nan
    p["dh"][1, 3, 0] = np.inf  # padded: lengths[1] = 1
    dirty = run(cell, p, backend, lengths=L, reverse=reverse, keep_cache=False)
    for k in ("dx", "dW", "dU", "db", "dh0"):
        assert np.array_equal(dirty[k], clean[k]), k
    p["dh"][4, 4, 1] = np.inf  # real steps: reported in the caller's order, the first one
    p["dh"][3, 1, 2] = np.nan
    for keep in (False, True):
        with pytest.raises(ValueError, match=r"_backward: dh contains NaN at index \(3, 1, 2\), a real step "
                                             r"\(lengths\[3\] = 2\); every value at the real steps must be finite"):
            run(cell, p, backend, lengths=L, reverse=reverse, keep_cache=keep)


@pytest.mark.parametrize("backend", F.BACKENDS)
def test_a_non_finite_dh_leaves_the_cache_unspent(backend):
    """The real steps' check comes before keep_cache=False spends the cache: the same cache then
    gives the gradients of a finite dh."""
    p = problem("lstm", 3, 4, 2, 3, np.float32, seed=6)
    L = np.array([4, 2, 1])
    h, cache = F.lstm_forward(p["x"], p["W"], p["U"], p["b"], lengths=L, backend=backend)
    bad = p["dh"].copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"dh contains NaN at index \(1, 0, 0\), a real step"):
        F.lstm_backward(bad, cache, keep_cache=False)
    want = F.lstm_backward(p["dh"], cache)["dW"]
    assert np.array_equal(F.lstm_backward(p["dh"], cache, keep_cache=False)["dW"], want)


def test_reverse_is_validated_and_lists_are_accepted():
    x, W, U, b = np.ones((2, 3, 1)), np.ones((1, 1)), np.ones((1, 1)), np.zeros(1)
    with pytest.raises(ValueError, match=r"^rnn_forward: reverse must be True or False; got 'yes'$"):
        F.rnn_forward(x, W, U, b, reverse="yes")
    h, _ = F.rnn_forward(x, W, U, b, lengths=[3, 1])
    assert np.array_equal(h[1, 1:], np.zeros((2, 1))) and np.all(h[1, 0] != 0)


def test_final_state():
    h = np.arange(2 * 3 * 1, dtype=float).reshape(2, 3, 1)
    assert np.array_equal(F.final_state(h), [[2.0], [5.0]])
    assert np.array_equal(F.final_state(h, [2, 1]), [[1.0], [3.0]])
    assert np.array_equal(F.final_state(h, [2, 1], reverse=True), [[0.0], [3.0]])


# ─────────────────────────────────────────────────────────── the packed layout (bptt.functional._packed)


def layout(L, T, split=0, rounding=1, dtype=np.float64, reverse=False):
    from bptt.functional._lengths import _Sequences
    from bptt.functional._packed import packed
    from bptt.functional._plan import _LoopPlan

    L = np.asarray(L, np.int64)
    return packed(_Sequences(L, reverse, T), _LoopPlan(len(L), split, 0, 0), rounding, dtype)


def test_packed_layout_by_hand():
    """Lengths [3, 1, 2], T = 3, one part, no rounding: the sequences longest first (0, 2, 1);
    block s holds the sequences running at step s, as wide as the step before's (block 0: all
    three; block 3: the final state of the longest)."""
    pk = layout([3, 1, 2], 3)
    assert pk.order.tolist() == [0, 2, 1]
    assert pk.n[:, 0].tolist() == [3, 2, 1]
    assert pk.width[:, 0].tolist() == [3, 3, 2, 1]
    assert pk.off[:, 0].tolist() == [0, 3, 6, 8, 9]
    # the steps' columns, and the products' after the loops: rounded up to 16, as the whole
    # arrays (block 3 ends at column 9)
    assert (pk.N_x, pk.K, pk.N) == (8, 16, 16)
    # the caller's row b·T + t of each column of blocks 0-2 (-1: past the running ones)
    assert pk.rows.tolist() == [0, 6, 3, 1, 7, -1, 2, -1] + [-1] * 8
    # each sequence's final state: block L_b, its column there
    assert pk.finals.tolist() == [8, 7, 5]
    # the caller's (t, b) in the per-step blocks and in the states' (one block on)
    assert pk.cols_x.reshape(3, 3).tolist() == [[0, 2, 1], [3, -1, 4], [6, -1, -1]]
    assert pk.cols_h.reshape(3, 3).tolist() == [[3, 5, 4], [6, -1, 7], [8, -1, -1]]
    rev = layout([3, 1, 2], 3, reverse=True)  # sequence 0 reads steps 2, 1, 0; sequence 2 steps 1, 0
    assert rev.rows.tolist() == [2, 7, 3, 1, 6, -1, 0, -1] + [-1] * 8
    assert rev.cols_x.reshape(3, 3).tolist() == [[6, 2, 4], [3, -1, 1], [0, -1, -1]]


@pytest.mark.parametrize("split,rounding,dtype", [(0, 16, np.float32), (32, 16, np.float32), (32, 1, np.float64),
                                                  (48, 1, np.float32)])
def test_packed_layout_stores_the_real_steps_only(split, rounding, dtype):
    """Every real step in exactly one column, no padded step anywhere; blocks as wide as the step
    before's running sequences rounded up (the two threads' parts on cache-line boundaries), the
    products within their block."""
    rng = np.random.default_rng(5)
    B, T = 83, 11
    L = np.clip(rng.poisson(3, B), 1, T)
    L[7] = T
    pk = layout(L, T, split, rounding, dtype)
    block = rounding if rounding > 1 or not split else 64 // np.dtype(dtype).itemsize
    P = 2 if split else 1
    assert pk.rows.size == pk.K and pk.K % 16 == 0 and pk.K - pk.N_x < 16
    real = pk.rows[pk.rows >= 0]
    want = sorted(b * T + t for b in range(B) for t in range(L[b]))
    assert sorted(real.tolist()) == want
    # the real steps' pairs for unpacking, in the caller's step order t·B + b: one per real step,
    # each column holding that step (rows names it as b·T + t), its state one block on
    assert pk.dst.tolist() == sorted(t * B + b for b in range(B) for t in range(L[b]))
    assert np.array_equal(pk.rows[pk.src_x], (pk.dst % B) * T + pk.dst // B)
    for sx, sh in zip(pk.src_x, pk.src_h):  # the same column of the next block
        (s, p), = [(s, p) for s in range(T) for p in range(P) if pk.off[s, p] <= sx < pk.off[s, p] + pk.width[s, p]]
        assert sh - pk.off[s + 1, p] == sx - pk.off[s, p]
    assert pk.N_x <= L.sum() + B + T * P * (block - 1)
    sizes = np.diff(pk.parts)
    for p in range(P):
        Lp = np.sort(L[pk.order[pk.parts[p]:pk.parts[p + 1]]])[::-1]
        assert np.all(np.diff(L[pk.order[pk.parts[p]:pk.parts[p + 1]]]) <= 0)  # longest first
        running = np.array([(Lp > s).sum() for s in range(T)])
        assert pk.n[:, p].tolist() == running.tolist()
        prev = np.concatenate(([sizes[p]], running))
        assert pk.width[:, p].tolist() == (-(-prev // block) * block).tolist()
        assert np.all(pk.off[:-1, p] % block == 0)
        assert np.all((pk.n[:, p] <= pk.pw[:, p]) & (pk.pw[:, p] <= pk.width[:-1, p]))
        # each part's step blocks one after another (a thread's columns never interleave with the
        # other's), the final states' blocks after every step's
        assert np.array_equal(pk.off[1:T, p], pk.off[: T - 1, p] + pk.width[: T - 1, p])
        assert pk.off[T, p] >= pk.N_x
    assert pk.N_x == pk.width[:T].sum() and pk.off[T + 1, 0] == pk.width.sum()
    if P == 2:
        assert pk.off[0, 1] == pk.width[:T, 0].sum() and pk.off[T, 1] == pk.off[T, 0] + pk.width[T, 0]
    if split == 32:  # the parts take the sequences alternately, longest first (the 19 shortest go to part 1)
        first = np.argsort(-L, kind="stable")[:64]
        assert pk.order[:32].tolist() == first[::2].tolist()


def test_packed_arrays_are_aligned_and_keep_their_dtype():
    """The running ``(H, Bp)`` arrays start on a cache line whatever their size (the two threads'
    parts of a row then share none), the packed ``(rows, N)`` arrays from
    ``settings.align_min_bytes`` on (their rows need not be whole cache lines); a running copy of a
    caller's states keeps their dtype and order; the column tables are integers."""
    from bptt.settings import settings

    L = np.array([5] * 9 + [2], np.int64)  # N = 57 columns: blocks 0-4 (48) and the final states (9)
    for dtype in (np.float32, np.float64):
        pk = layout(L, 5, dtype=dtype)
        assert pk.N * np.dtype(dtype).itemsize % 64  # rows that are no whole number of cache lines
        rows = -(-settings.align_min_bytes // (pk.N * np.dtype(dtype).itemsize))
        # several, all alive at once (NumPy hands a freed small buffer out again, at the same
        # address): malloc's 16-byte alignment lands on a cache line one time in four by chance
        large = [pk.empty(rows, dtype) for _ in range(8)]
        small = [pk.empty_running(3, dtype) for _ in range(8)]
        assert all(a.ctypes.data % 64 == 0 for a in large + small)
        # running arrays wider than the batch (the micro-kernel's 16-column rounding): zeros past it,
        # whatever the reused memory held (a freed buffer of the same size, full of ones, first)
        pk16 = layout(L, 5, rounding=16, dtype=dtype)
        assert pk16.Bp > 10
        a = np.arange(1, 10 * 3 + 1, dtype=dtype).reshape(10, 3)
        for p in (pk, pk16):
            del_me = np.full(3 * p.Bp * np.dtype(dtype).itemsize + 64, 255, np.uint8)
            del del_me
            run = p.running(a)
            assert run.dtype == dtype and run.shape == (3, p.Bp)
            assert np.array_equal(run[:, :10], a[p.order].T) and not run[:, 10:].any()
            assert np.array_equal(p.caller_rows(run), a)
        assert pk.cols_x.dtype == pk.cols_h.dtype == np.int64


def lengths_for(pattern, B, T, rng):
    """Lengths of one of :data:`PATTERNS` (tests/core/test_lengths_parity.py draws them too)."""
    if pattern == "random":
        return rng.integers(1, T + 1, B)
    if pattern == "all_equal":
        return np.full(B, rng.integers(1, T + 1))
    if pattern == "all_one":
        return np.ones(B, np.int64)
    if pattern == "one_long":  # one long sequence, the rest short
        L = np.ones(B, np.int64)
        L[rng.integers(B)] = T
        return L
    raise AssertionError(pattern)


PATTERNS = ("random", "all_equal", "all_one", "one_long")


@pytest.mark.parametrize("cell", CELLS)
@hsettings(max_examples=8, deadline=None)
@given(B=st.sampled_from([1, 2, 31, 33, 64, 70]), T=st.integers(1, 9), H=st.sampled_from([1, 3, 16, 32]),
       I=st.integers(1, 6), pattern=st.sampled_from(PATTERNS),
       reverse=st.booleans(), threads=st.sampled_from([1, 2]), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**31))
def test_fast_matches_reference_on_drawn_sizes_and_patterns(cell, B, T, H, I, pattern, reverse, threads, dtype, seed):
    """The packed fast path against the reference kernels (themselves checked against PyTorch in
    tests/core/test_lengths_parity.py) on drawn sizes, length patterns and thread counts, the
    cached and the spent backward: every output and gradient, zeros at the padded steps."""
    p = problem(cell, B, T, I, H, dtype, seed % 1000)
    L = lengths_for(pattern, B, T, np.random.default_rng(seed))
    padded = np.arange(T)[None, :] >= L[:, None]
    tol = 1e-12 if dtype == np.float64 else 2e-5
    seq = dict(lengths=L, reverse=reverse)
    with override(loop_threads=threads):
        want = run(cell, p, "reference", **seq)
        for keep in (True, False):
            got = run(cell, p, "fast", keep_cache=keep, **seq)
            errors = {k: rel(got[k], want[k]) for k in want}
            if dtype == np.float32:
                # db sums the B·T steps' dz: float32 rounds that sum within its tolerance of the
                # terms' magnitudes, not of a sum that cancels (seen: an all-equal ReLU RNN with H =
                # 1, db 0.055 from terms near 1, 2.6e-5 apart, each backend as far from float64).
                # Relative to the largest terms, as every other result to its largest value: each
                # dz carries float32's error of the step's scale, not of its own unit's (seen: a GRU
                # with B = 1, T = 3, H = 32, db's error 3.8e-5 of one unit's small terms, 2.8e-7 of
                # db's largest value; the same before and after the bookkeeping moved to packing.py)
                terms = np.abs(want["dz"]).sum(axis=(0, 1))
                errors["db"] = float(np.max(np.abs(got["db"] - want["db"]))) / max(float(terms.max()), 1e-300)
            assert max(errors.values()) <= tol, (keep, errors)
            for k in ("h", "dx", "dz") + (("dc", "c") if cell == "lstm" else ()):
                assert not np.any(got[k][padded]), k
