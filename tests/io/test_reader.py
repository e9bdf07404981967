"""bptt.Reader and the pieces of bptt.apply: the scores of events, batches and ROOT files.

Oracles: a NumPy LSTM written out here (gate order i, f, g, o; TMVA's row-vector algebra) on the
values uproot reads from a file written by real ROOT (tests/fixtures/apply_vectors.root, made by
tools/make_apply_fixtures.py: std::vector<float> time steps, a float[3] array, scalars);
``model.predict_proba`` on the X that ``read_tmva_root`` reads; and a one-layer network by hand.
"""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from bptt import Reader
from bptt.apply import InputSpec, input_spec, read_chunks, score, to_inputs
from bptt.data.root import read_tmva_root, write_tmva_root
from bptt.layers import Dense
from bptt.model import Sequential

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "apply_vectors.root")
STEPS = [f"vars_time{j}" for j in range(3)]


def lstm_model(stateful=0, seed=1, with_inputs=True):
    model = Sequential.from_tmva(f"LSTM|2|4|3|{stateful}|1,RESHAPE|FLAT,LINEAR", "3|4", seed=seed)
    if with_inputs:
        model.inputs = [{"name": b, "size": 4} for b in STEPS]
    return model


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_lstm_score(model, X):
    """The network of lstm_model by hand, in float64: LSTM (returnSequence) → flatten → linear → σ."""
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    W, U, b, H = p["0.W"], p["0.U"], p["0.b"], 2
    h = np.zeros((len(X), H))
    c = np.zeros((len(X), H))
    hs = []
    for t in range(X.shape[1]):
        z = X[:, t] @ W + h @ U + b
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    flat = np.stack(hs, axis=1).reshape(len(X), -1)
    return sigmoid(flat @ p["2.W"] + p["2.b"])[:, 0]


def fixture_X(tree="Events"):
    """(n, 3, 4) float64 from the fixture, read with uproot and awkward alone."""
    t = uproot.open(FIXTURE)[tree]
    return np.stack([ak.to_numpy(t[b].array()).astype(np.float64) for b in STEPS], axis=1)


# ───────────────────────────────────────────────────────────── the numbers


@pytest.mark.parametrize("step_size", [16, 60, 10_000])
def test_scores_of_a_root_written_file_match_a_hand_written_lstm(step_size):
    model = lstm_model()
    got = Reader(model).evaluate_file(FIXTURE, "Events", step_size=step_size)
    np.testing.assert_allclose(got, numpy_lstm_score(model, fixture_X()), rtol=1e-5, atol=1e-6)
    assert got.shape == (60,) and got.std() > 1e-3  # the scores differ between events


def test_scores_match_predict_proba_on_what_read_tmva_root_reads(tmp_path):
    rng = np.random.default_rng(3)
    sig, bkg = rng.normal(size=(37, 3, 4)), rng.normal(0.5, 1.0, size=(29, 3, 4))
    path = write_tmva_root(tmp_path / "t.root", sig, bkg)
    X, y = read_tmva_root(path)
    model = lstm_model(seed=4)
    reader = Reader(model)
    for tree, rows in (("sgn", y == 1), ("bkg", y == 0)):
        expected = model.predict_proba(X[rows])
        for step in (5, 1000):
            np.testing.assert_allclose(reader.evaluate_file(path, tree, step_size=step), expected, rtol=1e-6, atol=1e-7)
    part = reader.evaluate_file(path, "sgn", entry_start=10, entry_stop=20, step_size=4)
    np.testing.assert_allclose(part, model.predict_proba(X[10:20]), rtol=1e-6, atol=1e-7)


def test_a_dense_network_by_hand():
    model = Sequential([Dense(2, 1)], loss="bce")
    model.set_parameters({"0.W": np.array([[0.05], [1.0]], np.float32), "0.b": np.array([-1.5], np.float32)})
    model.inputs = [{"name": "pt", "size": 1}, {"name": "eta", "size": 1}]
    reader = Reader(model)
    # σ(0.05·30 + 1·0.25 − 1.5) = σ(0.25) = 0.5621765008857981
    assert reader.evaluate({"pt": 30.0, "eta": 0.25}) == pytest.approx(0.5621765008857981, rel=1e-6)
    t = uproot.open(FIXTURE)["Events"]
    pt, eta = t["pt"].array(library="np"), t["eta"].array(library="np")
    np.testing.assert_allclose(reader.evaluate_file(FIXTURE, "Events"), sigmoid(0.05 * pt + eta - 1.5), rtol=1e-5)


