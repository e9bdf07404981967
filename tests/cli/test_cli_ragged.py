"""bptt train / evaluate with ragged sequences from jagged branches (--sequence, --max-length) and
from an .npz file with lengths: the lengths reach fit, the model file names its jagged inputs.
Lengths compared with what ROOT read (root_fixtures.json: Length$(track_pt) per entry)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bptt.cli import main
from bptt.model import Sequential
from bptt.tmva.network import TrainingPlan

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures")
FILE = os.path.abspath(os.path.join(FIX, "jagged_tracks.root"))
TRACKS = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))["jagged"]["trees"]["tracks"]
BRANCHES = ["track_pt", "track_eta", "track_phi", "track_d0"]
TRAIN = ["--layout", "LSTM|4|4|6|0|0,LINEAR", "--input-layout", "6|4", "--training-strategy", "MaxEpochs=1,BatchSize=50",
         "--quiet"]


@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    original = TrainingPlan.fit

    def spy(self, X, y, **kwargs):
        calls.append((X, y, kwargs))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(TrainingPlan, "fit", spy)
    return calls


def test_train_with_jagged_branches(tmp_path, fit_calls, capsys):
    out = tmp_path / "m.bptt"
    with pytest.warns(UserWarning, match=r"sequences are longer than max_length=6"):
        code = main(["train", FILE, "--tree", "tracks", "--class-branch", "label", "--sequence", ",".join(BRANCHES),
                     "--max-length", "6", "--split", "SplitMode=Block", "--out", str(out)] + TRAIN)
    assert code == 0, capsys.readouterr().err
    X, y, kwargs = fit_calls[0]
    label = np.asarray(TRACKS["values"]["label"])
    lengths = np.asarray(TRACKS["values"]["Length$(track_pt)"])
    # Block split: the first half of each class's entries trains, in file order, signal first
    expected = np.r_[lengths[label == 1][:100], lengths[label == 0][:100]]
    assert X.shape == (200, 6, 4) and kwargs["lengths"].tolist() == np.minimum(expected, 6).astype(int).tolist()
    assert Sequential.load(out).inputs == [{"name": b, "size": 1, "jagged": True, "max_length": 6} for b in BRANCHES]


def test_train_from_an_npz_file_with_lengths(tmp_path, fit_calls, capsys):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 7, size=40)
    X = rng.normal(size=(40, 6, 4)).astype(np.float32) * (np.arange(6)[None, :, None] < lengths[:, None, None])
    np.savez(tmp_path / "d.npz", x=X, y=np.arange(40) % 2, lengths=lengths)
    assert main(["train", str(tmp_path / "d.npz"), "--split", "SplitMode=Block", "--out", str(tmp_path / "m.bptt")]
                + TRAIN) == 0, capsys.readouterr().err
    Xf, _, kwargs = fit_calls[0]
    signal, background = np.flatnonzero(np.arange(40) % 2 == 1), np.flatnonzero(np.arange(40) % 2 == 0)
    train_rows = np.sort(np.r_[signal[:10], background[:10]])  # Block: each class's first half
    np.testing.assert_array_equal(Xf, X[train_rows])
    assert kwargs["lengths"].tolist() == lengths[train_rows].tolist()
