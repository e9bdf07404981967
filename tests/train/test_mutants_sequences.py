"""Tests written against surviving mutants of bptt/sequences.py (tools/mutation.py, full profile):
the shapes of y named in words, the targets' conversions and refusals, the per-step rows with
weights, the losses' divisor, and the count of a loss's terms. Expected values written out by
hand (or by NumPy from the definitions in the module's docstring)."""

from fractions import Fraction

import numpy as np
import pytest

from bptt import sequences as S
from bptt.losses import make_loss


@pytest.mark.parametrize("loss,tail,words", [
    ("softmax_ce", (5, 3), "(n, 5) class indices per step or (n, 5, 3) class probabilities per step"),
    ("bce", (5, 1), "(n, 5) 0/1 labels per step (or (n, 5, 1))"),
    ("mse", (5, 1), "(n, 5) values per step (or (n, 5, 1))"),
    ("bce", (5, 2), "(n, 5, 2) 0/1 labels per step"),
    ("mse", (5, 2), "(n, 5, 2) values per step"),
    ("softmax_ce", (3,), "(n,) class indices or (n, 3) class probabilities"),
    ("bce", (1,), "(n,) 0/1 labels (or (n, 1))"),
    ("mse", (1,), "(n,) values (or (n, 1))"),
    ("mse", (2,), "(n, 2) values"),
    ("bce", (2,), "(n, 2) 0/1 labels"),
    ("mse", (4, 5, 6), "(n, 4, 5, 6)"),
    ("mse", (), "(n,)"),
])
def test_expected_targets_in_words(loss, tail, words):
    assert S.expected_targets(loss, tail) == words


def test_targets_refusals_name_y_and_the_shapes():
    with pytest.raises(ValueError, match=r"^fit: y must be an array of numbers; NumPy cannot convert it \("):
        S.targets("fit", "bce", [[1.0], [1.0, 2.0]], 2, (1,), np.float64)
    with pytest.raises(ValueError, match=r"^fit: y must hold numbers \(\(n, 4\) 0/1 labels per step \(or \(n, 4, 1\)\)\); "
                                         r"got dtype <U1$"):
        S.targets("fit", "bce", np.array([["a"] * 4] * 2), 2, (4, 1), np.float64)
    with pytest.raises(ValueError, match=r"^fit: y must hold numbers .*; got dtype object$"):
        S.targets("fit", "mse", np.array([object(), object()]), 2, (1,), np.float64)
    with pytest.raises(ValueError, match=r"^fit: y contains nan at index \(1, 2\); every target of a real step"):
        S.targets("fit", "mse", np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.nan]]), 2, (3, 1), np.float64)
    with pytest.raises(ValueError, match=r"^fit: y contains inf at index \(1,\);"):
        S.targets("fit", "mse", np.array([0.0, np.inf]), 2, (1,), np.float64)


def test_targets_conversions():
    # numbers NumPy holds as objects (Fractions) become float64, then the network's dtype
    t = S.targets("fit", "mse", np.array([Fraction(1, 2), Fraction(3, 4)], dtype=object), 2, (1,), np.float32)
    assert t.dtype == np.float32 and t.tolist() == [0.5, 0.75]
    # integer labels for bce become floats of the network's dtype
    t = S.targets("fit", "bce", np.array([[1], [0]]), 2, (1,), np.float32)
    assert t.dtype == np.float32 and t.shape == (2, 1)
    # a column of class indices for a softmax over 3 classes: (n,), kept as integers
    t = S.targets("fit", "softmax_ce", np.array([[2], [0]]), 2, (3,), np.float64)
    assert t.shape == (2,) and t.dtype.kind == "i" and t.tolist() == [2, 0]
    # per-step class indices stay as given; per-step probabilities take the dtype
    t = S.targets("fit", "softmax_ce", np.array([[1, 2], [0, 1]]), 2, (2, 3), np.float32)
    assert t.dtype.kind == "i"
    t = S.targets("fit", "softmax_ce", np.full((2, 2, 3), 1 / 3), 2, (2, 3), np.float32)
    assert t.dtype == np.float32
    # a (n, 1) softmax target for one output unit stays (n, 1)
    assert S.targets("fit", "softmax_ce", np.array([[1.0], [0.0]]), 2, (1,), np.float64).shape == (2, 1)
    # padded steps' targets (anything, NaN included) are 0 with lengths
    y = np.array([[1.0, np.nan, np.inf], [0.0, 1.0, 1.0]])
    t = S.targets("fit", "bce", y, 2, (3, 1), np.float64, lengths=np.array([1, 3]))
    assert t.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def test_inputs_refuses_what_numpy_cannot_convert():
    with pytest.raises(ValueError, match=r"^fit: X must be an array of shape \(n, T, F\); NumPy cannot convert it \("):
        S.inputs("fit", [[[1.0]], [[1.0], [2.0]]], np.array([1, 1]))