def test_one_event_a_batch_and_awkward_forms_give_the_same_scores():
    model = lstm_model()
    reader = Reader(model)
    X = fixture_X()[:5].astype(np.float32)
    expected = numpy_lstm_score(model, X.astype(np.float64))
    batch_np = {b: X[:, j] for j, b in enumerate(STEPS)}
    batch_ak = {b: ak.Array(X[:, j].tolist()) for j, b in enumerate(STEPS)}  # var * float64, like std::vector
    records = ak.zip(batch_ak, depth_limit=1)
    for batch in (batch_np, batch_ak, records):
        np.testing.assert_allclose(reader.evaluate(batch), expected, rtol=1e-5)
    for k in range(5):
        as_lists = {b: X[k, j].tolist() for j, b in enumerate(STEPS)}
        got = reader.evaluate(as_lists)
        assert isinstance(got, float) and got == pytest.approx(expected[k], rel=1e-5)
        assert reader.evaluate(records[k]) == pytest.approx(expected[k], rel=1e-5)


def test_iterate_file_streams_chunks_of_at_most_step_size_with_copied_branches():
    model = lstm_model()
    chunks = list(Reader(model, name="lstm").iterate_file(FIXTURE, "Events", branches=["eventNumber", "fix*"], step_size=16))
    assert [len(c["lstm"]) for c in chunks] == [16, 16, 16, 12]
    assert list(chunks[0]) == ["fixed", "eventNumber", "lstm"]  # the tree's order, then the score
    numbers = np.concatenate([c["eventNumber"] for c in chunks])
    assert numbers.tolist() == [1000 + 7 * i for i in range(60)]
    fixed = np.concatenate([c["fixed"] for c in chunks])
    np.testing.assert_array_equal(fixed, uproot.open(FIXTURE)["Events"]["fixed"].array(library="np"))


def test_read_chunks_reads_only_the_branches_asked_for():
    t = uproot.open(FIXTURE)["Events"]
    firsts, fields = [], set()
    for first, chunk in read_chunks(t, ["pt", "vars_time2"], step_size=25):
        firsts.append(first)
        fields |= set(chunk.fields)
    assert firsts == [0, 25, 50] and fields == {"pt", "vars_time2"}


def test_a_stateful_network_scores_every_chunk_from_a_reset_state():
    stateful, plain = lstm_model(stateful=1), lstm_model(stateful=0)
    plain.set_parameters({k: v.copy() for k, v in stateful.parameters().items()})
    reader = Reader(stateful)
    first = reader.evaluate_file(FIXTURE, "Events", step_size=16)
    again = reader.evaluate_file(FIXTURE, "Events", step_size=7)
    expected = Reader(plain).evaluate_file(FIXTURE, "Events", step_size=60)
    np.testing.assert_allclose(first, expected, rtol=1e-6)
    np.testing.assert_allclose(again, expected, rtol=1e-6)


def test_softmax_models_give_class_probabilities():
    model = Sequential([Dense(2, 3)], loss="softmax_ce")
    model.inputs = [{"name": "pt", "size": 1}, {"name": "eta", "size": 1}]
    got = Reader(model).evaluate({"pt": np.array([1.0, 2.0]), "eta": np.array([0.5, -0.5])})
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, model.predict_proba(np.array([[1.0, 0.5], [2.0, -0.5]], np.float32)), rtol=1e-6)


def test_a_reader_from_a_model_file(tmp_path):
    model = lstm_model()
    path = model.save(tmp_path / "my-lstm.v2.bptt")
    reader = Reader(path)
    assert reader.name == "my_lstm_v2" and reader.variables == [(b, 4) for b in STEPS]
    np.testing.assert_allclose(reader.evaluate_file(FIXTURE, "Events"), Reader(model).evaluate_file(FIXTURE, "Events"))


