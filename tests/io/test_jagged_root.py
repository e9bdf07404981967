"""Ragged sequences from jagged ROOT branches (DataLoader.add_sequence, bptt train --sequence) against
what ROOT itself read from tests/fixtures/jagged_tracks.root (root_fixtures.json's "jagged" entry,
written by tools/make_root_fixtures.py with ROOT 6.40: TTreeFormula's Length$ and Sum$ per entry,
every value of a few entries)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bptt.cli import main
from bptt.data.loader import DataLoader

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures")
FILE = os.path.join(FIX, "jagged_tracks.root")
ROOTJ = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))["jagged"]["trees"]
TRACKS, COUNTED = ROOTJ["tracks"], ROOTJ["tracks_c"]
BRANCHES = ["track_pt", "track_eta", "track_phi", "track_d0"]


def root_values(tree, expr):
    return np.asarray(tree["values"][expr])


def loader(branches=BRANCHES, tree="tracks", max_length=None, target=None, cut=""):
    L = DataLoader("jagged")
    L.add_sequence(branches, max_length=max_length)
    if target:
        L.set_step_target(target)
    L.add_tree((FILE, tree), "Signal", 1.0, "label==1")
    L.add_tree((FILE, tree), "Background", 1.0, "label==0")
    if cut:
        L.add_cut(cut)
    return L


def by_class(values, label):
    """ROOT's per-entry values in the order the events come: signal entries, then background."""
    return np.r_[values[label == 1], values[label == 0]]


def test_lengths_and_values_are_roots():
    ev = loader().all_events()
    label = root_values(TRACKS, "label")
    lengths = by_class(root_values(TRACKS, "Length$(track_pt)"), label)
    assert ev.lengths.dtype == np.int64 and ev.lengths.tolist() == lengths.astype(int).tolist()
    assert ev.X.shape == (400, int(lengths.max()), 4) and ev.X.dtype == np.float32
    assert (lengths == 1).sum() >= 1  # the fixture has one-track events
    for j, b in enumerate(BRANCHES):
        np.testing.assert_allclose(ev.X[..., j].sum(axis=1), by_class(root_values(TRACKS, f"Sum$({b})"), label),
                                   rtol=1e-5, atol=1e-4)
    padded = np.arange(ev.X.shape[1])[None, :] >= ev.lengths[:, None]
    assert not ev.X[padded].any()  # zeros after each sequence's last track
    assert ev.sequence == BRANCHES and ev.variables == [] and ev.max_length is None
    assert ev.y.tolist() == by_class(label, label).tolist()
    # every value of a few entries: signal entries come first, in entry order
    signal_entries = np.flatnonzero(label == 1).tolist()
    for entry, row in TRACKS["rows"].items():
        entry = int(entry)
        i = signal_entries.index(entry) if label[entry] == 1 else int((label == 1).sum()) + int((label[:entry] == 0).sum())
        n = len(row["track_pt"])
        assert ev.lengths[i] == n
        np.testing.assert_array_equal(ev.X[i, :n], np.array([row[b] for b in BRANCHES], np.float32).T)


def test_split_keeps_lengths_with_their_rows():
    ev = loader().prepare_training_and_test_tree("", "SplitMode=Random:SplitSeed=7:!V")
    X_tr, _, _ = ev.train()
    X_te, _, _ = ev.test()
    for X, lengths in ((X_tr, ev.train_lengths()), (X_te, ev.test_lengths())):
        assert len(lengths) == len(X)
        real = (X != 0).any(axis=2)
        # the last step with a nonzero feature is each sequence's last real step (pt >= 1 in the fixture)
        assert (real.shape[1] - np.argmax(real[:, ::-1], axis=1)).tolist() == lengths.tolist()


def test_counter_and_c_arrays_with_the_cut_that_drops_empty_events():
    ev = loader(["pt", "eta"], tree="tracks_c", cut="Length$(pt)>0").all_events()
    label = root_values(COUNTED, "label")
    n = root_values(COUNTED, "ntrk")
    keep = n > 0
    assert ev.lengths.tolist() == by_class(n[keep], label[keep]).astype(int).tolist()
    np.testing.assert_allclose(ev.X[..., 0].sum(axis=1), by_class(root_values(COUNTED, "Sum$(pt)")[keep], label[keep]),
                               rtol=1e-5)
    np.testing.assert_allclose(ev.X[..., 1].sum(axis=1), by_class(root_values(COUNTED, "Sum$(eta)")[keep], label[keep]),
                               rtol=1e-5, atol=1e-4)


def test_step_target_is_roots_per_step_label():
    ev = loader(target="track_label").all_events()
    label = root_values(TRACKS, "label")
    assert ev.y.shape == ev.X.shape[:2] and ev.y.dtype == np.float32
    np.testing.assert_array_equal(ev.y.sum(axis=1), by_class(root_values(TRACKS, "Sum$(track_label)"), label))
    padded = np.arange(ev.X.shape[1])[None, :] >= ev.lengths[:, None]
    assert not ev.y[padded].any()