def test_zero_padding_only_where_steps_are_padded():
    a = np.arange(12.0).reshape(2, 3, 2)
    assert S.zero_padding(a, np.array([3, 3])) is a
    assert S.zero_padding(a, None) is a
    z = S.zero_padding(a, np.array([1, 2]))
    assert z.tolist() == [[[0, 1], [0, 0], [0, 0]], [[6, 7], [8, 9], [0, 0]]]
    z = S.zero_padding(a, np.array([3, 1]))  # one sequence of full length, one not
    assert z[0].tolist() == a[0].tolist() and z[1, 1:].tolist() == [[0, 0], [0, 0]]


def test_real_rows_weights_each_step_by_its_sequence():
    out = np.arange(12.0).reshape(2, 3, 2)
    y = out + 1
    w = np.array([2.0, 0.5])
    rows, t, wr, mask = S.real_rows(out, y, None, w)
    assert rows.shape == (6, 2) and t.shape == (6, 2) and mask is None
    assert wr.tolist() == [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]
    rows, t, wr, mask = S.real_rows(out, y, np.array([1, 2]), w)
    assert wr.tolist() == [2.0, 0.5, 0.5] and rows.tolist() == [[0, 1], [6, 7], [8, 9]]
    assert S.real_rows(out, y, None, None)[2] is None


def test_loss_and_grad_divides_by_weight_total_when_given():
    loss = make_loss("mse")
    out = np.array([[[1.0], [2.0]], [[0.0], [4.0]]])
    y = np.zeros((2, 2, 1))
    value, grad = S.loss_and_grad(loss, out, y)  # the plain mean over the 4 steps
    assert value == pytest.approx((1 + 4 + 0 + 16) / 4)
    ones = np.ones(2)
    value, grad = S.loss_and_grad(loss, out, y, sample_weight=ones, weight_total=10.0)  # Σ w ℓ / 10
    assert value == pytest.approx((1 + 4 + 0 + 16) / 10)
    np.testing.assert_allclose(grad, 2 * out / 10)
    value, _ = S.loss_and_grad(loss, out, y, lengths=np.array([1, 2]), sample_weight=np.array([3.0, 1.0]),
                               weight_total=10.0)
    assert value == pytest.approx((3 * 1 + 0 + 16) / 10)
    # as the losses take it: a divisor of Σ w·loss needs the weights
    with pytest.raises(ValueError, match=r"weight_total=10.0 needs sample_weight"):
        S.loss_and_grad(loss, out, y, weight_total=10.0)


def test_units_counts_a_losss_terms():
    assert S.units((7, 5, 2), None) == 35  # every step of every sequence
    assert S.units((7, 5, 2), np.array([1, 2, 3, 4, 5, 5, 5])) == 25  # the real steps
    assert S.units((7, 3), np.array([1, 2, 3, 4, 5, 5, 5])) == 7  # one term per sequence
    assert S.units((7,), None) == 7
