"""bptt train / evaluate with per-step targets (sequence labelling, per-step regression): the
figures over the real steps instead of TMVA's per-event tables, checked against scikit-learn on
the real steps, and the real steps counted against what ROOT read (root_fixtures.json)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

from bptt.cli import main
from bptt.model import Sequential
from bptt.tmva.network import TrainingPlan

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures")
T, F = 6, 3
TRAIN = ["--input-layout", f"{T}|{F}", "--training-strategy", "MaxEpochs=2,BatchSize=20,LearningRate=0.01", "--quiet"]


@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    original = TrainingPlan.fit

    def spy(self, X, y, **kwargs):
        calls.append((np.array(X), np.array(y), kwargs))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(TrainingPlan, "fit", spy)
    return calls


def tagged(tmp_path, n=120, seed=0, kind="bce"):
    """An .npz file of ragged sequences with a target per step (0 at padded steps)."""
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, size=n)
    m = np.arange(T)[None, :] < L[:, None]
    X = (rng.normal(size=(n, T, F)) * m[..., None]).astype(np.float32)
    if kind == "bce":
        y = ((X[..., 0] > 0) & m).astype(np.float32)
    elif kind == "softmax_ce":
        y = (np.digitize(X[..., 0], [-0.5, 0.5]) * m).astype(np.float32)
    else:
        y = (np.cumsum(X[..., 0], axis=1) * m).astype(np.float32)
    path = tmp_path / f"{kind}.npz"
    np.savez(path, x=X, y=y, lengths=L)
    return str(path), X, y, L, m


def test_sequence_labelling_from_the_command_line(tmp_path, fit_calls, capsys):
    path, X, y, L, m = tagged(tmp_path)
    out = tmp_path / "tag.bptt"
    assert main(["train", path, "--layout", f"LSTM|5|{F}|{T}|0|1,DENSE|1|LINEAR", "--out", str(out)] + TRAIN) == 0
    captured = capsys.readouterr()
    assert "Per-step evaluation of tag: every real step of every event one prediction" in captured.out
    assert "per-step targets: TMVA's tables (ROC integral, signal efficiencies, overtraining test)" in captured.err
    assert not (tmp_path / "tag.root").exists()  # no per-event output file
    record = json.loads((tmp_path / "tag.json").read_text())
    assert record["per_step"] is True and set(record["metrics"]) == {"train", "test"}
    # the training part fit received; the test part is the rest (found by content)
    Xt, _, kwargs = fit_calls[0]
    trained = {x.tobytes() for x in Xt}
    test = np.array([x.tobytes() not in trained for x in X])
    np.testing.assert_array_equal(np.sort(kwargs["lengths"]), np.sort(L[~test]))
    model = Sequential.load(out)
    p = model.predict_proba(X[test], lengths=L[test])
    mt = m[test]
    figures = record["metrics"]["test"]
    assert figures["steps"] == int(L[test].sum()) and figures["events"] == int(test.sum())
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(y[test][mt], p[mt]), rel=1e-6)
    assert figures["accuracy"] == pytest.approx(accuracy_score(y[test][mt], p[mt] >= 0.5), rel=1e-6)
    assert record["metrics"]["train"]["steps"] == int(L[~test].sum())

    assert main(["evaluate", str(out), path, "--json", str(tmp_path / "e.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["steps"] == int(L.sum()) and result["events"] == len(X)
    assert f"    steps: {int(L.sum())}" in printed
    p = model.predict_proba(X, lengths=L)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y[m], p[m]), rel=1e-6)


@pytest.mark.parametrize("kind, out_units", [("softmax_ce", 3), ("mse", 1)])
def test_per_step_classes_and_regression_from_a_config(tmp_path, fit_calls, capsys, kind, out_units):
    path, X, y, L, m = tagged(tmp_path, kind=kind, seed=1)
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\nlayout = "GRU|4|{F}|{T}|0|1,DENSE|{out_units}|LINEAR"\ninput_layout = "{T}|{F}"\n'
                      f'loss = "{kind}"\n[training]\nepochs = 2\nbatch_size = 20\n')
    out = tmp_path / "m.bptt"
    assert main(["train", path, "--config", str(config), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "m.json").read_text())["metrics"]["test"]
    Xt = fit_calls[0][0]
    trained = {x.tobytes() for x in Xt}
    test = np.array([x.tobytes() not in trained for x in X])
    model = Sequential.load(out)
    mt = m[test]
    if kind == "softmax_ce":
        assert set(record) == {"loss", "accuracy", "events", "steps"}
        labels = model.predict(X[test], lengths=L[test])
        assert record["accuracy"] == pytest.approx(accuracy_score(y[test][mt], labels[mt]), rel=1e-6)
    else:
        assert set(record) == {"loss", "events", "steps"}
        pred = model.predict(X[test], lengths=L[test])
        assert record["loss"] == pytest.approx(mean_squared_error(y[test][mt], pred[mt]), rel=1e-5)


def test_per_step_labels_from_a_jagged_root_branch(tmp_path, capsys):
    """--step-target: the real steps of each part are those ROOT counts (Length$, cut at
    --max-length); SplitMode=Block without classes trains on the first half of the entries."""
    root = os.path.abspath(os.path.join(FIX, "jagged_tracks.root"))
    values = json.load(open(os.path.join(FIX, "root_fixtures.json"), encoding="utf-8"))["jagged"]["trees"]["tracks"]
    lengths = np.minimum(np.asarray(values["values"]["Length$(track_pt)"]).astype(int), 6)
    out = tmp_path / "tracks.bptt"
    with pytest.warns(UserWarning, match="longer than max_length=6"):
        code = main(["train", root, "--tree", "tracks", "--sequence", "track_pt,track_eta,track_phi,track_d0",
                     "--step-target", "track_label", "--max-length", "6", "--split", "SplitMode=Block",
                     "--layout", "GRU|4|4|6|0|1,DENSE|1|LINEAR", "--input-layout", "6|4",
                     "--training-strategy", "MaxEpochs=1,BatchSize=50", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "tracks.json").read_text())["metrics"]
    half = len(lengths) // 2
    assert metrics["train"]["steps"] == int(lengths[:half].sum())
    assert metrics["test"]["steps"] == int(lengths[half:].sum())
    assert 0 <= metrics["test"]["roc_auc"] <= 1
    assert not (tmp_path / "tracks.root").exists()


def test_one_label_per_ragged_sequence_gets_tmvas_tables_of_the_outputs_with_lengths(tmp_path, fit_calls, capsys):
    """Per-event labels with lengths: TMVA's tables and TestTree hold the classifier output of each
    event read up to its last real step."""
    import uproot

    rng = np.random.default_rng(4)
    n = 80
    L = rng.integers(1, T + 1, size=n)
    m = np.arange(T)[None, :] < L[:, None]
    X = (rng.normal(size=(n, T, F)) * m[..., None]).astype(np.float32)
    y = (np.where(m, X[..., 0], 0).sum(axis=1) > 0).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=X, y=y, lengths=L)
    out = tmp_path / "seq.bptt"
    assert main(["train", str(tmp_path / "d.npz"), "--layout", f"LSTM|4|{F}|{T}|0|0,LINEAR", "--out", str(out)]
                + TRAIN) == 0, capsys.readouterr().err
    assert "ROC-integ" in capsys.readouterr().out
    trained = {x.tobytes() for x in fit_calls[0][0]}
    test = np.array([x.tobytes() not in trained for x in X])
    with uproot.open(tmp_path / "seq.root") as f:
        scores = f["dataset/TestTree"]["seq"].array(library="np")
    model = Sequential.load(out)
    expected = model.predict_proba(X[test], lengths=L[test])  # TMVA's split leaves an odd event out per class
    assert len(scores) >= len(expected) - 2
    assert all(np.isclose(expected, s, rtol=1e-6, atol=0).any() for s in scores)
    padded_read = model.predict_proba(X[test])  # the same events read to T: other outputs
    assert sum(np.isclose(padded_read, s, rtol=1e-6, atol=0).any() for s in scores) < len(scores) // 2


def test_trace_a_ragged_batch(tmp_path, capsys):
    path, X, y, L, m = tagged(tmp_path, n=40, seed=5)
    out = tmp_path / "t.bptt"
    assert main(["train", path, "--layout", f"RNN|3|{F}|{T}|0|1,DENSE|1|LINEAR", "--out", str(out)] + TRAIN) == 0
    capsys.readouterr()
    assert main(["trace", "--model", str(out), "--data", path, "--events", "5"]) == 0
    text = capsys.readouterr().out
    pick = np.random.default_rng(0).permutation(len(X))[:5]  # bptt trace's events (seed 0)
    n0 = int(L[pick[0]])
    assert f"sequence 0 of the batch: {n0} real steps of {T}" in text
    norms = text.splitlines()[-T:]
    counts = (np.arange(T)[None, :] < L[pick][:, None]).sum(axis=0)
    assert [int(line.split()[-1]) for line in norms] == counts[::-1].tolist()


def test_truncated_bptt_from_the_command_line(tmp_path, fit_calls, capsys):
    """--tbptt K1,K2 reaches fit as tbptt=(K1, K2) (K2 defaults to K1) and the model trained equals
    Python's fit with the same plan and tbptt; bad values end with exit code 2."""
    path, X, y, L, m = tagged(tmp_path)
    layout = f"LSTM|5|{F}|{T}|0|1,DENSE|1|LINEAR"
    out = tmp_path / "tb.bptt"
    assert main(["train", path, "--layout", layout, "--out", str(out), "--tbptt", "2,3", "--seed", "1"] + TRAIN) == 0
    assert fit_calls[-1][2]["tbptt"] == (2, 3)
    cli_model = Sequential.load(out)
    assert main(["train", path, "--layout", layout, "--out", str(tmp_path / "k.bptt"), "--tbptt", "2"] + TRAIN) == 0
    assert fit_calls[-1][2]["tbptt"] == (2, 2)
    # the same run from Python: the plan and the arguments the CLI gave fit, tbptt included
    X_cli, y_cli, kwargs = fit_calls[0]
    from bptt.tmva.network import plan_from_options

    plan = plan_from_options(f"InputLayout={T}|{F}:Layout={layout}:TrainingStrategy=MaxEpochs=2,BatchSize=20,"
                             "LearningRate=0.01", seed=1, n_events=len(X_cli))
    plan.fit(X_cli, y_cli, **{k: a for k, a in kwargs.items() if k != "verbose"}, verbose=False)
    for name, p in plan.model.parameters().items():
        np.testing.assert_array_equal(cli_model.parameters()[name], p, err_msg=name)
    for bad in ("0,x", "1,2,3", "-1"):
        with pytest.raises(SystemExit) as exc:
            main(["train", path, "--layout", layout, "--tbptt", bad] + TRAIN)
        assert exc.value.code == 2
    assert main(["train", path, "--layout", layout, "--out", str(out), "--tbptt", "3,2"] + TRAIN) == 2
    assert "tbptt=(k1, k2) needs k2 >= k1" in capsys.readouterr().err