def test_max_length_truncates_like_the_first_steps_with_a_warning():
    full = loader().all_events()
    n_long = int((full.lengths > 5).sum())
    dropped = int((full.lengths - np.minimum(full.lengths, 5)).sum())
    with pytest.warns(UserWarning, match=rf"{n_long} of 400 sequences are longer than max_length=5 .* kept their first "
                                         rf"5 steps \(truncating='post'\), {dropped} steps left out"):
        ev = loader(max_length=5, target="track_label").all_events()
    assert ev.X.shape == (400, 5, 4) and ev.lengths.tolist() == np.minimum(full.lengths, 5).tolist()
    np.testing.assert_array_equal(ev.X, full.X[:, :5])
    assert ev.model_inputs() == [{"name": b, "size": 1, "jagged": True, "max_length": 5} for b in BRANCHES]


def test_regression_trees_with_a_step_target_split_as_one_sample():
    L = DataLoader()
    L.add_sequence(["track_pt", "track_d0"])
    L.set_step_target("track_label")
    L.AddRegressionTree((FILE, "tracks"))
    ev = L.prepare_training_and_test_tree("", "nTrain_Regression=150:SplitMode=Block")
    assert ev.n_train == 150 and ev.n_test == 250
    assert ev.train_lengths().tolist() == root_values(TRACKS, "Length$(track_pt)")[:150].astype(int).tolist()


@pytest.mark.parametrize("branches,tree,cut,match", [
    (["track_pt", "track_bad"], "tracks", "",
     r"tree jagged_tracks.root:tracks: branch track_bad has 3 values in entry 7 but track_pt has 2; every branch of a "
     r"sequence must have one value per step"),
    (["pt", "eta"], "tracks_c", "",
     r"tree jagged_tracks.root:tracks_c: entry 5 has no steps \(branch pt is empty there; .*\); the recurrent layers need "
     r"at least one step per event: leave such events out with the cut 'Length\$\(pt\)>0'"),
    (["track_pt", "jet_pt"], "tracks", "",
     r"branch jet_pt is a sequence's branch but holds float \(one number per entry\); expected one list per entry of "
     r"the event's length"),
    (["track_pt", "nope"], "tracks", "", r"tree jagged_tracks.root:tracks has no branch nope \(read by the sequence"),
])
def test_errors_name_the_branch_the_entry_the_expected_and_the_received(branches, tree, cut, match):
    with pytest.raises(ValueError, match=match):
        loader(branches, tree=tree, cut=cut).all_events()


def test_step_target_of_another_length_and_mixing_are_refused():
    with pytest.raises(ValueError, match=r"the step target track_bad has 3 values in entry 7 but track_pt has 2"):
        loader(["track_pt"], target="track_bad").all_events()
    L = DataLoader()
    L.add_variable("jet_pt")
    with pytest.raises(ValueError, match=r"add_sequence: the loader already has per-event variables \(jet_pt\)"):
        L.add_sequence("track_pt")
    L = DataLoader()
    L.add_sequence("track_pt")
    with pytest.raises(ValueError, match=r"variable 'jet_pt': the loader reads a ragged sequence \(track_pt\)"):
        L.add_variable("jet_pt")
    with pytest.raises(ValueError, match=r"add_sequence: max_length=3 differs from the None given before"):
        L.add_sequence("track_eta", max_length=3)


def test_sizes_are_checked_before_padding():
    L = loader()
    L.max_bytes = 400 * 13 * 4 * 4 - 1  # one byte short of the padded (400, 13, 4) float32 array
    with pytest.raises(ValueError, match=r"padding 400 sequences to T=13 steps of 4 features .* more than the limit"):
        L.all_events()
    L = loader()
    L.max_bytes = 1000  # smaller than the compact values themselves
    with pytest.raises(ValueError, match=r"the sequences of tree jagged_tracks.root:tracks hold more than \d+ values"):
        L.all_events()


def test_command_line_options(capsys, tmp_path):
    base = ["evaluate", "nope.bptt", FILE, "--tree", "tracks", "--class-branch", "label"]
    for extra, match in (
        (["--max-length", "3"], "--max-length is for ragged sequences; give the jagged branches with --sequence"),
        (["--sequence", "track_pt", "--variables", "jet_pt"], "give either --sequence .* or --variables"),
        (["--sequence", "track_pt", "--max-length", "0"], "--max-length must be a positive number of steps; got 0"),
    ):
        from bptt.cli import _loader, build_parser

        args = build_parser().parse_args(base + extra)
        with pytest.raises(ValueError, match=match):
            _loader(FILE, args)
    np.savez(tmp_path / "d.npz", x=np.ones((2, 3, 1)), y=np.ones(2), lengths=np.array([3, 1]))
    from bptt.model import Sequential

    Sequential.from_tmva("LSTM|2|1|3,RESHAPE|FLAT,LINEAR", "3|1", seed=0).save(tmp_path / "m.bptt")
    assert main(["evaluate", str(tmp_path / "m.bptt"), str(tmp_path / "d.npz"), "--sequence", "a"]) == 2
    assert "--sequence: for ROOT files' jagged branches" in capsys.readouterr().err
