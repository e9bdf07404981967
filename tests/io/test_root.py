"""ROOT files in TMVA's layout, through uproot.

Two branch kinds are read:
- fixed-size ``float[F]`` arrays, which :func:`write_tmva_root` writes;
- variable-length branches, as TMVA's own macro writes them (``std::vector<float>``). uproot cannot
  write ``std::vector<float>``, so this path is tested with the variable-length branches uproot
  does write from jagged awkward arrays: counted ``float[n]`` branches (with a counter branch
  ``n<name>``). uproot reads both through the same jagged interpretation (``AsJagged``), so the
  reader's awkward conversion to a regular ``(n, F)`` array is the code under test either way.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

# uproot and awkward are dependencies of the package: imported, not skipped when missing
import awkward as ak  # noqa: E402
import uproot  # noqa: E402

from bptt.data import make_tutorial_data, read_tmva_root, write_tmva_root, write_tutorial_root  # noqa: E402


def arrays(n_sig=6, n_bkg=4, T=3, F=5, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n_sig, T, F)).astype(np.float32),
        rng.normal(size=(n_bkg, T, F)).astype(np.float32),
    )




# ─────────────────────────────────────────────────────────────────────── fixed-size branches


def test_round_trip_fixed_size(tmp_path):
    sig, bkg = arrays()
    path = tmp_path / "t.root"
    assert write_tmva_root(path, sig, bkg) == str(path)
    X, y = read_tmva_root(path)
    assert X.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg]))
    np.testing.assert_array_equal(y, np.r_[np.ones(6), np.zeros(4)])
    assert os.listdir(tmp_path) == ["t.root"]


def test_written_layout_is_tmvas(tmp_path):
    sig, bkg = arrays(T=4, F=7)
    write_tmva_root(tmp_path / "t.root", sig, bkg)
    with uproot.open(tmp_path / "t.root") as f:
        assert f.classnames(cycle=False) == {"sgn": "TTree", "bkg": "TTree"}
        tree = f["sgn"]
        assert tree.keys() == [f"vars_time{j}" for j in range(4)]
        assert tree["vars_time2"].typename == "float[7]"
        np.testing.assert_array_equal(tree["vars_time2"].array(library="np"), sig[:, 2, :])


def test_custom_names_and_n_steps(tmp_path):
    sig, bkg = arrays(T=4)
    path = tmp_path / "t.root"
    write_tmva_root(path, sig, bkg, signal_tree="S", background_tree="B", branch_prefix="x_")
    X, y = read_tmva_root(path, signal_tree="S", background_tree="B", branch_prefix="x_", n_steps=2)
    np.testing.assert_array_equal(X, np.concatenate([sig[:, :2], bkg[:, :2]]))


def test_tutorial_file_reads_back_as_generated(tmp_path):
    path = tmp_path / "time_data.root"
    write_tutorial_root(path, n_events=20, n_steps=4, n_features=6, seed=2)
    X, y = read_tmva_root(path)
    sig, bkg = make_tutorial_data(n_events=20, n_steps=4, n_features=6, seed=2)
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg]))
    assert y.sum() == 20


def test_failed_write_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "t.root"
    sig, bkg = arrays()
    write_tmva_root(path, sig, bkg)
    before = path.read_bytes()

    def broken_extend(self, data):
        raise RuntimeError("interrupted while writing")

    monkeypatch.setattr(uproot.writing.writable.WritableTree, "extend", broken_extend)
    with pytest.raises(RuntimeError, match="interrupted while writing"):
        write_tmva_root(path, sig * 2, bkg * 2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.root"]


def test_write_validates(tmp_path):
    sig, bkg = arrays()
    with pytest.raises(ValueError, match=r"write_tmva_root: signal and background must have the same \(T, F\).*got \(3, 5\) for signal and \(3, 4\) for background"):
        write_tmva_root(tmp_path / "t.root", sig, bkg[:, :, :4])
    with pytest.raises(ValueError, match=r"write_tmva_root: signal must be a 3-D array of shape \(n_sig, T, F\); got shape \(6, 3\)"):
        write_tmva_root(tmp_path / "t.root", sig[:, :, 0], bkg)
    with pytest.raises(ValueError, match=r"write_tmva_root: signal_tree and background_tree must differ; both are 'x'"):
        write_tmva_root(tmp_path / "t.root", sig, bkg, signal_tree="x", background_tree="x")
    assert not (tmp_path / "t.root").exists()


# ───────────────────────────────────────────────────────────────────────── variable-length path


def test_jagged_branches_are_read_as_regular_arrays(tmp_path, write_jagged):
    sig, bkg = arrays(T=2, F=3)
    path = tmp_path / "jagged.root"
    write_jagged(
        path,
        {
            "sgn": {f"vars_time{j}": sig[:, j].tolist() for j in range(2)},
            "bkg": {f"vars_time{j}": bkg[:, j].tolist() for j in range(2)},
        },
    )
    with uproot.open(path) as f:  # really the variable-length kind, with counter branches
        assert "nvars_time0" in f["sgn"].keys()
        assert type(f["sgn"]["vars_time0"].interpretation).__name__ == "AsJagged"
    X, y = read_tmva_root(path)
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg]))
    np.testing.assert_array_equal(y, np.r_[np.ones(6), np.zeros(4)])


def test_ragged_rows_are_an_error(tmp_path, write_jagged):
    rows = [[1.0] * 30 for _ in range(20)]
    rows[17] = [1.0] * 29
    good = [[1.0] * 30 for _ in range(20)]
    path = tmp_path / "ragged.root"
    write_jagged(path, {"sgn": {f"vars_time{j}": (rows if j == 3 else good) for j in range(5)}, "bkg": {"vars_time0": good}})
    message = (
        "branch vars_time3 of tree 'sgn' has rows of different lengths (30 and 29) at entry 17; "
        "every time step must have the same number of features"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        read_tmva_root(path)


# ──────────────────────────────────────────────────────────────────────────────────── errors


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"read_tmva_root: no such file: '.*nothing\.root'; check the path"):
        read_tmva_root(tmp_path / "nothing.root")


def test_not_a_root_file(tmp_path):
    path = tmp_path / "fake.root"
    path.write_text("this is a text file, not ROOT\n" * 20)
    with pytest.raises(ValueError, match=r"read_tmva_root: '.*fake\.root' is not a ROOT file that uproot can open .*pass a \.root file"):
        read_tmva_root(path)


def test_missing_tree_lists_the_trees(tmp_path):
    sig, bkg = arrays()
    path = tmp_path / "t.root"
    write_tmva_root(path, sig, bkg, signal_tree="signal", background_tree="background")
    with pytest.raises(
        ValueError,
        match=r"read_tmva_root: tree 'sgn' not found in '.*t\.root'; the file holds the trees: 'background', 'signal'; pass signal_tree=",
    ):
        read_tmva_root(path)
    with pytest.raises(ValueError, match=r"tree 'bkg' not found .*pass background_tree="):
        read_tmva_root(path, signal_tree="signal")


def test_wrong_prefix_lists_the_branches(tmp_path):
    sig, bkg = arrays(T=2)
    path = tmp_path / "t.root"
    write_tmva_root(path, sig, bkg)
    with pytest.raises(
        ValueError,
        match=r"read_tmva_root: tree 'sgn' has no branch named var0, var1, …; its branches are: vars_time0, vars_time1; pass branch_prefix=",
    ):
        read_tmva_root(path, branch_prefix="var")


def test_n_steps_larger_than_found(tmp_path):
    sig, bkg = arrays(T=3)
    path = tmp_path / "t.root"
    write_tmva_root(path, sig, bkg)
    with pytest.raises(
        ValueError,
        match=r"read_tmva_root: n_steps=4 but tree 'sgn' has only 3 consecutive time-step branches \(vars_time0 … vars_time2\); pass n_steps <= 3",
    ):
        read_tmva_root(path, n_steps=4)
    with pytest.raises(ValueError, match=r"read_tmva_root: n_steps must be a positive integer or None"):
        read_tmva_root(path, n_steps=0)


def test_feature_count_differs_between_steps(tmp_path, write_jagged):
    path = tmp_path / "t.root"
    write_jagged(path, {"sgn": {"vars_time0": [[1.0, 2.0, 3.0]] * 4, "vars_time1": [[1.0, 2.0]] * 4}, "bkg": {"vars_time0": [[1.0]]}})
    with pytest.raises(
        ValueError,
        match=r"branch vars_time1 of tree 'sgn' has 2 features per entry but vars_time0 has 3; every time step must have the same number of features",
    ):
        read_tmva_root(path)


def test_feature_and_step_counts_differ_between_trees(tmp_path):
    sig, bkg = arrays(T=3, F=5)
    path = tmp_path / "f.root"
    with uproot.recreate(path) as f:
        for name, X in (("sgn", sig), ("bkg", bkg[:, :, :4])):
            t = f.mktree(name, {f"vars_time{j}": np.dtype((np.float32, (X.shape[2],))) for j in range(3)})
            t.extend({f"vars_time{j}": X[:, j] for j in range(3)})
    with pytest.raises(ValueError, match=r"tree 'bkg' has 4 features per time step but tree 'sgn' has 5; both classes must have the same features"):
        read_tmva_root(path)

    path = tmp_path / "t.root"
    write_tmva_root(path, sig, np.zeros((2, 3, 5), np.float32), background_tree="bkg3")
    with uproot.update(path) as f:  # add a background tree with only 2 steps
        t = f.mktree("bkg", {f"vars_time{j}": np.dtype((np.float32, (5,))) for j in range(2)})
        t.extend({f"vars_time{j}": bkg[:, j] for j in range(2)})
    with pytest.raises(ValueError, match=r"tree 'bkg' has 2 time steps but tree 'sgn' has 3; pass n_steps="):
        read_tmva_root(path)
    X, _ = read_tmva_root(path, n_steps=2)
    assert X.shape == (10, 2, 5)


def test_rntuple_is_read_too(tmp_path):
    """uproot 5.7 writes RNTuples from a dict assignment; the reader handles them like TTrees."""
    sig, bkg = arrays(T=2, F=3)
    path = tmp_path / "rn.root"
    with uproot.recreate(path) as f:
        f["sgn"] = {f"vars_time{j}": sig[:, j] for j in range(2)}
        f["bkg"] = {f"vars_time{j}": bkg[:, j] for j in range(2)}
        kinds = set(f.classnames(cycle=False).values()) if hasattr(f, "classnames") else set()
    if kinds and kinds <= {"TTree"}:
        pytest.skip("this uproot writes TTrees from dict assignment; the RNTuple path is not exercised")
    X, _ = read_tmva_root(path)
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg]))