# ───────────────────────────────────────────────────────── which inputs, which shape


def test_a_model_without_inputs_reads_the_tutorial_layout():
    model = lstm_model(with_inputs=False)
    reader = Reader(model)  # LSTM returning sequences, flattened into a dense layer: T = 6 / 2 = 3
    assert reader.variables == [(b, 4) for b in STEPS]
    spec = input_spec(model)
    assert spec.shape == (3, 4) and "does not name its inputs" in spec.note and "vars_time0 … vars_time2" in spec.note
    np.testing.assert_allclose(reader.evaluate_file(FIXTURE, "Events"), numpy_lstm_score(model, fixture_X()), rtol=1e-5)


def test_when_the_layers_do_not_fix_the_steps_the_tree_does():
    model = Sequential.from_tmva("LSTM|2|4|1|0|0,LINEAR", "1|4", seed=0)  # the last state only: any T
    reader = Reader(model)
    assert reader.variables is None
    with pytest.raises(ValueError, match=r"pass Reader\(model, variables="):
        reader.evaluate({b: [0.0] * 4 for b in STEPS})
    got = reader.evaluate_file(FIXTURE, "Events")
    np.testing.assert_allclose(got, model.predict_proba(fixture_X().astype(np.float32)), rtol=1e-6)
    explicit = Reader(model, variables=[("vars_time0", 4), ("vars_time1", 4)])
    np.testing.assert_allclose(explicit.evaluate_file(FIXTURE, "Events"),
                               model.predict_proba(fixture_X()[:, :2].astype(np.float32)), rtol=1e-6)


def test_to_inputs_concatenates_variables_in_row_major_time_feature_order():
    spec = InputSpec((("a", 2), ("b", 1), ("c", 3)), (2, 3))
    X = to_inputs({"a": np.array([[1.0, 2.0]]), "b": np.array([3.0]), "c": ak.Array([[4.0, 5.0, 6.0]])}, spec)
    assert X.dtype == np.float32 and X.tolist() == [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]


def test_score_of_no_event_is_empty():
    assert score(lstm_model(), np.zeros((0, 3, 4), np.float32)).shape == (0,)


# ─────────────────────────────────────────────────────────────────────── mistakes


def test_a_missing_branch_is_named_with_the_branches_the_tree_has():
    model = Sequential.from_tmva("LSTM|2|4|4|0|1,RESHAPE|FLAT,LINEAR", "4|4", seed=0)
    model.inputs = [{"name": b, "size": 4} for b in STEPS + ["vars_time9"]]
    with pytest.raises(ValueError, match=r"reads branch vars_time9 \(4 values per event\) but the tree has no such "
                                         r"branch; the tree's branches are: vars_time0, vars_time1"):
        Reader(model).evaluate_file(FIXTURE, "Events")


def test_a_branch_of_the_wrong_size_is_one_line_with_the_entry():
    with pytest.raises(ValueError, match=r"^tree Short: AddVariablesArray\('vars_time1', 4\) needs 4 values per event but "
                                         r"entry 3 of vars_time1 has 3; ") as info:
        Reader(lstm_model()).evaluate_file(FIXTURE, "Short", step_size=2)
    assert "\n" not in str(info.value)
    model = Sequential([Dense(4, 1)])
    model.inputs = [{"name": "fixed", "size": 4}]
    with pytest.raises(ValueError, match=r"^tree Events: AddVariablesArray\('fixed', 4\) needs 4 values per event but "
                                         r"branch fixed holds 3; "):
        Reader(model).evaluate_file(FIXTURE, "Events")
    model.inputs = [{"name": "pt", "size": 4}]
    with pytest.raises(ValueError, match=r"^tree Events: AddVariablesArray\('pt', 4\): branch pt holds one number per "
                                         r"event; use AddVariable\('pt'\)"):
        Reader(model).evaluate_file(FIXTURE, "Events")


