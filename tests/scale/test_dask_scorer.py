"""``bptt.scale.Scorer``: scores of a dask-awkward array from ``uproot.dask``, lazily, on the test's
LocalCluster of two worker processes.

The oracle is ``model.predict_proba`` on the events read with plain uproot. Through Dask the
network sees one partition (100 events) at a time, not the 495 at once, so the float32 scores may
differ in the last bits where BLAS blocks a product by the batch's size: compared to 1e-6
relative. The in-memory call scores the same batch as the oracle and must give the same bits.
"""

from __future__ import annotations

import dask_awkward as dak
import numpy as np
import pytest
import uproot

from bptt.model import Sequential
from bptt.scale import Scorer

STEPS = [f"vars_time{j}" for j in range(3)]


@pytest.fixture(scope="module")
def events_files(tmp_path_factory):
    """Two files with a TTree Events: the model's three branches, and two it does not read."""
    d = tmp_path_factory.mktemp("events")
    rng = np.random.default_rng(7)
    files, X, numbers = [], [], []
    first = 0
    for name, n in (("run1", 260), ("run2", 235)):
        x = rng.normal(size=(n, 3, 4)).astype(np.float32)
        columns = {**{b: x[:, j] for j, b in enumerate(STEPS)},
                   "eventNumber": np.arange(first, first + n, dtype=np.int64),
                   "weight": rng.uniform(size=n).astype(np.float32)}
        with uproot.recreate(d / f"{name}.root") as f:  # a TTree (uproot's f[name] = ... writes an RNTuple)
            f.mktree("Events", {k: np.dtype((v.dtype, v.shape[1:])) for k, v in columns.items()})
            f["Events"].extend(columns)
        files.append(str(d / f"{name}.root"))
        X.append(x)
        numbers.append(np.arange(first, first + n))
        first += n
    return files, np.concatenate(X), np.concatenate(numbers)


def lazy_events(files):
    return uproot.dask({f: "Events" for f in files}, step_size=100)


def test_scores_are_lazy_read_only_the_models_branches_and_match_predict_proba(dask_client, events_files, make_model,
                                                                                tmp_path, model_loads):
    import awkward as ak

    files, X, numbers = events_files
    model = make_model(tmp_path / "s.bptt", seed=9)
    scorer = Scorer(str(tmp_path / "s.bptt"))
    events = lazy_events(files)
    assert events.npartitions == 6
    lazy = scorer(events)
    assert isinstance(lazy, dak.Array) and lazy.npartitions == 6 and lazy.form == ak.forms.NumpyForm("float32")
    events["score"] = lazy  # a coffea analysis's usage
    columns = dak.report_necessary_columns(events["score"])
    assert [sorted(c) for c in columns.values()] == [STEPS]  # eventNumber and weight are not read
    out = dask_client.compute(events[["eventNumber", "score"]], sync=True)
    np.testing.assert_array_equal(out["eventNumber"].to_numpy(), numbers)  # one score per event, in order
    np.testing.assert_allclose(out["score"].to_numpy(), model.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert out["score"].to_numpy().dtype == np.float32
    loads = model_loads.counts()  # 6 partitions, the network built once per worker
    assert set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1, loads


def test_selections_compose_with_the_score(dask_client, events_files, make_model, tmp_path):
    files, X, numbers = events_files
    model = make_model(tmp_path / "s.bptt", seed=9)
    events = lazy_events(files)
    events["score"] = Scorer(model)(events)
    selected = events[events.score > 0.5]
    got = dask_client.compute(selected.eventNumber, sync=True).to_numpy()
    expected = numbers[model.predict_proba(X) > 0.5]
    assert 0 < len(expected) < len(numbers)
    np.testing.assert_array_equal(got, expected)


def test_in_memory_events_are_scored_at_once_with_the_same_bits(events_files, make_model, tmp_path):
    files, X, _ = events_files
    model = make_model(tmp_path / "s.bptt", seed=9)
    scorer = Scorer(model)
    arrays = uproot.open(files[0])["Events"].arrays()
    scores = scorer(arrays)
    assert isinstance(scores, np.ndarray)
    np.testing.assert_array_equal(scores, model.predict_proba(X[:260]))


def test_class_probabilities_and_a_subclass_post_processing(dask_client, events_files, make_model, tmp_path):
    files, X, _ = events_files
    model = make_model(tmp_path / "c.bptt", seed=3, loss="softmax_ce", output="DENSE|3|LINEAR")
    assert model.predict_proba(X[:2]).shape == (2, 3)

    class Logit(Scorer):  # post-processing of the user's own, run on the workers
        def postprocess(self, scores):
            return super().postprocess(np.log(scores))

    scorer = Logit(str(tmp_path / "c.bptt"))
    assert scorer.shape == (3,)
    lazy = scorer(lazy_events(files))
    got = dask_client.compute(lazy, sync=True).to_numpy()
    assert got.shape == (495, 3)
    np.testing.assert_allclose(got, np.log(model.predict_proba(X)), rtol=1e-5, atol=1e-6)


def test_a_model_that_does_not_name_its_inputs_needs_variables(tmp_path):
    model = Sequential.from_tmva("LSTM|3|4|3,DENSE|1|LINEAR", "3|4", seed=0)  # any number of steps fits
    with pytest.raises(ValueError, match=r"pass Scorer\(model, variables=\[\(name, size\), …\]\) in training order"):
        Scorer(model)
    scorer = Scorer(model, variables=[(b, 4) for b in STEPS])
    assert scorer.variables == [(b, 4) for b in STEPS]


def test_a_model_of_ragged_sequences_scores_jagged_branches_through_dask(dask_client, tmp_path):
    """Jagged std::vector<float> branches written by ROOT (tests/fixtures/jagged_tracks.root): each
    partition's events padded with their lengths; the oracle scores every event alone, unpadded."""
    import os

    from bptt.layers import LSTM, Dense

    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "jagged_tracks.root")
    branches = ["track_pt", "track_eta", "track_phi", "track_d0"]
    model = Sequential([LSTM(4, 5, seed=3), Dense(5, 1, seed=4)])
    model.inputs = [{"name": b, "size": 1, "jagged": True} for b in branches]
    model.save(tmp_path / "tracks.bptt")
    arrays = uproot.open(path)["tracks"].arrays(branches, library="np")
    expected = np.array([
        float(model.predict_proba(np.stack([arrays[b][i] for b in branches], axis=1)[None].astype(np.float32))[0])
        for i in range(len(arrays[branches[0]]))
    ])
    scorer = Scorer(str(tmp_path / "tracks.bptt"))
    lazy = scorer(uproot.dask({path: "tracks"}, step_size=150))
    assert lazy.npartitions == 3
    np.testing.assert_allclose(lazy.compute().to_numpy(), expected, rtol=0, atol=2e-6)
    in_memory = uproot.open(path)["tracks"].arrays(branches, entry_stop=40)
    np.testing.assert_allclose(scorer(in_memory), expected[:40], rtol=0, atol=2e-6)
