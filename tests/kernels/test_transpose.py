"""The transposed copies of the weight matrices the fast path builds (``[W; U]ᵀ`` for the forward
loops, ``Wᵀ`` for the input projection): by bptt's compiled kernel for wide C-contiguous sources,
by NumPy otherwise; both must give exactly ``a.T``."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import functional as F
from bptt.functional import _arrays

SHAPES = [
    (64, 256),  # a multiple of the kernel's 16-row blocks
    (30, 200),  # 200 = 12 blocks of 16 + 8 rows left over
    (7, 4100),  # one short row of many columns
    (100, 100),  # square: the kernel
    (3, 5),  # tiny: NumPy
    (2048, 128),  # taller than wide: NumPy
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_transposed_is_a_contiguous_copy_of_the_transpose(shape, dtype):
    a = np.random.default_rng(1).normal(size=shape).astype(dtype)
    t = _arrays._transposed(a)
    assert t.flags.c_contiguous and t.dtype == dtype
    np.testing.assert_array_equal(t, a.T)
    view = a[:, 1:]  # a strided view: NumPy's copy
    np.testing.assert_array_equal(_arrays._transposed(view), view.T)


@pytest.mark.parametrize("I, H", [(30, 64), (5, 100), (128, 512), (1, 1), (64, 3)])
def test_loop_matrix_stacks_the_transposed_weights(I, H):
    rng = np.random.default_rng(2)
    W, U = rng.normal(size=(I, 4 * H)).astype(np.float32), rng.normal(size=(H, 4 * H)).astype(np.float32)
    A = _arrays._loop_matrix(W, U, 0)
    assert A.flags.c_contiguous
    np.testing.assert_array_equal(A, np.concatenate([W, U]).T)
    np.testing.assert_array_equal(_arrays._loop_matrix(W, U, I), U.T)