def test_the_tutorial_layout_wants_exactly_its_width_as_training_does():
    model = Sequential.from_tmva("LSTM|2|3|3|0|1,RESHAPE|FLAT,LINEAR", "3|3", seed=0)  # 3 features; the file has 4
    with pytest.raises(ValueError, match=r"AddVariablesArray\('vars_time0', 3\) needs 3 values per event but branch "
                                         r"vars_time0 holds 4"):
        Reader(model).evaluate_file(FIXTURE, "Events")


def test_expressions_and_the_first_values_of_an_array_as_training_reads_them():
    """A variable is a TTreeFormula expression (AddVariable("abs(eta)")) or the first n values of an
    array branch (AddVariablesArray("fixed", 2) on a float[3]); by hand, with the fixture's columns."""
    model = Sequential([Dense(4, 1)])
    w = np.array([[0.5], [-0.25], [1.0], [2.0]], np.float32)
    model.set_parameters({"0.W": w, "0.b": np.array([0.1], np.float32)})
    model.inputs = [{"name": "abs(eta)", "size": 1}, {"name": "pt/10", "size": 1}, {"name": "fixed", "size": 2}]
    t = uproot.open(FIXTURE)["Events"]
    eta, pt, fixed = (t[b].array(library="np") for b in ("eta", "pt", "fixed"))
    expected = sigmoid(0.5 * np.abs(eta) - 0.25 * pt / 10 + fixed[:, 0] + 2.0 * fixed[:, 1] + 0.1)
    reader = Reader(model)
    assert reader.variables == [("abs(eta)", 1), ("pt/10", 1), ("fixed", 2)]
    np.testing.assert_allclose(reader.evaluate_file(FIXTURE, "Events", step_size=25), expected, rtol=1e-5)
    one = reader.evaluate({"eta": -2.0, "pt": 30.0, "fixed": [0.5, -0.5, 9.0]})
    assert one == pytest.approx(float(sigmoid(0.5 * 2.0 - 0.75 + 0.5 - 1.0 + 0.1)), rel=1e-6)


def test_nan_is_refused_naming_the_variable_and_the_entry():
    model = lstm_model()
    X = np.zeros((6, 3, 4), np.float32)
    X[4, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"variable 'vars_time2' is nan in entry 4"):
        Reader(model).evaluate({b: X[:, j] for j, b in enumerate(STEPS)})


def test_a_layout_that_does_not_fit_is_refused_before_reading():
    model = lstm_model()
    model.inputs = [{"name": "vars_time0", "size": 4}, {"name": "vars_time1", "size": 4}]  # T = 2, the network needs 3
    with pytest.raises(ValueError, match=r"the model cannot read events of shape \(2, 4\) \(InputLayout 2\|4\): "):
        Reader(model)
    model.inputs = [{"name": "vars_time0", "size": 4}, {"name": "pt", "size": 1}]
    with pytest.raises(ValueError, match=r"inputs give 5 values per event but its first layer \(LSTM\) reads 4 features "
                                         r"per time step \(InputLayout T\|4\); 5 is not a multiple of 4"):
        Reader(model)


def test_reader_arguments_are_checked(tmp_path):
    model = lstm_model()
    with pytest.raises(ValueError, match=r"variables=\[\('a', 4\)\] differ from the model file's inputs"):
        Reader(model, variables=[("a", 4)])
    with pytest.raises(ValueError, match=r"variables must be a list of names or \(name, size\) pairs"):
        Reader(lstm_model(with_inputs=False), variables=[("a", 0)])
    with pytest.raises(ValueError, match=r"no such model file: '.*nothing.bptt'"):
        Reader(tmp_path / "nothing.bptt")
    with pytest.raises(ValueError, match="model must be a bptt Sequential or a model file's path; got int"):
        Reader(3)
    with pytest.raises(ValueError, match=r"prefix='x' given, but the model file names its inputs"):
        Reader(model, prefix="x")
    reader = Reader(model)
    with pytest.raises(ValueError, match=r"vars_time0 hold one event's values but vars_time1, vars_time2 hold arrays"):
        reader.evaluate({"vars_time0": [0.0] * 4, "vars_time1": np.zeros((2, 4)), "vars_time2": np.zeros((2, 4))})
    with pytest.raises(ValueError, match=r"no branch 'vars_time2' \(AddVariablesArray\('vars_time2', 4\)\)"):
        reader.evaluate({"vars_time0": [0.0] * 4, "vars_time1": [0.0] * 4})
    with pytest.raises(ValueError, match="pass one event or a batch as a dict"):
        reader.evaluate(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"tree 'nope' not found in .*apply_vectors.root'; the file holds the trees: "
                                         r"'Events', 'Short'"):
        reader.evaluate_file(FIXTURE, "nope")
    with pytest.raises(ValueError, match=r"holds the trees 'Events', 'Short'; pass --tree"):
        reader.evaluate_file(FIXTURE)
    with pytest.raises(ValueError, match="step_size must be a positive number of entries per chunk; got 0"):
        reader.evaluate_file(FIXTURE, "Events", step_size=0)
    with pytest.raises(ValueError, match=r"step_size=1000000000 entries × 12 values per event exceeds"):
        reader.evaluate_file(FIXTURE, "Events", step_size=10**9)


