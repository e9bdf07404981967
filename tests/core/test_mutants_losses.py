"""bptt.losses where mutation testing found no test (docs/mutation.md): the exact messages of the
input checks (each names the function or loss, the argument, the expected layout and what it
got), the softmax over the last axis of a 3-D array and of a 1-D one, targets that overflow the
outputs' float32, the non-integer class index named in the message, and the losses' repr.
Expected values are written by hand or by a plain NumPy formula in the test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt.losses import (
    BinaryCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    make_loss,
    sigmoid_probability,
    softmax_probability,
)


def raises_exactly(message):
    """pytest.raises(ValueError) matching the whole message, written out literally."""
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


HINT = "; convert it with logits.astype(np.float32) (or float64 for verification)"


@pytest.mark.parametrize(
    "fn,logits,message",
    [
        (sigmoid_probability, np.array([1, 2]),
         "sigmoid_probability: logits must have dtype float32 or float64; got int64" + HINT),
        (sigmoid_probability, np.zeros(0),
         "sigmoid_probability: logits must not have an empty axis; expected (B, ...), got shape (0,)"),
        (softmax_probability, np.array([[1, 2]]),
         "softmax_probability: logits must have dtype float32 or float64; got int64" + HINT),
        (softmax_probability, np.zeros((2, 0)),
         "softmax_probability: logits must not have an empty axis; expected (B, ..., C), got shape (2, 0)"),
    ],
    ids=["sigmoid-int", "sigmoid-empty", "softmax-int", "softmax-empty"],
)
def test_probability_messages_name_function_argument_and_layout(fn, logits, message):
    with raises_exactly(message):
        fn(logits)


def softmax_last_axis(x):
    """The plain formula: e^x / Σ e^x over the last axis (the test's logits are small)."""
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(
    "logits",
    [
        np.array([0.0, np.log(3.0)]),  # one vector of C = 2 classes: [1/4, 3/4]
        np.arange(12.0).reshape(2, 3, 2) * np.array([1.0, -0.5]),  # (B, T, C): over C, not T
    ],
    ids=["1-D", "3-D"],
)
def test_softmax_probability_is_over_the_last_axis(logits):
    p = softmax_probability(logits)
    np.testing.assert_allclose(p, softmax_last_axis(logits), rtol=1e-14)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-14)


def test_softmax_probability_of_one_vector_by_hand():
    np.testing.assert_allclose(softmax_probability(np.array([0.0, np.log(3.0)])), [0.25, 0.75], rtol=1e-15)


@pytest.mark.parametrize(
    "loss,outputs,message",
    [
        (BinaryCrossEntropy(), np.zeros(0),
         "BinaryCrossEntropy: outputs must not have an empty axis; expected (B,) or (B, 1) logits, got shape (0,)"),
        (MeanSquaredError(), np.zeros((3, 0)),
         "MeanSquaredError: outputs must not have an empty axis; expected outputs of any shape, got shape (3, 0)"),
    ],
    ids=["bce", "mse"],
)
def test_loss_outputs_messages_name_the_layout(loss, outputs, message):
    with raises_exactly(message):
        loss.value_and_grad(outputs, outputs)


@pytest.mark.parametrize(
    "targets,message",
    [
        (np.array(["a", "b"]), "MeanSquaredError: targets must be a numeric array; got dtype <U1"),
        (np.zeros(3), "MeanSquaredError: targets must have the shape of outputs (2,); got (3,)"),
        (np.zeros((2, 1)),
         "MeanSquaredError: targets must have the shape of outputs (2,); got (2, 1); "
         "reshape them with targets.reshape(outputs.shape)"),
        # 1e300 is finite in float64 but not once converted to the outputs' float32
        (np.array([0.0, 1e300]), "MeanSquaredError: targets contain inf at index (1,); every target must be finite"),
    ],
    ids=["strings", "other-size", "same-size", "overflows-float32"],
)
def test_target_messages(targets, message):
    with raises_exactly(message), np.errstate(over="ignore"):  # NumPy warns of the overflowing cast
        MeanSquaredError().value_and_grad(np.zeros(2, np.float32), targets)


@pytest.mark.parametrize(
    "targets,message",
    [
        (np.array([0.0, 1.5, 2.5]),
         "SoftmaxCrossEntropy: class-index targets must be whole numbers; got non-integer floats such as 1.5 "
         "(pass probabilities as a (B, C) array)"),
        (np.array([True, False, True]), "SoftmaxCrossEntropy: class-index targets must be integers; got dtype bool"),
    ],
    ids=["fraction", "bool"],
)
def test_class_index_messages(targets, message):
    with raises_exactly(message):
        SoftmaxCrossEntropy().value_and_grad(np.zeros((3, 3)), targets)


def test_make_loss_refuses_a_name_that_is_not_a_string():
    with raises_exactly(
        "make_loss: name must be one of bce, binary_crossentropy, cross_entropy_binary, softmax_ce, "
        "categorical_crossentropy, cross_entropy, mse (case-insensitive); got None"
    ):
        make_loss(None)


@pytest.mark.parametrize(
    "name,text", [("bce", "BinaryCrossEntropy()"), ("cross_entropy", "SoftmaxCrossEntropy()"), ("MSE", "MeanSquaredError()")]
)
def test_repr_is_the_class_call(name, text):
    assert repr(make_loss(name)) == text
