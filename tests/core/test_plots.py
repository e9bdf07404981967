"""ROC and loss plots: real PNG files of sensible size, written atomically; matplotlib imported lazily."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import matplotlib  # noqa: E402, F401  (a dependency of the package: a missing install fails, not skips)

from bptt.metrics import roc_auc, roc_curve  # noqa: E402
from bptt.plots import plot_loss, plot_roc  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = open(path, "rb").read(24)
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    out = {}
    for name, noise in (("LSTM", 0.6), ("GRU", 1.0), ("RNN", 2.0)):
        s = y + rng.normal(0, noise, 400)
        fpr, tpr, _ = roc_curve(y, s)
        out[name] = (fpr, tpr, roc_auc(y, s))
    return out


HISTORIES = {
    "LSTM": {"train": [0.69, 0.52, 0.44, 0.40], "val": [0.70, 0.58, 0.53, 0.54]},
    "GRU": {"train": [0.69, 0.50, 0.41], "val": [0.71, 0.57, 0.55]},
    "RNN": {"train": [0.70, 0.65, float("nan"), 0.6]},  # a diverged step shows as a gap
}


def test_plot_roc_writes_a_png(tmp_path, curves):
    path = tmp_path / "roc.png"
    assert plot_roc(curves, path, title="three networks") == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 10_000  # lines, legend and text, not a blank canvas
    assert png_size(path) == (768, 576)
    assert os.listdir(tmp_path) == ["roc.png"]


def test_plot_loss_writes_a_png(tmp_path):
    path = tmp_path / "loss.png"
    assert plot_loss(HISTORIES, path) == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 10_000
    assert png_size(path) == (768, 576)


def test_more_curves_draw_more_ink(tmp_path, curves):
    one, three = tmp_path / "one.png", tmp_path / "three.png"
    plot_roc({"LSTM": curves["LSTM"]}, one)
    plot_roc(curves, three)
    assert three.stat().st_size > one.stat().st_size


@pytest.mark.parametrize("which", ["roc", "loss"])
def test_failed_write_leaves_existing_file_untouched(tmp_path, curves, monkeypatch, which):
    from matplotlib.figure import Figure

    path = tmp_path / "plot.png"
    path.write_bytes(b"previous plot")

    def broken_savefig(self, f, **kwargs):
        f.write(PNG_MAGIC + b"half a picture")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        if which == "roc":
            plot_roc(curves, path)
        else:
            plot_loss(HISTORIES, path)
    assert path.read_bytes() == b"previous plot"
    assert os.listdir(tmp_path) == ["plot.png"]


def test_plot_roc_errors(tmp_path, curves):
    fpr, tpr, auc = curves["LSTM"]
    with pytest.raises(ValueError, match=r"plot_roc: path must name a \.png file \(the only format written\); got '.*roc\.pdf'"):
        plot_roc(curves, tmp_path / "roc.pdf")
    with pytest.raises(ValueError, match=r"plot_roc: curves must be a non-empty dict \{name: \(fpr, tpr, auc\)\}; got \{\}"):
        plot_roc({}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match=r"plot_roc: curves\['LSTM'\] fpr and tpr must have the same length; got \d+ and 3"):
        plot_roc({"LSTM": (fpr, tpr[:3], auc)}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match=r"plot_roc: curves\['LSTM'\] must be a tuple \(fpr, tpr, auc\); got tuple"):
        plot_roc({"LSTM": (fpr, tpr)}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match=r"plot_roc: curves\['LSTM'\] auc must be a finite number; got nan"):
        plot_roc({"LSTM": (fpr, tpr, float("nan"))}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match=r"plot_roc: curves\['LSTM'\] tpr must hold finite rates in \[0, 1\]"):
        plot_roc({"LSTM": (fpr, tpr * 2, auc)}, tmp_path / "roc.png")
    assert os.listdir(tmp_path) == []


def test_plot_loss_errors(tmp_path):
    with pytest.raises(ValueError, match=r"plot_loss: histories\['LSTM'\] must be a dict with 'train' and/or 'val' lists; got \['loss'\]"):
        plot_loss({"LSTM": {"loss": [1.0]}}, tmp_path / "l.png")
    with pytest.raises(ValueError, match=r"plot_loss: histories\['LSTM'\]\['train'\] must be a 1-D list of losses, one per epoch"):
        plot_loss({"LSTM": {"train": [[1.0, 2.0]]}}, tmp_path / "l.png")
    with pytest.raises(ValueError, match=r"plot_loss: every loss list in histories is empty"):
        plot_loss({"LSTM": {"train": [], "val": []}}, tmp_path / "l.png")
    with pytest.raises(ValueError, match=r"plot_loss: path must name a \.png file"):
        plot_loss(HISTORIES, tmp_path / "l.svg")
    assert os.listdir(tmp_path) == []


def test_importing_bptt_does_not_import_matplotlib_or_uproot():
    code = (
        "import sys, bptt, bptt.plots, bptt.metrics, bptt.tmva, bptt.data; "
        "print(sorted(m for m in ('matplotlib', 'uproot', 'awkward') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