def test_a_tree_in_a_directory_an_rntuple_and_a_file_without_trees(tmp_path):
    model = lstm_model()
    X = fixture_X()[:7].astype(np.float32)
    path = tmp_path / "results.root"
    with uproot.recreate(path) as f:  # TMVA's output file keeps its trees in the dataset directory
        f.mktree("dataset/TestTree", {b: np.dtype((np.float32, (4,))) for b in STEPS})
        f["dataset/TestTree"].extend({b: X[:, j] for j, b in enumerate(STEPS)})
        f["ntuple"] = {b: X[:, j] for j, b in enumerate(STEPS)}  # uproot writes a dict as an RNTuple
    assert uproot.open(path).classnames()["ntuple;1"] == "ROOT::RNTuple"
    np.testing.assert_allclose(Reader(model).evaluate_file(path, "ntuple"), model.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(Reader(model).evaluate_file(path, "dataset/TestTree"), model.predict_proba(X), rtol=1e-6)
    with uproot.recreate(tmp_path / "one.root") as f:
        f.mktree("only", {b: np.dtype((np.float32, (4,))) for b in STEPS}).extend({b: X[:, j] for j, b in enumerate(STEPS)})
    np.testing.assert_allclose(Reader(model).evaluate_file(tmp_path / "one.root"), model.predict_proba(X), rtol=1e-6)
    empty = tmp_path / "empty.root"
    uproot.recreate(empty).close()
    with pytest.raises(ValueError, match=r"empty.root' holds no TTree or RNTuple; pass a file with the tree to score"):
        Reader(model).evaluate_file(empty)


def test_a_var_transform_fixes_the_event_shape_it_was_fitted_on():
    """VarTransform (TMVA's N, D, G) keeps the shape of the events it was fitted on: a network that
    flattens first reads the tutorial layout as (T, F) = (3, 4), transformed as in training."""
    from bptt.layers import Flatten
    from bptt.transforms import VarTransform

    X = fixture_X().astype(np.float32)
    model = Sequential([Flatten(), Dense(12, 1, seed=2)])
    model.input_transform = VarTransform("N").fit(X[:40])
    reader = Reader(model)
    assert reader.variables == [(b, 4) for b in STEPS] and reader._spec.shape == (3, 4)
    got = reader.evaluate_file(FIXTURE, "Events", step_size=25)
    np.testing.assert_allclose(got, model.predict_proba(X), rtol=1e-6)
    lo, hi = X[:40].reshape(40, -1).min(axis=0), X[:40].reshape(40, -1).max(axis=0)  # N by hand: to [-1, 1]
    W, b = model.parameters()["1.W"].astype(np.float64), model.parameters()["1.b"].astype(np.float64)
    by_hand = sigmoid((2 * (X.reshape(60, -1) - lo) / (hi - lo) - 1) @ W + b)[:, 0]
    np.testing.assert_allclose(got, by_hand, rtol=1e-4, atol=1e-6)
    model.inputs = [{"name": "vars_time0", "size": 4}, {"name": "vars_time1", "size": 4}]
    with pytest.raises(ValueError, match=r"trained on events of shape \(3, 4\) \(InputLayout 3\|4, 12 values\) but its "
                                         r"inputs give 8 values per event"):
        Reader(model)
