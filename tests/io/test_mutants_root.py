"""bptt.data.root where mutation testing found no test (docs/mutation.md, issue 17).

Pins what the older tests (tests/io/test_root.py) left open, each against a small ROOT file written
here with uproot: the exact error messages of both functions (the argument named, the value shown,
the tree and branch named), the branch kinds at their edges (scalar branches, a single entry, a
branch empty in every entry, rows whose *first* entry is the odd one, nested arrays, strings, a
branch uproot cannot read), time steps not numbered from 0, the branch listing cut at 30 names,
trees without entries, the tree titles and the temporary file's name while writing. The expected
values are written out by hand (or computed with NumPy / uproot in the test).
"""

from __future__ import annotations

import os
import re

import awkward as ak
import numpy as np
import pytest
import uproot

from bptt.data import root as root_module
from bptt.data.root import read_tmva_root, write_tmva_root


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def arrays(n_sig=3, n_bkg=2, T=2, F=3):
    sig = np.arange(n_sig * T * F, dtype=np.float32).reshape(n_sig, T, F)
    return sig, -1.0 - np.arange(n_bkg * T * F, dtype=np.float32).reshape(n_bkg, T, F)


def write_trees(path, trees: dict[str, dict[str, np.ndarray]]):
    """TTrees with one branch per array: a scalar branch for a 1-D array, float[...] for more."""
    with uproot.recreate(path) as f:
        for name, branches in trees.items():
            t = f.mktree(name, {b: np.dtype((a.dtype, a.shape[1:])) for b, a in branches.items()})
            if len(next(iter(branches.values()))):
                t.extend(branches)




GOOD_BKG = {"vars_time0": np.ones((2, 3), np.float32)}


# ──────────────────────────────────────────────────────────────────────── argument checks


@pytest.mark.parametrize("value", ["a/b", "a:b", "", 5, None])
@pytest.mark.parametrize("argument", ["signal_tree", "background_tree", "branch_prefix"])
def test_write_refuses_names_with_slash_or_colon_or_empty(tmp_path, argument, value):
    sig, bkg = arrays()
    message = f"write_tmva_root: {argument} must be a non-empty name without '/' or ':'; got {value!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        write_tmva_root(tmp_path / "t.root", sig, bkg, **{argument: value})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["a/b", "a:b", "", 5, None])
@pytest.mark.parametrize("argument", ["signal_tree", "background_tree"])
def test_read_refuses_tree_names_with_slash_or_colon_or_empty(tmp_path, argument, value):
    message = f"read_tmva_root: {argument} must be a non-empty name without '/' or ':'; got {value!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(tmp_path / "missing.root", **{argument: value})


@pytest.mark.parametrize("value", ["", 5, None])
def test_read_refuses_a_branch_prefix_that_is_not_a_non_empty_string(tmp_path, value):
    message = f"read_tmva_root: branch_prefix must be a non-empty string; got {value!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(tmp_path / "missing.root", branch_prefix=value)


@pytest.mark.parametrize("value", [0, -1, True, False, 2.5, 1.0, "2", np.int64(0)])
def test_read_refuses_an_n_steps_that_is_not_a_positive_integer(tmp_path, value):
    message = f"read_tmva_root: n_steps must be a positive integer or None (all steps found); got {value!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(tmp_path / "missing.root", n_steps=value)


@pytest.mark.parametrize("n_steps", [1, np.int64(1), 2, np.int32(2)])
def test_read_n_steps_from_one(tmp_path, n_steps):
    sig, bkg = arrays(T=3)
    write_tmva_root(tmp_path / "t.root", sig, bkg)
    X, y = read_tmva_root(tmp_path / "t.root", n_steps=n_steps)
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg])[:, : int(n_steps)])
    np.testing.assert_array_equal(y, [1, 1, 1, 0, 0])


def test_write_names_the_background_argument_and_its_layout(tmp_path):
    sig, bkg = arrays()
    message = "write_tmva_root: background must be a 3-D array of shape (n_bkg, T, F); got shape (2, 3)"
    with pytest.raises(ValueError, match=exactly(message)):
        write_tmva_root(tmp_path / "t.root", sig, bkg[:, 0])
    message = "write_tmva_root: background must have dtype float32 or float64; got int64"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        write_tmva_root(tmp_path / "t.root", sig, bkg.astype(np.int64))
    assert os.listdir(tmp_path) == []


# ───────────────────────────────────────────────────────────────────────────────── writing


