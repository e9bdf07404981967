"""One tree given as both classes is refused (issue 19: ``bptt evaluate --signal-tree Events
--background-tree Events`` printed AUC 0.5000 and exit code 0): every event would be both signal
and background, so any model scores 0.5 and nothing says why."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bptt.data import read_tmva_root, write_tmva_root


def test_the_same_tree_for_both_classes_is_refused(tmp_path):
    path = tmp_path / "one.root"
    x = np.ones((3, 2, 4), np.float32)
    write_tmva_root(path, x, x)
    with pytest.raises(ValueError, match=r"^read_tmva_root: signal_tree and background_tree are both 'sgn': every event "
                                         r"would be in both classes; give one tree per class$"):
        read_tmva_root(path, signal_tree="sgn", background_tree="sgn")
    X, y = read_tmva_root(path)  # the two trees of the file still read
    assert X.shape == (6, 2, 4) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]


def test_the_command_line_exits_with_the_message(tmp_path):
    path = tmp_path / "one.root"
    x = np.ones((3, 2, 4), np.float32)
    write_tmva_root(path, x, x)
    model = tmp_path / "m.bptt"
    from bptt.model import Sequential

    Sequential.from_tmva("GRU|2|4|2|0|0,LINEAR", "2|4", seed=0).save(model)
    run = subprocess.run([sys.executable, "-m", "bptt", "evaluate", str(model), str(path), "--signal-tree", "sgn",
                          "--background-tree", "sgn"], capture_output=True, text=True)
    assert run.returncode == 2, run.stdout
    # the command line reads through bptt.data.sources (TMVA's DataLoader inputs), which says it in its terms
    assert "tree 'sgn' is both a signal and a background tree, so every event would be in both classes" in run.stderr
    assert run.stderr.count("\n") == 1
    assert "AUC" not in run.stdout.upper()
