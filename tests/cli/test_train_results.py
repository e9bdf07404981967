"""``bptt train`` keeps TMVA's test split and reports on it as TMVA does: the tables, the output ROOT
file with TrainTree and TestTree, the JSON of the figures and the plots (issue 19, point 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import uproot
from sklearn import metrics as skm

from bptt.data.events import tmva_split
from bptt.data.toy import write_tutorial_root
from bptt.model import Sequential

LAYOUT = ["--layout", "GRU|4|30|10|0|0,DENSE|1|SIGMOID", "--input-layout", "10|30",
          "--training-strategy", "LearningRate=1e-2,BatchSize=20,MaxEpochs=2,Optimizer=ADAM"]


def bptt(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bptt", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training on a ROOT file in the tutorial's layout (60 events per class, 2 epochs)."""
    d = tmp_path_factory.mktemp("train_results")
    data = write_tutorial_root(str(d / "data.root"), n_events=60, seed=3)
    run = bptt("train", data, *LAYOUT, "--out", str(d / "net.bptt"), "--quiet")
    assert run.returncode == 0, run.stderr
    return d, data, run


def test_train_writes_model_results_json_and_plots(trained):
    d, _, run = trained
    assert sorted(os.listdir(d)) == ["data.root", "net.bptt", "net.json", "net.root", "net_loss.png",
                                     "net_overtraining.png", "net_roc.png"]
    for png in ("net_loss.png", "net_overtraining.png", "net_roc.png"):
        assert (d / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "trained 2 epochs" in run.stdout and "on 60 events" in run.stdout  # half of the 120 events
    assert "Testing efficiency compared to training efficiency (overtraining check)" in run.stdout
    assert "Testing for overtraining using the Kolmogorov-Smirnov test" in run.stdout


def test_model_file_names_its_inputs(trained):
    d, _, _ = trained
    model = Sequential.load(str(d / "net.bptt"))
    assert model.inputs == [{"name": f"vars_time{j}", "size": 30} for j in range(10)]


def test_test_tree_holds_the_test_events_and_their_scores(trained):
    d, data, _ = trained
    with uproot.open(data) as f:
        sig = np.stack([f["sgn"][f"vars_time{j}"].array(library="np") for j in range(10)], axis=1)
        bkg = np.stack([f["bkg"][f"vars_time{j}"].array(library="np") for j in range(10)], axis=1)
    X = np.concatenate([sig, bkg]).astype(np.float32)
    y = np.r_[np.ones(len(sig)), np.zeros(len(bkg))]
    is_train = tmva_split(y, seed=100)  # TMVA's default split, the one the command documents
    model = Sequential.load(str(d / "net.bptt"))
    with uproot.open(str(d / "net.root")) as f:
        for tree, part in (("TrainTree", is_train), ("TestTree", ~is_train)):
            a = f[f"dataset/{tree}"].arrays(library="np")
            assert len(a["classID"]) == part.sum() == 60
            np.testing.assert_array_equal(a["classID"], np.where(y[part] == 1, 0, 1))
            np.testing.assert_array_equal(a["weight"], 1.0)
            for j in (0, 9):
                np.testing.assert_array_equal(a[f"vars_time{j}"], X[part][:, j])
            np.testing.assert_allclose(a["net"], model.predict_proba(X[part]), rtol=1e-6)


def test_json_figures_match_sklearn_on_the_test_tree(trained):
    d, _, run = trained
    result = json.loads((d / "net.json").read_text())
    with uproot.open(str(d / "net.root")) as f:
        a = f["dataset/TestTree"].arrays(library="np")
    signal = a["classID"] == 0
    auc = skm.roc_auc_score(signal, a["net"], sample_weight=a["weight"])
    m = result["metrics"]
    assert m["roc_integral"]["test"] == pytest.approx(auc, abs=1e-6)
    fpr, tpr, _ = skm.roc_curve(signal, a["net"], drop_intermediate=False)
    assert m["signal_efficiency"]["0.30"]["test"] == pytest.approx(np.interp(0.3, fpr, tpr), abs=1e-6)
    assert result["split"] == {"train": 60, "test": 60} and result["method"] == "net"
    assert result["inputs"][0] == {"name": "vars_time0", "size": 30}
    assert f"{m['roc_integral']['test']:#1.3f}" in run.stdout


def test_results_options_and_a_file_that_would_be_replaced(trained, tmp_path):
    _, data, _ = trained
    run = bptt("train", data, *LAYOUT, "--out", str(tmp_path / "m.bptt"), "--results", data, "--quiet")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == (f"bptt train: error: --results: the results file {data!r} would replace the input "
                                  f"file; give another --results FILE")
    assert not (tmp_path / "m.bptt").exists()  # refused before training
    run = bptt("train", data, *LAYOUT, "--out", str(tmp_path / "m.bptt"), "--results", str(tmp_path / "no" / "r.root"))
    assert run.returncode == 2 and "--results: the directory" in run.stderr and "does not exist" in run.stderr
    run = bptt("train", data, *LAYOUT, "--out", str(tmp_path / "m.bptt"), "--results", str(tmp_path / "r.root"),
               "--plots", str(tmp_path / "figs"), "--method", "DL_GRU", "--quiet")
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(tmp_path / "figs")) == ["m_loss.png", "m_overtraining.png", "m_roc.png"]
    with uproot.open(str(tmp_path / "r.root")) as f:
        assert "DL_GRU" in f["dataset/TestTree"].keys()
    assert "dataset              DL_GRU         : " in run.stdout
