"""TMVA's evaluation plots: background rejection against signal efficiency, and the classifier output
training vs test; real PNG files, written atomically, and one-line errors naming the argument."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bptt.metrics import efficiency_curve, roc_auc
from bptt.plots import plot_overtraining, plot_rejection

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def outputs():
    rng = np.random.default_rng(0)

    def part(n, mean):
        return rng.normal(mean, 0.15, n).clip(0, 1), np.ones(n)

    return ({"signal": part(300, 0.7), "background": part(300, 0.3)},
            {"signal": part(300, 0.72), "background": part(300, 0.28)})


def test_plot_rejection_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = y + rng.normal(0, 1, 300)
    eff_b, eff_s, _ = efficiency_curve(y, s)
    path = plot_rejection({"LSTM": (eff_s, 1 - eff_b, roc_auc(y, s))}, tmp_path / "roc.png")
    assert path == str(tmp_path / "roc.png") and open(path, "rb").read(8) == PNG
    assert os.path.getsize(path) > 10_000 and os.listdir(tmp_path) == ["roc.png"]


def test_plot_overtraining_writes_a_png(tmp_path, outputs):
    test, train = outputs
    path = plot_overtraining(test, train, tmp_path / "ot.png", value_range=(0.0, 1.0), bins=40,
                             ks={"signal": 0.31, "background": 0.02})
    assert open(path, "rb").read(8) == PNG and os.path.getsize(path) > 10_000
    # an empty training class still draws (points at zero), and no KS probabilities is allowed
    empty = {"signal": train["signal"], "background": (np.array([5.0]), np.array([1.0]))}
    assert open(plot_overtraining(test, empty, tmp_path / "b.png", value_range=(0, 1)), "rb").read(8) == PNG


def test_plot_errors(tmp_path, outputs):
    test, train = outputs
    with pytest.raises(ValueError, match=r"^plot_rejection: curves\['A'\] must be a tuple \(eff_s, rejection, roc_integral\)"):
        plot_rejection({"A": (np.zeros(3), np.zeros(3))}, tmp_path / "r.png")
    with pytest.raises(ValueError, match=r"^plot_rejection: curves\['A'\] rejection must hold finite rates in \[0, 1\]"):
        plot_rejection({"A": (np.zeros(3), np.full(3, 2.0), 0.5)}, tmp_path / "r.png")
    with pytest.raises(ValueError, match=r"^plot_rejection: curves\['A'\] roc_integral must be a finite number"):
        plot_rejection({"A": (np.zeros(3), np.zeros(3), float("nan"))}, tmp_path / "r.png")
    with pytest.raises(ValueError, match=r"^plot_rejection: path must name a \.png file"):
        plot_rejection({"A": (np.zeros(3), np.zeros(3), 0.5)}, tmp_path / "r.pdf")
    with pytest.raises(ValueError, match=r"^plot_overtraining: train must be a dict with 'signal' and 'background'"):
        plot_overtraining(test, {"signal": train["signal"]}, tmp_path / "o.png", value_range=(0, 1))
    with pytest.raises(ValueError, match=r"^plot_overtraining: test\['signal'\] must be two finite 1-D arrays of the same"):
        plot_overtraining({**test, "signal": (np.zeros(3), np.ones(2))}, train, tmp_path / "o.png", value_range=(0, 1))
    with pytest.raises(ValueError, match=r"^plot_overtraining: value_range must be two finite numbers, low < high"):
        plot_overtraining(test, train, tmp_path / "o.png", value_range=(1, 1))
    with pytest.raises(ValueError, match=r"^plot_overtraining: bins must be a positive integer; got 0"):
        plot_overtraining(test, train, tmp_path / "o.png", value_range=(0, 1), bins=0)
    assert os.listdir(tmp_path) == []
