"""bptt apply and bptt.Reader on a model trained on ragged sequences (model inputs marked "jagged"),
on tests/fixtures/jagged_tracks.root (written by real ROOT: std::vector<float> track lists, and a
counter with C arrays).

The oracle scores each event alone, without padding and without lengths (``X[i:i+1, :len_i]``,
built from uproot's per-entry values by a plain loop): a padded, chunked score that uses the
lengths right must equal it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import uproot

from bptt import Reader
from bptt.apply import input_spec, read_inputs
from bptt.cli import main
from bptt.layers import LSTM, Dense, Flatten
from bptt.model import Sequential

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures")
FILE = os.path.abspath(os.path.join(FIX, "jagged_tracks.root"))
BRANCHES = ["track_pt", "track_eta", "track_phi", "track_d0"]
ROOT_LENGTHS = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))["jagged"]["trees"]["tracks"][
    "values"]["Length$(track_pt)"]


def lstm_model(max_length=None, features=4):
    model = Sequential([LSTM(features, 5, seed=3), Dense(5, 1, seed=4)])
    extra = {} if max_length is None else {"max_length": max_length}
    names = BRANCHES if features == 4 else ["pt", "eta"]
    model.inputs = [{"name": b, "size": 1, "jagged": True, **extra} for b in names]
    return model


def one_by_one(model, tree="tracks", branches=BRANCHES, max_length=None, entry_stop=None):
    """Every entry scored alone, unpadded: (len_i, F) → predict_proba without lengths."""
    arrays = uproot.open(FILE)[tree].arrays(branches, library="np", entry_stop=entry_stop)
    out = []
    for i in range(len(arrays[branches[0]])):
        x = np.stack([np.asarray(arrays[b][i], np.float32) for b in branches], axis=1)[:max_length]
        out.append(float(model.predict_proba(x[None]).reshape(-1)[0]))
    return np.array(out)


def test_apply_scores_equal_each_event_scored_alone(tmp_path, capsys):
    model = lstm_model()
    model.save(tmp_path / "tracks.bptt")
    expected = one_by_one(model)
    assert main(["apply", str(tmp_path / "tracks.bptt"), FILE, "--tree", "tracks", "--out", str(tmp_path / "s.root"),
                 "--step-size", "37", "--branch", "label", "--quiet"]) == 0
    assert "scored 400 events" in capsys.readouterr().out
    t = uproot.open(tmp_path / "s.root")["tracks"]
    np.testing.assert_allclose(t["tracks"].array(library="np"), expected, rtol=0, atol=2e-6)
    np.testing.assert_array_equal(t["label"].array(library="np"), uproot.open(FILE)["tracks"]["label"].array(library="np"))
    reader = Reader(str(tmp_path / "tracks.bptt"))
    assert reader.variables == [(b, 1) for b in BRANCHES]
    np.testing.assert_allclose(reader.evaluate_file(FILE, "tracks", step_size=150), expected, atol=2e-6)
    events = uproot.open(FILE)["tracks"].arrays(BRANCHES, entry_stop=6)
    np.testing.assert_allclose(reader.evaluate(events), expected[:6], atol=2e-6)  # an awkward record array
    one = {b: events[b][3].to_list() for b in BRANCHES}  # one event's per-step lists → a float
    assert reader.evaluate(one) == pytest.approx(expected[3], abs=2e-6)
    batch = {b: events[b].to_list() for b in BRANCHES}  # ragged Python lists → (n,)
    np.testing.assert_allclose(reader.evaluate(batch), expected[:6], atol=2e-6)


def test_max_length_of_training_cuts_as_training_did(tmp_path):
    model = lstm_model(max_length=3)
    spec = input_spec(model)
    assert spec.jagged and spec.max_length == 3 and spec.shape == (0, 4)
    expected = one_by_one(model, max_length=3)
    np.testing.assert_allclose(Reader(model).evaluate_file(FILE, "tracks", step_size=64), expected, atol=2e-6)
    X, lengths = read_inputs(uproot.open(FILE)["tracks"].arrays(BRANCHES, entry_stop=10), spec)
    counts = uproot.open(FILE)["tracks"]["track_pt"].array(library="np", entry_stop=10)
    assert X.shape[1] == 3 and lengths.tolist() == [min(len(c), 3) for c in counts]


def test_counted_arrays_and_an_empty_event(tmp_path, capsys):
    model = lstm_model(features=2)
    model.save(tmp_path / "c.bptt")
    assert main(["apply", str(tmp_path / "c.bptt"), FILE, "--tree", "tracks_c", "--out", str(tmp_path / "c.root"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tree tracks_c: entry 5 has no steps (branch pt is empty there" in err
    assert "the model cannot score it; score a copy of the tree holding the events with Length$(pt)>0" in err
    assert not (tmp_path / "c.root").exists()
    got = Reader(model).evaluate_file(FILE, "tracks_c", entry_stop=5)  # entries 0-4 have tracks
    np.testing.assert_allclose(got, one_by_one(model, "tracks_c", ["pt", "eta"], entry_stop=5), atol=2e-6)


def test_a_network_of_fixed_length_pads_to_it_and_refuses_longer_events(tmp_path):
    model = Sequential([LSTM(4, 3, return_sequences=True, seed=1), Flatten(), Dense(3 * 13, 1, seed=2)])
    model.inputs = [{"name": b, "size": 1, "jagged": True} for b in BRANCHES]
    spec = input_spec(model)
    assert spec.shape == (13, 4)  # the Flatten → Dense fixes 13 steps (the fixture's longest event)
    X, lengths = read_inputs(uproot.open(FILE)["tracks"].arrays(BRANCHES, entry_stop=4), spec)
    assert X.shape == (4, 13, 4)
    short = Sequential([LSTM(4, 3, return_sequences=True, seed=1), Flatten(), Dense(3 * 4, 1, seed=2)])
    short.inputs = model.inputs
    first = next(i for i, n in enumerate(ROOT_LENGTHS) if n > 4)
    with pytest.raises(ValueError, match=rf"tree tracks: entry {first} has {int(ROOT_LENGTHS[first])} steps but the model "
                                         rf"reads at most 4 \(its layers fix 4 steps"):
        Reader(short).evaluate_file(FILE, "tracks")


def test_input_errors(tmp_path):
    model = lstm_model()
    model.inputs = [{"name": "track_pt", "size": 1, "jagged": True}, {"name": "jet_pt", "size": 1, "jagged": True},
                    {"name": "track_phi", "size": 1, "jagged": True}, {"name": "track_d0", "size": 1, "jagged": True}]
    with pytest.raises(ValueError, match=r"branch jet_pt holds one number per event; the model reads it as a ragged "
                                         r"sequence's jagged branch"):
        Reader(model).evaluate_file(FILE, "tracks")
    model.inputs = [{"name": b, "size": 1, "jagged": True} for b in ["track_pt", "track_bad", "track_phi", "track_d0"]]
    with pytest.raises(ValueError, match=r"branch track_bad has 3 values in entry 7 but track_pt has 2"):
        Reader(model).evaluate_file(FILE, "tracks")
    model.inputs = [{"name": "track_pt", "size": 1, "jagged": True}, {"name": "x", "size": 3}]
    with pytest.raises(ValueError, match=r"the model's inputs mix jagged branches and per-event variables \(x\)"):
        input_spec(model)
    model.inputs = [{"name": b, "size": 1, "jagged": True} for b in BRANCHES[:3]]
    with pytest.raises(ValueError, match=r"the model reads 3 jagged branches per step .* but its first layer \(LSTM\) "
                                         r"reads 4 features per step"):
        input_spec(model)
    with pytest.raises(ValueError, match=r"'jagged': bool, 'max_length': int > 0"):
        Sequential.from_config({**lstm_model().config(), "inputs": [{"name": "a", "size": 1, "jagged": "yes"}]})
