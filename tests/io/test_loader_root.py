"""DataLoader on files written by real ROOT (tests/fixtures/, tools/make_root_fixtures.py), compared
with what ROOT itself read from them (root_fixtures.json: TTreeFormula values, entry counts)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bptt.data.loader import DataLoader
from bptt.data.root import read_tmva_root

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
ROOTJ = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))
SINGLE = os.path.join(FIX, "single_tree.root")
S = ROOTJ["single"]
LABEL = np.array(S["values"]["label"])


def _time_loader():
    loader = DataLoader("dataset")
    for i in range(10):
        loader.AddVariablesArray(f"vars_time{i}", 30)
    path = os.path.join(FIX, "time_data_t10_d30.root")
    loader.AddSignalTree((path, "sgn"), 1.0)
    loader.AddBackgroundTree(f"{path}:bkg", 1.0)
    return loader


def test_make_time_data_ran_verbatim_and_is_read_as_root_reads_it():
    info = ROOTJ["time_data"]
    assert info["function"].startswith("void MakeTimeData(int n, int ntime, int ndim )")
    assert info["trees"]["sgn"]["type"] == "vector<float>"
    ev = _time_loader().PrepareTrainingAndTestTree("", "SplitMode=Random:SplitSeed=100:NormMode=NumEvents:!V")
    n = info["trees"]["sgn"]["entries"]
    assert ev.X.shape == (2 * n, 10, 30) and ev.X.dtype == np.float32
    assert ev.variables == [(f"vars_time{i}", 30) for i in range(10)]
    for offset, tree in ((0, "sgn"), (n, "bkg")):
        for j in range(10):
            b = info["trees"][tree]["branches"][f"vars_time{j}"]
            assert float(ev.X[offset:offset + n, j].astype(np.float64).sum()) == pytest.approx(b["sum"], rel=1e-6)
            for row, values in b["rows"].items():
                np.testing.assert_array_equal(ev.X[offset + int(row), j], np.float32(values))
    assert ev.y.tolist() == [1.0] * n + [0.0] * n
    # TMVA's default balance: half of each class for training; unit weights stay 1 under NumEvents
    assert ev.n_train == n and ev.is_train[:n].sum() == n // 2
    np.testing.assert_allclose(ev.weights, 1.0)
    X, y = read_tmva_root(os.path.join(FIX, "time_data_t10_d30.root"))  # the old reader agrees
    np.testing.assert_array_equal(X, ev.X)


@pytest.mark.parametrize("expression", [e for e in S["values"] if e not in ("label",)])
def test_variables_are_ttreeformulas_values(expression):
    loader = DataLoader()
    loader.AddVariable(expression)
    loader.AddTree((SINGLE, "events"), "Signal", 1.0, "label==1")
    loader.AddTree((SINGLE, "events"), "Background", 1.0, "label==0")
    ev = loader.PrepareTrainingAndTestTree("", "NormMode=None:!V")
    root = np.array(S["values"][expression])
    expected = np.r_[root[LABEL == 1], root[LABEL == 0]].astype(np.float32)
    assert ev.X.shape == (len(LABEL), 1)
    np.testing.assert_allclose(ev.X[:, 0], expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("cut", list(S["cut_entries"]))
def test_cuts_keep_the_entries_root_counts(cut):
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddTree((SINGLE, "events"), "Signal", 1.0, cut)
    loader.AddTree((SINGLE, "events"), "Background", 1.0, "")
    ev = loader.PrepareTrainingAndTestTree("", "nTrain_Signal=1:nTest_Signal=0:NormMode=None")
    assert int((ev.y == 1).sum()) == S["cut_entries"][cut]


def test_class_cuts_of_prepare_and_event_weights():
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddVariable("abs(x)*2")
    loader.SetWeightExpression("w")
    loader.AddTree((SINGLE, "events"), "Signal", 2.0)
    loader.AddTree((SINGLE, "events"), "Background", 0.5)
    ev = loader.PrepareTrainingAndTestTree("label==1", "label==0", "NormMode=None:SplitMode=Block")
    w = np.array(S["values"]["w"])
    np.testing.assert_allclose(ev.weights, np.r_[2.0 * w[LABEL == 1], 0.5 * w[LABEL == 0]], rtol=1e-6)
    assert (ev.weights < 0).sum() == (w < 0).sum() > 0  # negative weights are kept
    # Block: the first half of each class (file order) trains
    n_s, n_b = (LABEL == 1).sum(), (LABEL == 0).sum()
    assert ev.is_train.tolist() == [True] * (n_s // 2) + [False] * (n_s // 2) + [True] * (n_b // 2) + [False] * (n_b // 2)


def test_arrays_fixed_and_std_vector():
    loader = DataLoader()
    loader.AddVariablesArray("seq", 4)
    loader.AddVariablesArray("arr", 3)
    loader.AddVariablesArray("hits", 1)  # one value: hits[0], present in every entry
    loader.AddTree((SINGLE, "events"), "Signal", 1.0, "label==1")
    loader.AddTree((SINGLE, "events"), "Background", 1.0, "label==0")
    ev = loader.PrepareTrainingAndTestTree("", "NormMode=None")
    assert ev.variables == [("seq", 4), ("arr", 3), ("hits[0]", 1)] and ev.X.shape == (60, 8)
    order = np.r_[np.flatnonzero(LABEL == 1), np.flatnonzero(LABEL == 0)]
    np.testing.assert_array_equal(ev.X[:, :4], np.float32(S["seq"])[order])
    np.testing.assert_array_equal(ev.X[:, 4:7], np.float32(S["arr"])[order])
    np.testing.assert_array_equal(ev.X[:, 7], np.float32([h[0] for h in S["hits"]])[order])


def test_vector_shorter_than_asked_names_the_entry():
    loader = DataLoader()
    loader.AddVariablesArray("hits", 2)
    loader.AddSignalTree((SINGLE, "events"))
    loader.AddBackgroundTree((SINGLE, "events"))
    first_short = next(i for i, h in enumerate(S["hits"]) if len(h) < 2)
    with pytest.raises(ValueError, match=rf"AddVariablesArray\('hits', 2\) needs 2 values per event but entry {first_short} "):
        loader.PrepareTrainingAndTestTree("")


def test_nan_in_a_kept_event_is_an_error_and_a_cut_removes_it():
    nan_entries = [i for i, bad in enumerate(S["q_is_nan"]) if bad]
    assert nan_entries
    loader = DataLoader()
    loader.AddVariable("q")
    loader.AddTree((SINGLE, "events"), "Signal", 1.0, "label==1")
    loader.AddTree((SINGLE, "events"), "Background", 1.0, "label==0")
    with pytest.raises(ValueError, match=rf"variable 'q' is nan in entry {nan_entries[0]}, an event that passes the cuts"):
        loader.PrepareTrainingAndTestTree("", "NormMode=None")
    loader.AddCut("q == q")  # NaN != NaN: the NaN entries fail the cut, as in TTreeFormula
    ev = loader.PrepareTrainingAndTestTree("", "NormMode=None")
    n_sig, n_bkg = int((LABEL == 1).sum()), int((LABEL == 0).sum()) - len(nan_entries)
    assert n_bkg % 2 == 1  # TMVA's default split gives half to each part and leaves the odd event out
    assert len(ev.y) == 2 * (n_sig // 2) + 2 * (n_bkg // 2) == 60 - len(nan_entries) - 1
    assert ev.n_test == ev.n_train


def test_several_trees_per_class_across_two_files_with_global_weights():
    m = ROOTJ["multi"]
    f1, f2 = os.path.join(FIX, "multi_1.root"), os.path.join(FIX, "multi_2.root")
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddVariable("y")
    loader.AddVariablesArray("v", 3)
    loader.AddSignalTree((f1, "sig_a"), 1.5)
    loader.AddSignalTree((f2, "sig_b"), 0.5)
    for name, w in (("bkg_a", 1.0), ("bkg_b", 2.0), ("bkg_c", 3.0)):
        loader.AddBackgroundTree((f1 if name == "bkg_a" else f2, name), w)
    ev = loader.PrepareTrainingAndTestTree("", "nTrain_Signal=20:nTrain_Background=30:SplitMode=Block:NormMode=None")
    rows = [[x, y, *v] for t in ("sig_a", "sig_b", "bkg_a", "bkg_b", "bkg_c") for x, y, v in zip(m[t]["x"], m[t]["y"], m[t]["v"])]
    np.testing.assert_allclose(ev.X, np.float32(rows), rtol=1e-7)
    sizes = {t: m[t]["entries"] for t in m}
    expected_w = [1.5] * sizes["sig_a"] + [0.5] * sizes["sig_b"] + [1.0] * sizes["bkg_a"] + [2.0] * sizes["bkg_b"] + [3.0] * sizes["bkg_c"]
    np.testing.assert_allclose(ev.weights, expected_w)
    n_sig = sizes["sig_a"] + sizes["sig_b"]
    n_bkg = sizes["bkg_a"] + sizes["bkg_b"] + sizes["bkg_c"]
    assert ev.is_train.tolist() == [True] * 20 + [False] * (n_sig - 20) + [True] * 30 + [False] * (n_bkg - 30)
    assert "multi_1.root:sig_a (Signal)" in ev.source and "multi_2.root:bkg_c (Background)" in ev.source


def test_missing_branch_lists_the_trees_branches():
    loader = DataLoader()
    loader.AddVariable("pt*2")
    loader.AddSignalTree((SINGLE, "events"))
    loader.AddBackgroundTree((SINGLE, "events"))
    with pytest.raises(ValueError, match=r"tree single_tree.root:events has no branch pt \(read by variable 'pt\*2'\); "
                                         r"its branches are: arr, hits, label, n, q, seq, w, x, y"):
        loader.PrepareTrainingAndTestTree("")


def test_missing_tree_lists_the_files_trees():
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddSignalTree((SINGLE, "sgn"))
    loader.AddBackgroundTree((SINGLE, "events"))
    with pytest.raises(ValueError, match=r"tree 'sgn' not found in .*single_tree.root'; the file holds the trees: 'events'"):
        loader.PrepareTrainingAndTestTree("")


def test_chunks_give_the_same_events():
    whole = _time_loader().PrepareTrainingAndTestTree("", "NormMode=None")
    loader = _time_loader()
    loader.step_size = 7  # entries per chunk
    chunked = loader.PrepareTrainingAndTestTree("", "NormMode=None")
    np.testing.assert_array_equal(whole.X, chunked.X)
    np.testing.assert_array_equal(whole.is_train, chunked.is_train)


def test_memory_limit_is_checked_before_reading():
    loader = _time_loader()
    loader.max_bytes = 100_000
    with pytest.raises(ValueError, match=r"hold 200 entries of 300 inputs, 0\.0 GiB as float32, more than the limit"):
        loader.PrepareTrainingAndTestTree("")
