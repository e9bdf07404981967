"""Every array the fast path's time loops read or write step by step starts on a cache line,
where that aligns its rows: at least ALIGN_MIN_BYTES, rows a whole number of cache lines.

malloc aligns to 16 bytes only; a row's part of 16 float32 columns then spans two cache lines
(bptt._arrays._empty). These tests check the allocations themselves, many times over, since a
16-byte-aligned allocation lands on a 64-byte boundary one time in four by chance.
"""

from __future__ import annotations

import numpy as np
import pytest
from problems import CELLS, cell_id, make_problem

from bptt import functional as F
from bptt.settings import settings
from bptt.functional import _arrays, _plan

REPEATS = 6
CACHE_LINE = 64


def aligned(a: np.ndarray) -> bool:
    return a.__array_interface__["data"][0] % CACHE_LINE == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize(
    "shape", [(0,), (1,), (3, 5), (7, 3, 33), (64, 31, 32), (4, 512, 32), (4, 512, 128), (5, 100, 300)]
)
def test_empty_is_a_writable_array_of_the_shape_aligned_where_that_aligns_its_rows(shape, dtype):
    itemsize = np.dtype(dtype).itemsize
    rows_align = shape[-1] * itemsize % CACHE_LINE == 0 and np.prod(shape) * itemsize >= settings.align_min_bytes
    for _ in range(REPEATS):
        a = _arrays._empty(shape, dtype)
        assert a.shape == shape and a.dtype == np.dtype(dtype)
        assert a.flags.c_contiguous and a.flags.writeable
        assert aligned(a) or not rows_align
        a[...] = 7  # the whole buffer is usable
        assert np.all(a == 7)


def test_the_threshold_is_one_that_the_grid_passes():
    """The medium row's per-step arrays (float32, B = 256, H = 64, T = 30: dc 1.9 MiB) are above it."""
    assert settings.align_min_bytes <= 64 * 30 * 256 * 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_helpers_return_aligned_arrays(dtype):
    rng = np.random.default_rng(0)
    B, T, I, H = 64, 200, 4, 32  # rows of 256 or 512 bytes, arrays of 512 KiB and more
    x = rng.normal(size=(B, T, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    W = np.ones((I, 4 * H), np.float32)
    for _ in range(REPEATS):
        big = settings.scratch_bytes // np.dtype(dtype).itemsize + 1  # from the scratch pool
        made = (_arrays._fm_stacked(x, h0, T), _arrays._tm_stacked(x, h0, T), _arrays._states_ext(h0, T), _arrays._state_in(h0.repeat(64, 1)),
                _arrays._scratch("test-small", (H, T, B), dtype), _arrays._scratch("test-big", (big,), dtype))
        assert all(aligned(a) for a in made)
        _arrays._workspaces.pool = {}  # new workspaces each time: aligned whatever their size
        assert all(aligned(_arrays._workspace(f"test{n}", (3, 1, n), dtype)) for n in range(1, 13))
    # the backward loop's dx on the micro-kernel (float32, loop parts a multiple of 32 columns)
    if _plan._own_kernel_on():
        Wp, dx = _arrays._dx_in_loop(W, _plan._LoopPlan(32, 0, 0, 2), 600)
        assert Wp.shape[0] and aligned(dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, T, H", [(64, 64, 32), (32, 70, 64)])
@pytest.mark.parametrize("case", CELLS, ids=cell_id)
def test_cache_and_gradient_arrays_are_aligned(case, B, T, H, dtype):
    cell, options = case
    p = {k: v.astype(dtype) for k, v in make_problem(cell, B, T, 3, H).items()}
    fwd, bwd = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    for _ in range(REPEATS):
        h, cache = fwd(**p, **options, backend="fast")
        # x_s starts the stacked inputs and states; the RNN's gates are a view of its states
        stored = [cache.x_s] + ([cache.gates_s] if cell != "rnn" else [])
        stored += [getattr(cache, n) for n in ("c_s", "aux_s") if getattr(cache, n, None) is not None]
        assert all(aligned(a) for a in stored)
        grads = bwd(np.ones_like(h), cache)
        assert aligned(grads["dz"]) and ("dc" not in grads or aligned(grads["dc"]))
