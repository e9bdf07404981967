"""Losses against PyTorch (value and autograd gradient), finite differences, and input errors.

Tolerances: float64 1e-12, float32 1e-6, each relative — elementwise, with a floor of 1e-3 of the
array's largest element, so a gradient entry near 0 (σ(x) ≈ y) is judged against the array's
scale rather than its own tiny size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bptt.gradcheck import gradcheck
from bptt.losses import (
    BinaryCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    make_loss,
    sigmoid_probability,
    softmax_probability,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py

TOL = {np.float64: 1e-12, np.float32: 1e-6}
DTYPES = [np.float64, np.float32]
DT_IDS = ["float64", "float32"]


def assert_close(actual, expected, tol):
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=tol, atol=tol * 1e-3 * np.abs(expected).max())


def logits_with_extremes(shape, seed, dtype):
    """Random logits of moderate size with ±50 and ±30 planted in them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape)
    flat = x.reshape(-1)
    flat[:4] = [50.0, -50.0, 30.0, -30.0]
    return x.astype(dtype)


def torch_value_and_grad(torch_loss, outputs, targets):
    x = torch.tensor(outputs, requires_grad=True)
    value = torch_loss(x, targets)
    value.backward()
    return value.item(), x.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(16,), (16, 1)], ids=["B", "B1"])
def test_bce_matches_torch(dtype, shape):
    x = logits_with_extremes(shape, 0, dtype)
    rng = np.random.default_rng(1)
    t = rng.uniform(size=shape)
    t.reshape(-1)[:8] = [1, 0, 0, 1, 1, 1, 0, 0]  # hard labels, both agreeing and fighting the extreme logits
    t = t.astype(dtype)
    value, grad = BinaryCrossEntropy().value_and_grad(x, t)
    ref_value, ref_grad = torch_value_and_grad(torch.nn.BCEWithLogitsLoss(), x, torch.tensor(t))
    assert isinstance(value, float) and grad.shape == x.shape and grad.dtype == dtype
    assert value == pytest.approx(ref_value, rel=TOL[dtype])
    assert_close(grad, ref_grad, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_softmax_ce_matches_torch(dtype, targets):
    B, C = 12, 5
    x = logits_with_extremes((B, C), 2, dtype)
    x[3] = [50.0, -50.0, 50.0, 0.0, -50.0]
    rng = np.random.default_rng(3)
    if targets == "indices":
        t = rng.integers(0, C, size=B)
        t[0], t[3] = 1, 2  # row 0: the class whose logit is −50 (max +50); row 3: a tied +50 class
        torch_t = torch.tensor(t)
    else:
        t = rng.dirichlet(np.ones(C), size=B).astype(dtype)
        t[0] = [0, 1, 0, 0, 0]  # all mass on the class whose logit is −50 while the max is +50
        t[3] = [0.5, 0, 0.5, 0, 0]
        torch_t = torch.tensor(t)
    value, grad = SoftmaxCrossEntropy().value_and_grad(x, t)
    ref_value, ref_grad = torch_value_and_grad(torch.nn.CrossEntropyLoss(), x, torch_t)
    assert grad.shape == x.shape and grad.dtype == dtype
    assert value == pytest.approx(ref_value, rel=TOL[dtype])
    assert_close(grad, ref_grad, TOL[dtype])
    # Row 0 alone contributes −log p ≥ 50 − (−50) = 100: the extreme logits are really in play.
    assert value > 100 / B


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(7,), (6, 3), (2, 5, 4)], ids=["1d", "2d", "3d"])
def test_mse_matches_torch(dtype, shape):
    rng = np.random.default_rng(4)
    x, t = rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)
    value, grad = MeanSquaredError().value_and_grad(x, t)
    ref_value, ref_grad = torch_value_and_grad(torch.nn.MSELoss(), x, torch.tensor(t))
    assert grad.dtype == dtype
    assert value == pytest.approx(ref_value, rel=TOL[dtype])
    assert_close(grad, ref_grad, TOL[dtype])


