"""``bptt apply MODEL DATA``: a new ROOT file with the score of every entry, copied branches, in chunks.

The input is tests/fixtures/apply_vectors.root (written by real ROOT: std::vector<float> time
steps, a float[3] array, scalars); the expected scores are ``model.predict_proba`` on the values
uproot reads from it, and the copied branches are compared with the input's.
"""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from bptt.cli import main
from bptt.model import Sequential

FIXTURE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apply_vectors.root"))
STEPS = [f"vars_time{j}" for j in range(3)]


def save_lstm(path, with_inputs=True, loss="bce"):
    model = Sequential.from_tmva("LSTM|2|4|3|0|1,RESHAPE|FLAT,DENSE|3|TANH,LINEAR", "3|4", seed=5, loss=loss)
    if with_inputs:
        model.inputs = [{"name": b, "size": 4} for b in STEPS]
    model.save(path)
    return model


def fixture_X(tree="Events"):
    t = uproot.open(FIXTURE)[tree]
    return np.stack([ak.to_numpy(t[b].array()) for b in STEPS], axis=1).astype(np.float32)


def run(capsys, *argv):
    code = main(["apply", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_writes_the_score_and_the_copied_branches(tmp_path, capsys):
    model = save_lstm(tmp_path / "lstm.bptt")
    out = tmp_path / "scored.root"
    code, stdout, err = run(capsys, tmp_path / "lstm.bptt", FIXTURE, "--tree", "Events", "--out", out,
                            "--branch", "eventNumber", "--branch", "fixed", "--branch", "vars_time0", "--step-size", "16")
    assert code == 0, err
    assert stdout.startswith("scored 60 events in ") and "events/s); wrote " in stdout
    assert stdout.rstrip().endswith("(tree Events: vars_time0, fixed, eventNumber, lstm)")
    src, t = uproot.open(FIXTURE)["Events"], uproot.open(out)["Events"]
    assert t.num_entries == 60
    assert {"vars_time0", "fixed", "eventNumber", "lstm"} <= set(t.keys())
    np.testing.assert_allclose(t["lstm"].array(library="np"), model.predict_proba(fixture_X()), rtol=1e-6, atol=1e-7)
    assert t["lstm"].array(library="np").dtype == np.float32
    np.testing.assert_array_equal(t["eventNumber"].array(library="np"), src["eventNumber"].array(library="np"))
    np.testing.assert_array_equal(t["fixed"].array(library="np"), src["fixed"].array(library="np"))
    assert ak.to_list(t["vars_time0"].array()) == ak.to_list(src["vars_time0"].array())


def test_defaults_a_friend_tree_named_after_the_data_and_the_model(tmp_path, capsys, monkeypatch):
    save_lstm(tmp_path / "rnn-v2.bptt")
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(capsys, "rnn-v2.bptt", FIXTURE, "--tree", "Events", "--quiet")
    assert code == 0, err
    t = uproot.open(tmp_path / "apply_vectors_scored.root")["Events"]
    assert t.keys() == ["rnn_v2"] and t.num_entries == 60
    assert err == ""  # --quiet: no progress bar


def test_glob_patterns_score_name_out_tree_and_progress(tmp_path, capsys):
    save_lstm(tmp_path / "m.bptt")
    out = tmp_path / "o.root"
    code, _, err = run(capsys, tmp_path / "m.bptt", FIXTURE, "--tree", "Events", "--out", out, "--branch", "e*",
                       "--score-name", "DNN", "--out-tree", "scores")
    assert code == 0, err
    assert uproot.open(out)["scores"].keys() == ["eventNumber", "eta", "DNN"]
    assert "scoring" in err  # tqdm's progress bar, on stderr


def test_a_model_without_inputs_reads_the_tutorial_layout_and_says_so(tmp_path, capsys):
    model = save_lstm(tmp_path / "old.bptt", with_inputs=False)
    out = tmp_path / "o.root"
    code, _, err = run(capsys, tmp_path / "old.bptt", FIXTURE, "--tree", "Events", "--out", out, "--quiet")
    assert code == 0
    assert err.startswith("bptt apply: note: the model file does not name its inputs") and "vars_time0 … vars_time2" in err
    np.testing.assert_allclose(uproot.open(out)["Events"]["old"].array(library="np"), model.predict_proba(fixture_X()),
                               rtol=1e-6, atol=1e-7)
    code, _, err = run(capsys, tmp_path / "old.bptt", FIXTURE, "--tree", "Events", "--out", out, "--prefix", "fixed")
    assert code == 2 and "the model reads branch fixed0 (4 values per event) but the tree has no such branch" in err


def test_a_failure_half_way_leaves_no_file_and_an_old_output_untouched(tmp_path, capsys):
    save_lstm(tmp_path / "m.bptt")
    X = np.random.default_rng(0).normal(size=(100, 3, 4))
    X[70, 1, 2] = np.nan
    data = tmp_path / "nan.root"
    with uproot.recreate(data) as f:  # write_tmva_root refuses NaN; uproot writes a dict as an RNTuple
        f["sgn"] = {b: X[:, j].astype(np.float32) for j, b in enumerate(STEPS)}
    out = tmp_path / "out.root"
    code, _, err = run(capsys, tmp_path / "m.bptt", data, "--tree", "sgn", "--out", out, "--step-size", "25", "--quiet")
    assert code == 2 and err == "bptt apply: error: tree sgn: variable 'vars_time1' is nan in entry 70, an event that " \
                                "passes the cuts (TMVA stops on a NaN or inf input too); add a cut that removes it\n"
    assert sorted(os.listdir(tmp_path)) == ["m.bptt", "nan.root"]
    out.write_bytes(b"old")
    assert run(capsys, tmp_path / "m.bptt", data, "--tree", "sgn", "--out", out, "--step-size", "25")[0] == 2
    assert out.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["m.bptt", "nan.root", "out.root"]


def test_an_empty_tree_gives_an_empty_tree(tmp_path, capsys):
    save_lstm(tmp_path / "m.bptt")
    data = tmp_path / "empty.root"
    with uproot.recreate(data) as f:
        f.mktree("Events", {b: "var * float32" for b in STEPS} | {"run": np.int32})
    out = tmp_path / "o.root"
    code, stdout, err = run(capsys, tmp_path / "m.bptt", data, "--out", out, "--branch", "run", "--quiet")
    assert code == 0, err
    t = uproot.open(out)["Events"]
    assert t.num_entries == 0 and t.keys() == ["run", "m"] and stdout.startswith("scored 0 events")


def test_a_softmax_model_writes_one_probability_per_class(tmp_path, capsys):
    model = Sequential.from_tmva("LSTM|2|4|3|0|1,RESHAPE|FLAT,DENSE|3|TANH,LINEAR", "3|4", seed=5)
    from bptt.layers import Dense

    model = Sequential(model.layers[:-1] + [Dense(3, 2, seed=0)], loss="softmax_ce")
    model.inputs = [{"name": b, "size": 4} for b in STEPS]
    model.save(tmp_path / "soft.bptt")
    out = tmp_path / "o.root"
    assert run(capsys, tmp_path / "soft.bptt", FIXTURE, "--tree", "Events", "--out", out, "--quiet")[0] == 0
    got = uproot.open(out)["Events"]["soft"].array(library="np")
    assert got.shape == (60, 2)
    np.testing.assert_allclose(got, model.predict_proba(fixture_X()), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("extra, message", [
    (["--tree", "Short"], r"tree Short: AddVariablesArray\('vars_time1', 4\) needs 4 values per event but entry 3 of "
                          r"vars_time1 has 3; give the size the branch has in every entry"),
    ([], r"'.*apply_vectors.root' holds the trees 'Events', 'Short'; pass --tree <one of them>"),
    (["--tree", "sgn"], r"tree 'sgn' not found in '.*apply_vectors.root'; the file holds the trees: 'Events', 'Short'"),
    (["--tree", "Events", "--branch", "jet_*"], r"--branch 'jet_\*' matches no branch of the tree; the tree's branches are: "
                                                r"vars_time0, vars_time1, vars_time2, fixed, eventNumber"),
    (["--tree", "Events", "--branch", "pt", "--score-name", "pt"], r"the score branch 'pt' is also a copied branch"),
    (["--tree", "Events", "--score-name", "2nd-score"], r"the score name must be a C\+\+ identifier .* got '2nd-score'"),
    (["--tree", "Events", "--step-size", "0"], r"step_size must be a positive number of entries per chunk; got 0"),
    (["--tree", "Events", "--prefix", "vars_time"], r"prefix='vars_time' given, but the model file names its inputs"),
    (["--tree", "Events", "--out", "x.parquet"], r"the output must be a .root file; got 'x.parquet'"),
])
def test_mistakes_are_one_line_with_exit_code_2(tmp_path, capsys, extra, message):
    save_lstm(tmp_path / "m.bptt")
    code, stdout, err = run(capsys, tmp_path / "m.bptt", FIXTURE, "--quiet", *extra)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("bptt apply: error: ")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "apply_vectors_scored.root").exists()


def test_missing_files_and_the_input_as_output(tmp_path, capsys, monkeypatch):
    save_lstm(tmp_path / "m.bptt")
    code, _, err = run(capsys, tmp_path / "nope.bptt", FIXTURE)
    assert code == 2 and "no such model file" in err
    code, _, err = run(capsys, tmp_path / "m.bptt", tmp_path / "nope.root")
    assert code == 2 and "no such file: " in err and "nope.root" in err
    data = tmp_path / "d.root"
    data.write_bytes(open(FIXTURE, "rb").read())
    before = data.read_bytes()
    code, _, err = run(capsys, tmp_path / "m.bptt", data, "--tree", "Events", "--out", data)
    assert code == 2 and "is the input file; pass --out <another file>" in err
    assert data.read_bytes() == before
