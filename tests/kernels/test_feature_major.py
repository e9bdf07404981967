"""bptt.kernels.fast.to_feature_major, the copy of the batch-major inputs x into the fast
path's feature-major layout, on each of its three paths: blocks of 16 features (with a remainder),
rows of the output for large batches of up to 64 features, and 16 × 16 tiles for the rest."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.kernels import fast as F

SHAPES = [
    (5, 3, 37),  # blocks: two of 16 and 5 features left over
    (64, 4, 10),  # fewer than 16 features: rows of the output
    (64, 4, 16),  # one block, no remainder
    (F.BLOCKS_MAX_BATCH, 2, F.BLOCKS_MAX_FEATURES),  # blocks, at both bounds
    (F.BLOCKS_MAX_BATCH + 1, 3, 40),  # rows of the output
    (F.BLOCKS_MAX_BATCH + 3, 2, 70),  # 16 x 16 tiles, partial ones on both axes
    (3, 2, F.BLOCKS_MAX_FEATURES + 5),  # tiles for many features and a small batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-F{}".format(*s))
def test_to_feature_major_is_the_transpose(shape, dtype):
    a = np.random.default_rng(4).normal(size=shape).astype(dtype)
    B, T, Fe = shape
    out = np.full((Fe, T + 1, B), np.nan, dtype)  # one slot more, as for the stacked xh: left alone
    F.to_feature_major(a, out)
    np.testing.assert_array_equal(out[:, :T], a.transpose(2, 1, 0))
    assert np.isnan(out[:, T]).all()


# bptt.kernels.fast.from_feature_major, the way back: a feature-major (F, T, B) array (behind a fast
# call's h or dx) into a new batch-major (B, T, F) one, in blocks of 16 features and a remainder.
BACK_SHAPES = [
    (1, 1, 1),  # B = T = F = 1: the remainder alone
    (7, 3, 16),  # one block, no remainder
    (5, 4, 37),  # two blocks and 5 features left over
    (256, 2, 15),  # fewer features than a block
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BACK_SHAPES, ids=lambda s: "B{}-T{}-F{}".format(*s))
def test_from_feature_major_is_the_transpose(shape, dtype):
    B, T, Fe = shape
    fm = np.random.default_rng(5).normal(size=(Fe, T, B)).astype(dtype)
    out = np.full(shape, np.nan, dtype)
    F.from_feature_major(fm, out)
    np.testing.assert_array_equal(out, fm.transpose(2, 1, 0))