def test_each_tree_is_titled_with_its_name(tmp_path):
    sig, bkg = arrays()
    write_tmva_root(tmp_path / "t.root", sig, bkg, signal_tree="S", background_tree="B")
    with uproot.open(tmp_path / "t.root") as f:
        assert f["S"].title == "S" and f["B"].title == "B"


def test_the_file_is_written_under_a_hidden_temporary_root_name(tmp_path, monkeypatch):
    # while uproot writes, the directory holds only the temporary file: ".<name>.<random>.root"
    seen = []
    extend = uproot.writing.writable.WritableTree.extend

    def spy(self, data):
        seen.append(sorted(os.listdir(tmp_path)))
        return extend(self, data)

    monkeypatch.setattr(uproot.writing.writable.WritableTree, "extend", spy)
    sig, bkg = arrays()
    write_tmva_root(tmp_path / "t.root", sig, bkg)
    assert len(seen) == 2
    for listing in seen:
        assert len(listing) == 1 and re.fullmatch(r"\.t\.root\.[^.]+\.root", listing[0]), listing
    assert os.listdir(tmp_path) == ["t.root"]


# ─────────────────────────────────────────────────────────────────────────── opening files


def test_a_directory_is_refused(tmp_path):
    message = f"read_tmva_root: {str(tmp_path)!r} is a directory; pass the path of a .root file"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(tmp_path)


def test_uproots_error_is_shown_on_one_line_with_its_type(tmp_path):
    # uproot's error for an empty file spans three lines; the message keeps its words on one
    path = tmp_path / "empty.root"
    path.write_bytes(b"")
    pattern = (
        r"^read_tmva_root: '[^']*empty\.root' is not a ROOT file that uproot can open "
        r"\(OSError: [^\n]*\breceived 0 bytes [^\n]*\); pass a \.root file written by ROOT or uproot$"
    )
    with pytest.raises(ValueError, match=pattern):
        read_tmva_root(path)


def test_a_file_without_trees_says_none(tmp_path):
    path = tmp_path / "e.root"
    with uproot.recreate(path):
        pass
    message = f"read_tmva_root: tree 'sgn' not found in {str(path)!r}; the file holds the trees: none; pass signal_tree=<one of them>"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


# ──────────────────────────────────────────────────────────────────────────────── the trees