def test_probabilities_match_torch():
    x = logits_with_extremes((6, 4), 5, np.float64)
    x[0, 0] = -800.0  # far beyond exp's range
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sig, soft = sigmoid_probability(x), softmax_probability(x)
    assert_close(sig, torch.sigmoid(torch.tensor(x)).numpy(), 1e-12)
    assert_close(soft, torch.softmax(torch.tensor(x), dim=-1).numpy(), 1e-12)
    # The tails keep their relative precision: σ(−50) = e^−50 / (1 + e^−50), not 0.
    assert sigmoid_probability(np.array([-50.0]))[0] == pytest.approx(np.exp(-50.0), rel=1e-15)
    assert sigmoid_probability(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=-1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_extreme_logits_stay_finite_without_warnings(dtype):
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = BinaryCrossEntropy().value_and_grad(x, np.array([1.0, 0.0, 1.0, 1.0, 0.0], dtype))
        ce_value, ce_grad = SoftmaxCrossEntropy().value_and_grad(x.reshape(1, -1), np.array([0]))
    # Terms: 1000 (wrong by 1000), ~0, log 2, ~0, 1000 (wrong by 1000).
    assert value == pytest.approx((2000.0 + np.log(2.0)) / 5, rel=TOL[dtype])
    assert np.isfinite(grad).all() and np.isfinite(ce_grad).all()
    assert ce_value == pytest.approx(2000.0, rel=TOL[dtype])


@pytest.mark.parametrize(
    "loss,outputs,targets",
    [
        ("bce", (9,), "soft"),
        ("bce", (9, 1), "hard"),
        ("softmax_ce", (6, 4), "indices"),
        ("softmax_ce", (6, 4), "probabilities"),
        ("mse", (3, 4, 2), "real"),
    ],
)
def test_gradient_matches_finite_differences(loss, outputs, targets):
    rng = np.random.default_rng(6)
    x = rng.normal(scale=2.0, size=outputs)
    t = {
        "soft": lambda: rng.uniform(size=outputs),
        "hard": lambda: rng.integers(0, 2, size=outputs).astype(np.float64),
        "indices": lambda: rng.integers(0, outputs[1], size=outputs[0]),
        "probabilities": lambda: rng.dirichlet(np.ones(outputs[1]), size=outputs[0]),
        "real": lambda: rng.normal(size=outputs),
    }[targets]()
    fn = make_loss(loss)
    _, grad = fn.value_and_grad(x, t)
    report = gradcheck(lambda: fn(x, t), {"outputs": x}, {"outputs": grad})
    report.assert_ok(1e-7)


def test_probability_targets_need_not_sum_to_one():
    """With targets y that do not sum to 1 the gradient is p·Σy − y (torch's rule), not p − y."""
    x = np.random.default_rng(7).normal(size=(3, 4))
    t = np.full((3, 4), 0.5)
    _, grad = SoftmaxCrossEntropy().value_and_grad(x, t)
    _, ref = torch_value_and_grad(torch.nn.CrossEntropyLoss(), x, torch.tensor(t))
    assert_close(grad, ref, 1e-12)
    report = gradcheck(lambda: SoftmaxCrossEntropy()(x, t), {"x": x}, {"x": grad})
    report.assert_ok(1e-7)


def test_make_loss_names_and_aliases():
    for name, cls in [
        ("bce", BinaryCrossEntropy),
        ("BINARY_CROSSENTROPY", BinaryCrossEntropy),
        ("cross_entropy_binary", BinaryCrossEntropy),
        ("softmax_ce", SoftmaxCrossEntropy),
        ("Categorical_Crossentropy", SoftmaxCrossEntropy),
        ("cross_entropy", SoftmaxCrossEntropy),
        ("MSE", MeanSquaredError),
    ]:
        loss = make_loss(name)
        assert type(loss) is cls and make_loss(loss.name).name == loss.name
    assert [make_loss(n).name for n in ("bce", "softmax_ce", "mse")] == ["bce", "softmax_ce", "mse"]
    with pytest.raises(ValueError, match=r"make_loss: name must be one of bce, binary_crossentropy, .*mse \(case-insensitive\); got 'hinge'"):
        make_loss("hinge")


def test_call_returns_the_value():
    x, t = np.array([0.3, -1.2]), np.array([1.0, 0.0])
    for loss in (BinaryCrossEntropy(), MeanSquaredError()):
        assert loss(x, t) == loss.value_and_grad(x, t)[0]


def test_label_dtypes_are_accepted():
    x = np.array([[0.3], [-1.2]])
    ref = BinaryCrossEntropy()(x, np.array([[1.0], [0.0]]))
    assert BinaryCrossEntropy()(x, np.array([[True], [False]])) == ref
    assert BinaryCrossEntropy()(x, np.array([[1], [0]])) == ref
    logits = np.array([[1.0, 2.0, 0.5]])
    assert SoftmaxCrossEntropy()(logits, np.array([2.0])) == SoftmaxCrossEntropy()(logits, np.array([2]))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: BinaryCrossEntropy()(np.zeros((4, 1)), np.zeros(4)),
         r"BinaryCrossEntropy: targets must have the shape of outputs \(4, 1\); got \(4,\); reshape them"),
        (lambda: BinaryCrossEntropy()(np.zeros(4), np.array([0.0, 1.0, 1.5, 0.0])),
         r"BinaryCrossEntropy: targets must be probabilities in \[0, 1\]; got 1.5 at index \(2,\)"),
        (lambda: BinaryCrossEntropy()(np.zeros(2), np.array([-0.1, 1.0])), r"probabilities in \[0, 1\]; got -0.1"),
        (lambda: BinaryCrossEntropy()(np.array([0.0, np.nan]), np.zeros(2)), r"BinaryCrossEntropy: outputs contains NaN at index \(1,\)"),
        (lambda: MeanSquaredError()(np.array([np.inf, 0.0]), np.zeros(2)), r"MeanSquaredError: outputs contains Inf at index \(0,\)"),
        (lambda: MeanSquaredError()(np.zeros(2), np.array([0.0, np.nan])), r"MeanSquaredError: targets contain nan at index \(1,\)"),
        (lambda: MeanSquaredError()(np.zeros(3, np.int64), np.zeros(3)), r"MeanSquaredError: outputs must have dtype float32 or float64; got int64"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.array([0, 4, 1])),
         r"SoftmaxCrossEntropy: class index out of range: targets\[1\] = 4; expected 0 <= index < 4 \(C\)"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.array([0, -1, 1])), r"class index out of range: targets\[1\] = -1"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.array([0, 1])), r"class-index targets must have shape \(B,\) = \(3,\)"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.array([0.0, 1.5, 2.0])), r"class-index targets must be whole numbers"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.zeros((3, 5))), r"targets must have the shape of outputs \(3, 4\); got \(3, 5\)"),
        (lambda: SoftmaxCrossEntropy()(np.zeros((3, 4)), np.full((3, 4), 2.0)), r"targets must be probabilities in \[0, 1\]"),
        (lambda: SoftmaxCrossEntropy()(np.zeros(4), np.array([0])), r"SoftmaxCrossEntropy: outputs must be a 2-D array of shape \(B, C\) logits; got shape \(4,\)"),
    ],
)
def test_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
