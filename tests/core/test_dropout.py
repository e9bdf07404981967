"""Dropout: identity at inference, inverted dropout in training, its backward, and its generator state.

``check_layer`` differentiates ``forward(training=False)``, which for dropout is the identity, so
with a non-zero rate the training-mode gradient is checked two other ways: against the cached
mask directly, and with ``gradcheck`` on a loss that re-runs the training forward with the
generator rewound, which re-applies the very same mask.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bptt.gradcheck import check_layer, gradcheck, weighted_sum
from bptt.layers import Dropout, Layer

SHAPES = [(50,), (8, 30), (4, 6, 5), (2, 3, 4, 5)]
SHAPE_IDS = ["1d", "2d", "3d", "4d"]
DTYPES = [np.float32, np.float64]
DT_IDS = ["float32", "float64"]


def x_of(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_inference_is_the_identity(shape, dtype):
    drop = Dropout(0.7, seed=0)
    state = drop.get_rng_state()
    x = x_of(shape, dtype)
    y = drop.forward(x, training=False)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)
    assert drop.get_rng_state() == state  # inference draws nothing


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_training_keeps_and_scales(shape, dtype, rate):
    drop = Dropout(rate, seed=1)
    x = x_of(shape, dtype)
    y = drop.forward(x)
    assert isinstance(drop, Layer) and drop.params == {} and y.dtype == dtype and y.shape == x.shape
    mask = drop.mask
    assert mask.shape == x.shape and set(np.unique(mask).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(y, np.where(mask == 1, x / (1 - rate), 0.0), rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mask_statistics(rate):
    """Fraction kept ≈ 1 − rate (5 binomial standard errors), and the output mean ≈ the input's."""
    n = 200_000
    drop = Dropout(rate, seed=2)
    y = drop.forward(np.ones((n // 100, 100)))
    kept = drop.mask.mean()
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    # E[y] = 1 exactly; y is 1/(1 − rate) with probability 1 − rate, so sd(y) = √(rate/(1 − rate)).
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(rate / (1 - rate) / n)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_backward_is_mask_times_scale_times_dy(shape, dtype):
    rate = 0.3
    drop = Dropout(rate, seed=3)
    drop.forward(x_of(shape, dtype))
    dy = x_of(shape, dtype, seed=9)
    dx = drop.backward(dy)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, drop.mask * dy / (1 - rate), rtol=2 * np.finfo(dtype).eps)
    assert (dx[drop.mask == 0] == 0).all()


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_gradient_matches_finite_differences_with_the_same_mask(shape):
    drop = Dropout(0.4, seed=4)
    x = x_of(shape)
    before = drop.get_rng_state()
    y = drop.forward(x)
    R = np.random.default_rng(5).standard_normal(y.shape)
    dx = drop.backward(R)

    def loss():
        drop.set_rng_state(before)  # rewind: the training forward draws the same mask again
        return weighted_sum(drop.forward(x, training=True), R)

    assert 0 < drop.mask.sum() < drop.mask.size  # some kept, some dropped
    gradcheck(loss, {"x": x}, {"x": dx}).assert_ok(1e-8)


def test_rate_zero_is_the_identity_and_passes_check_layer():
    drop = Dropout(0.0, seed=0)
    x = x_of((3, 4, 5))
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)
    check_layer(drop, x).assert_ok(1e-8)


def test_rng_state_round_trip_reproduces_the_masks():
    drop = Dropout(0.5, seed=123)
    drop.forward(np.ones((4, 10)))  # advance the generator a little
    state = json.loads(json.dumps(drop.get_rng_state()))  # what a checkpoint stores
    masks = [drop.forward(np.ones((4, 10))) for _ in range(3)]
    drop.set_rng_state(state)
    again = [drop.forward(np.ones((4, 10))) for _ in range(3)]
    other = Dropout(0.5, seed=999)
    other.set_rng_state(state)
    resumed = [other.forward(np.ones((4, 10))) for _ in range(3)]
    for a, b, c in zip(masks, again, resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])  # successive masks differ


def test_seed_determines_the_masks():
    a, b, c = Dropout(0.5, seed=7), Dropout(0.5, seed=7), Dropout(0.5, seed=8)
    x = np.ones((10, 10))
    ya, yb, yc = a.forward(x), b.forward(x), c.forward(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)


def test_get_rng_state_returns_a_copy():
    drop = Dropout(0.5, seed=0)
    state = drop.get_rng_state()
    state["state"]["state"] = 0
    assert drop.get_rng_state()["state"]["state"] != 0


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), "0.5", True, None])
def test_rate_must_be_in_zero_one(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate must be a number in \[0, 1\); got"):
        Dropout(rate)


def test_forward_backward_and_state_errors():
    drop = Dropout(0.5, seed=0)
    with pytest.raises(ValueError, match=r"Dropout.backward: no forward pass to differentiate"):
        drop.backward(np.ones(3))
    drop.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dropout.backward: dy must have shape \(2, 3\)"):
        drop.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"Dropout.backward: dy has dtype float32 but the last forward input was float64"):
        drop.backward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"Dropout.forward: x contains NaN"):
        drop.forward(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"Dropout.forward: x must have dtype float32 or float64; got int64"):
        drop.forward(np.ones(3, np.int64))
    with pytest.raises(ValueError, match=r"Dropout.set_rng_state: state must be a PCG64 state dict .* got 'MT19937'"):
        drop.set_rng_state(np.random.MT19937(0).state)
    with pytest.raises(ValueError, match=r"Dropout.set_rng_state: state must be a PCG64 state dict .* got 'list'"):
        drop.set_rng_state([1, 2])
