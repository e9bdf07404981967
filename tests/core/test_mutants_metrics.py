"""bptt.metrics where mutation testing found no test (docs/mutation.md); expected values by hand."""

from __future__ import annotations

import pytest

from bptt.metrics import accuracy, roc_auc


def test_a_score_equal_to_the_threshold_is_signal():
    # documented: an event is signal when score >= threshold
    assert accuracy([1, 0], [0.5, 0.2]) == 1.0
    assert accuracy([0, 1], [0.0, 0.0], threshold=0.0) == 0.5


def test_accuracy_needs_only_one_class():
    # unlike a ROC curve, accuracy is defined on a sample of signal only
    assert accuracy([1, 1, 1, 1], [0.9, 0.2, 0.7, 0.5]) == 0.75


def test_scores_numpy_cannot_convert_are_named():
    with pytest.raises(ValueError, match=r"^roc_auc: scores must be a 1-D array of numbers; NumPy cannot convert it"):
        roc_auc([0, 1], [[0.1, 0.2], [0.3]])


def test_an_infinite_score_is_named_inf_and_a_nan_nan():
    with pytest.raises(ValueError, match=r"^accuracy: scores contains Inf at index 1; every value must be finite$"):
        accuracy([0, 1], [0.2, float("-inf")])
    with pytest.raises(ValueError, match=r"^accuracy: scores contains NaN at index 0; every value must be finite$"):
        accuracy([0, 1], [float("nan"), 0.2])
