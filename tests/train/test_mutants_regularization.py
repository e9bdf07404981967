"""bptt.regularization where mutation testing found no test (docs/mutation.md): the exact messages
of the argument checks (booleans are not numbers, gradients that are not float arrays of the
parameter's shape), λ = 1 and λ = 0, the float64 accumulation of float32 penalties, L1's
sign(0) = 0, and ``clip_grad_norm`` at and just below its threshold and with no gradients.
Expected values are written by hand (or by plain Python arithmetic on the same numbers).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt.regularization import clip_grad_norm, penalty_and_grad


def raises_exactly(message):
    """pytest.raises(ValueError) matching the whole message, written out literally."""
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


# --- penalty_and_grad ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grad,message",
    [
        ([[0.0, 0.0]], "penalty_and_grad: grads['W'] must be an array of the parameter's shape (1, 2); got list"),
        (np.zeros((2, 1)), "penalty_and_grad: grads['W'] must be an array of the parameter's shape (1, 2); got (2, 1)"),
    ],
    ids=["list", "transposed"],
)
def test_penalty_names_a_gradient_of_the_wrong_kind(grad, message):
    with raises_exactly(message):
        penalty_and_grad({"W": np.array([[1.0, 2.0]])}, {"W": grad}, "L2", 0.1)


@pytest.mark.parametrize("kind", ["L1", "L2"])
def test_a_boolean_weight_decay_is_refused(kind):
    with raises_exactly("penalty_and_grad: weight_decay must be a finite number >= 0; got True"):
        penalty_and_grad({"W": np.ones((1, 2))}, {"W": np.zeros((1, 2))}, kind, True)


def test_weight_decay_one_regularises():
    grads = {"W": np.zeros((1, 2))}
    assert penalty_and_grad({"W": np.array([[1.0, -3.0]])}, grads, "L2", 1.0) == 5.0  # (1 + 9) / 2
    np.testing.assert_array_equal(grads["W"], [[1.0, -3.0]])


def test_weight_decay_zero_does_not_look_at_the_gradients():
    assert penalty_and_grad({"W": np.ones((2, 2))}, {}, "L2", 0.0) == 0.0


@pytest.mark.parametrize(
    "kind,w,expected",
    [
        # squares 1 and 2⁻²⁴, both exact in float32; their float32 sum rounds to 1, float64's does not
        ("L2", [[1.0, 2.0**-12]], 0.5 * (1.0 + 2.0**-24)),
        ("L1", [[1.0, 2.0**-24]], 1.0 + 2.0**-24),
    ],
)
def test_float32_weights_are_summed_in_float64(kind, w, expected):
    params = {"W": np.array(w, np.float32)}
    grads = {"W": np.zeros((1, 2), np.float32)}
    assert penalty_and_grad(params, grads, kind, 1.0) == expected


def test_l1_leaves_the_gradient_of_a_zero_weight_alone():
    grads = {"W": np.array([[0.5, 0.5, 0.5]])}
    with np.errstate(all="raise"):
        assert penalty_and_grad({"W": np.array([[2.0, 0.0, -1.0]])}, grads, "L1", 0.25) == 0.75
    np.testing.assert_array_equal(grads["W"], [[0.75, 0.5, 0.25]])  # sign(0) = 0


# --- clip_grad_norm -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grads,message",
    [
        ({"W": np.array([1, 2])}, "clip_grad_norm: grads['W'] must be a float array; got int64"),
        ({"W": [1.0, 2.0]}, "clip_grad_norm: grads['W'] must be a float array; got list"),
    ],
    ids=["int", "list"],
)
def test_clip_names_a_gradient_that_is_not_a_float_array(grads, message):
    with raises_exactly(message):
        clip_grad_norm(grads, 1.0)


def test_a_boolean_max_norm_is_refused():
    grads = {"W": np.array([3.0, 4.0])}
    with raises_exactly("clip_grad_norm: max_norm must be a positive finite number; got True"):
        clip_grad_norm(grads, True)
    np.testing.assert_array_equal(grads["W"], [3.0, 4.0])


def test_no_gradients_have_norm_zero():
    assert clip_grad_norm({}, 1.0) == 0.0


def test_a_norm_below_max_norm_leaves_the_gradients_unchanged():
    grads = {"W": np.array([[3.0, 4.0]]), "b": np.array([0.0])}
    assert clip_grad_norm(grads, 7.5) == 5.0  # c = 7.5 / 5 = 1.5: no scaling
    np.testing.assert_array_equal(grads["W"], [[3.0, 4.0]])


def test_gradients_that_need_no_clipping_are_not_written():
    # c = max_norm / (0 + 1e-6) = 1 exactly: nothing to scale, so read-only arrays are fine
    g = np.zeros((2, 2))
    g.flags.writeable = False
    assert clip_grad_norm({"W": g}, 1e-6) == 0.0
