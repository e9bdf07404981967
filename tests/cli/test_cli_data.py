"""The command line's data options (TMVA's DataLoader inputs) on the ROOT-written fixtures,
compared with what ROOT read from them (tests/fixtures/root_fixtures.json)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bptt import cli

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
ROOTJ = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))
SINGLE = os.path.join(FIX, "single_tree.root")
TIME = os.path.join(FIX, "time_data_t10_d30.root")
M1, M2 = os.path.join(FIX, "multi_1.root"), os.path.join(FIX, "multi_2.root")


def _events(*argv):
    args = cli.build_parser().parse_args(["train", argv[0], "--layout", "LINEAR", *argv[1:]])
    return cli._read_events(args.data, args)


def test_default_is_the_rnn_tutorials_layout():
    ev = _events(TIME)
    assert ev.X.shape == (200, 10, 30)
    assert ev.variables == [(f"vars_time{j}", 30) for j in range(10)]
    assert ev.n_train == ev.n_test == 100
    row = ROOTJ["time_data"]["trees"]["bkg"]["branches"]["vars_time4"]["rows"]["57"]
    np.testing.assert_array_equal(ev.X[100 + 57, 4], np.float32(row))


def test_one_tree_with_a_class_branch_weights_and_expressions():
    s = ROOTJ["single"]
    ev = _events(SINGLE, "--tree", "events", "--class-branch", "label", "--variables", "x, abs(x)*2,pow(x,2)",
                 "--weight", "w", "--split", "NormMode=None:SplitMode=Block")
    label = np.array(s["values"]["label"])
    assert int((ev.y == 1).sum()) == s["cut_entries"]["label==1"]
    assert ev.variables == [("x", 1), ("abs(x)*2", 1), ("pow(x,2)", 1)]
    order = np.r_[np.flatnonzero(label == 1), np.flatnonzero(label == 0)]
    np.testing.assert_allclose(ev.X[:, 2], np.array(s["values"]["pow(x,2)"])[order], rtol=1e-6)
    np.testing.assert_allclose(ev.weights, np.array(s["values"]["w"])[order], rtol=1e-6)


def test_class_cuts_and_a_common_cut():
    s = ROOTJ["single"]
    ev = _events(SINGLE, "--tree", "events", "--signal-cut", "label==1", "--background-cut", "label==0",
                 "--cut", "x>0", "--variables", "x", "--split", "nTrain_Signal=1:nTest_Signal=0")
    assert int((ev.y == 1).sum()) == s["cut_entries"]["label==1 && x>0"]
    assert (ev.X[:, 0] > 0).all()


def test_several_trees_per_class_from_two_files_with_weights():
    m = ROOTJ["multi"]
    ev = _events(M1, "--signal-tree", "sig_a", "--signal-tree", f"{M2}:sig_b,0.5", "--background-tree", "bkg_a,2",
                 "--background-tree", f"{M2}:bkg_c", "--variables-array", "v:3", "--variables", "x",
                 "--split", "NormMode=None:SplitMode=Block:nTrain_Signal=10:nTrain_Background=10")
    n = {k: m[k]["entries"] for k in m}
    assert ev.X.shape == (n["sig_a"] + n["sig_b"] + n["bkg_a"] + n["bkg_c"], 4)
    np.testing.assert_allclose(ev.weights, [1.0] * n["sig_a"] + [0.5] * n["sig_b"] + [2.0] * n["bkg_a"] + [1.0] * n["bkg_c"])
    assert ev.variables == [("x", 1), ("v", 3)]  # --variables first, then --variables-array
    np.testing.assert_allclose(ev.X[:n["sig_a"], 1:], np.float32(m["sig_a"]["v"]))
    np.testing.assert_allclose(ev.X[-n["bkg_c"]:, 0], np.float32(m["bkg_c"]["x"]))
    assert ev.n_train == 20


@pytest.mark.parametrize(
    "argv,message",
    [
        ([SINGLE, "--tree", "events", "--variables", "x"], "--tree holds both classes: say which events"),
        ([SINGLE, "--tree", "events", "--class-branch", "n", "--variables", "x"],
         "--class-branch n: tree 'events' holds the values 0, 1, 2, 3, 4, 5, 6"),
        ([SINGLE, "--class-branch", "label", "--variables", "x"], "--class-branch needs --tree"),
        ([SINGLE, "--signal-tree", "events", "--background-tree", "events", "--variables", "x"],
         "tree 'events' is both a signal and a background tree"),
        ([SINGLE, "--tree", "events", "--class-branch", "label", "--variables", "x,,y"], "an empty name between commas"),
        ([SINGLE, "--tree", "events", "--class-branch", "label", "--variables-array", "seq"], "write NAME:N"),
        ([SINGLE, "--tree", "events,abc", "--class-branch", "label", "--variables", "x"], "the weight after the comma"),
        ([SINGLE, "--tree", "events", "--class-branch", "label", "--variables", "ptt"],
         "tree single_tree.root:events has no branch ptt"),
        ([SINGLE, "--tree", "events", "--class-branch", "label", "--variables", "x", "--split", "nTrain_Signal=99"],
         "nTrain_Signal=99 but class Signal has only 26 events"),
        ([TIME, "--prefix", "var_t"], "has no branch named var_t0"),
        ([SINGLE, "--signal-tree", "sgn", "--variables", "x"], "tree 'sgn' not found"),
    ],
)
def test_mistakes_are_one_line_errors(argv, message, capsys, tmp_path):
    code = cli.main(["train", *argv, "--layout", "LINEAR", "--input-layout", "1", "--out", str(tmp_path / "m.bptt")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_default_layout_refuses_steps_of_varying_width(tmp_path, capsys):
    import awkward as ak
    import uproot

    path = tmp_path / "ragged.root"
    with uproot.recreate(path) as f:
        for name in ("sgn", "bkg"):
            f[name] = {"vars_time0": ak.Array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0, 7.0]])}
    code = cli.main(["evaluate", str(tmp_path / "none.bptt"), str(path)])
    assert code == 2  # no model file
    args = cli.build_parser().parse_args(["evaluate", "m.bptt", str(path)])
    with pytest.raises(ValueError, match="entry 2 of vars_time0 has 3; every time step must have the same number"):
        cli._read_data(str(path), args)
    capsys.readouterr()