@pytest.mark.parametrize("empty", ["sgn", "bkg"])
def test_a_tree_without_entries_is_named(tmp_path, empty):
    path = tmp_path / "t.root"
    trees = {name: {"vars_time0": np.ones((0 if name == empty else 2, 3), np.float32)} for name in ("sgn", "bkg")}
    write_trees(path, trees)
    message = f"read_tmva_root: tree {empty!r} has no entries; it must hold at least one event"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_trees_of_a_single_entry(tmp_path, write_jagged):
    path = tmp_path / "one.root"
    write_jagged(path, {"sgn": {"vars_time0": [[1.0, 2.0]], "vars_time1": [[3.0, 4.0]]}, "bkg": {"vars_time0": [[5.0, 6.0]], "vars_time1": [[7.0, 8.0]]}})
    X, y = read_tmva_root(path)
    np.testing.assert_array_equal(X, [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    np.testing.assert_array_equal(y, [1, 0])
    path = tmp_path / "one_fixed.root"
    write_tmva_root(path, np.full((1, 2, 3), 2.0), np.full((1, 2, 3), 3.0))
    X, y = read_tmva_root(path)
    np.testing.assert_array_equal(X, np.r_[np.full((1, 2, 3), 2.0), np.full((1, 2, 3), 3.0)])


def test_scalar_branches_are_one_feature(tmp_path):
    path = tmp_path / "s.root"
    trees = {
        name: {"vars_time0": np.array([1.5, 2.5, 3.5]) + k, "vars_time1": np.array([1, 2, 3], np.int32) * (k + 1)}
        for k, name in enumerate(("sgn", "bkg"))
    }
    write_trees(path, trees)
    X, y = read_tmva_root(path)
    assert X.dtype == np.float32 and X.shape == (6, 2, 1)
    expected = [[[1.5], [1]], [[2.5], [2]], [[3.5], [3]], [[2.5], [2]], [[3.5], [4]], [[4.5], [6]]]
    np.testing.assert_array_equal(X, np.array(expected, np.float32))
    np.testing.assert_array_equal(y, [1, 1, 1, 0, 0, 0])


def test_a_branch_empty_in_every_entry_is_named(tmp_path, write_jagged):
    path = tmp_path / "t.root"
    write_jagged(path, {"sgn": {"vars_time0": [[], []], "vars_time1": [[1.0], [2.0]]}, "bkg": {"vars_time0": [[1.0]]}})
    message = "read_tmva_root: branch vars_time0 of tree 'sgn' is empty in every entry; it holds no features"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_rows_whose_first_entry_is_the_odd_one(tmp_path, write_jagged):
    path = tmp_path / "t.root"
    write_jagged(path, {"sgn": {"vars_time0": [[1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0]]}, "bkg": {"vars_time0": [[1.0]]}})
    message = (
        "read_tmva_root: branch vars_time0 of tree 'sgn' has rows of different lengths (3 and 2) at entry 1; "
        "every time step must have the same number of features"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_a_nested_array_branch_is_refused_with_its_type(tmp_path):
    path = tmp_path / "t.root"
    write_trees(path, {"sgn": {"vars_time0": np.zeros((4, 2, 3), np.float32)}, "bkg": GOOD_BKG})
    message = (
        "read_tmva_root: branch vars_time0 of tree 'sgn' has nested type 4 * 2 * 3 * float32; expected one list "
        "of numbers per entry (float[F] or std::vector<float>)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_a_branch_of_strings_is_refused_with_its_dtype(tmp_path):
    path = tmp_path / "str.root"
    with uproot.recreate(path) as f:  # uproot writes an RNTuple from a dict; it holds strings
        f["sgn"] = {"vars_time0": ak.Array(["ab", "c"])}
        f["bkg"] = {"vars_time0": ak.Array(["ab", "c"])}
    message = "read_tmva_root: branch vars_time0 of tree 'sgn' holds <U2 values; expected numbers"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_a_branch_uproot_cannot_read_is_named_with_uproots_error(tmp_path, monkeypatch):
    sig, bkg = arrays()
    write_tmva_root(tmp_path / "t.root", sig, bkg)

    def unreadable(self, *args, **kwargs):
        raise RuntimeError("no interpretation for this branch")

    monkeypatch.setattr(uproot.behaviors.TBranch.TBranch, "array", unreadable)
    message = (
        "read_tmva_root: cannot read branch vars_time0 of tree 'sgn' (RuntimeError: no interpretation for this "
        "branch); every time-step branch must hold numbers (float[F], std::vector<float> or float)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(tmp_path / "t.root")


# ────────────────────────────────────────────────────────────────────────── time-step branches


def test_time_steps_must_start_at_0(tmp_path):
    path = tmp_path / "t.root"
    one = np.ones((2, 3), np.float32)
    write_trees(path, {"sgn": {"vars_time1": one, "vars_time2": one}, "bkg": GOOD_BKG})
    message = "read_tmva_root: tree 'sgn' has branches vars_time1… but no vars_time0; time steps must be numbered from 0"
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_a_single_time_step(tmp_path):
    sig, bkg = arrays(T=1)
    write_tmva_root(tmp_path / "t.root", sig, bkg)
    X, _ = read_tmva_root(tmp_path / "t.root")
    np.testing.assert_array_equal(X, np.concatenate([sig, bkg]))


@pytest.mark.parametrize("n_branches, tail", [(30, ""), (31, ", … (31 in all)"), (32, ", … (32 in all)")])
def test_the_branch_listing_stops_after_30_names(tmp_path, n_branches, tail):
    path = tmp_path / "t.root"
    write_trees(path, {"sgn": {f"x{i}": np.ones(1, np.float32) for i in range(n_branches)}, "bkg": GOOD_BKG})
    shown = ", ".join(f"x{i}" for i in range(30)) + tail
    message = (
        f"read_tmva_root: tree 'sgn' has no branch named vars_time0, vars_time1, …; its branches are: {shown}; "
        f"pass branch_prefix=<the common prefix of the per-time-step branches>"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_tmva_root(path)


def test_a_tree_without_branches_says_none():
    # uproot cannot write a TTree without branches (ROOT can): the helper is given one directly
    class NoBranches:
        def keys(self):
            return []

    message = (
        "read_tmva_root: tree 'sgn' has no branch named vars_time0, vars_time1, …; its branches are: none; "
        "pass branch_prefix=<the common prefix of the per-time-step branches>"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        root_module._step_branches("read_tmva_root", NoBranches(), "sgn", "vars_time", None)
