"""The command line, run as a user would: a new process, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys


def bptt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bptt", *args], capture_output=True, text=True, timeout=120)


def test_example_prints_the_worked_example():
    out = bptt("example")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # Published forward values (rounded as published) appear in both our row and the published row.
    for value in ("0.96083", "0.85195", "0.81775", "0.81757", "0.53631", "0.98118", "0.84993"):
        assert text.count(value) >= 2, value
    for needle in ("dz_i", "dz_f", "dz_g", "dz_o", "dW", "dU", "db", "SGD step (lr = 0.1)"):
        assert needle in text
    # The closing finite-difference table: one row per array, every error below 1e-6.
    rows = [line.split() for line in text.splitlines()[-4:]]
    assert [r[0] for r in rows] == ["x", "W", "U", "b"]
    assert all(float(r[1]) < 1e-6 for r in rows)


def test_no_command_prints_help_and_exits_2():
    out = bptt()
    assert out.returncode == 2
    assert "example" in out.stdout


def test_bad_option_value_is_one_line_exit_2():
    out = bptt("example", "--lr", "-1")
    assert out.returncode == 2
    assert out.stderr.strip() == "bptt example: error: SGD: lr must be a positive finite number; got -1.0"
    assert "Traceback" not in out.stderr


def test_unknown_option_exit_2():
    out = bptt("example", "--frobnicate")
    assert out.returncode == 2
    assert "unrecognized arguments: --frobnicate" in out.stderr


# ─────────────────────────────────────────────────── tutorial, train, evaluate (issue: end to end)

import json  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tutorial_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tutorial")
    run = bptt("tutorial", "--events", "150", "--epochs", "2", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    return out, run.stdout


TITLES = {"LSTM": "TMVA_LSTM", "GRU": "TMVA_GRU", "RNN": "TMVA_RNN", "DNN": "TMVA_DNN", "BDT": "BDTG"}


def test_tutorial_writes_every_output(tutorial_dir):
    """The macro's five methods by default: model files for the networks, per method TMVA's
    overtraining and ROC plots, the gradient flow of each recurrent network, evaluation.txt."""
    out, stdout = tutorial_dir
    names = sorted(p.name for p in out.iterdir())
    pngs = sorted([f"{t}_overtraining.png" for t in TITLES.values()] + [f"{t}_roc.png" for t in TITLES.values()]
                  + ["gradient_flow_gru.png", "gradient_flow_lstm.png", "gradient_flow_rnn.png", "loss.png", "roc.png"])
    assert names == sorted(pngs + ["evaluation.txt", "metrics.json", "model_dnn.bptt", "model_gru.bptt",
                                   "model_lstm.bptt", "model_rnn.bptt", "time_data_t10_d30.root"])
    for png in pngs:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    metrics = json.loads((out / "metrics.json").read_text())
    # TMVA's split: nTrain = int(0.8 × 150) = 120 of each class, the other 30 + 30 for testing
    assert (metrics["events"], metrics["train_events"], metrics["test_events"]) == (300, 240, 60)
    assert list(metrics["networks"]) == list(TITLES)
    lines = stdout.splitlines()
    assert lines[0] == "method     test ROC AUC  accuracy  eff_S@B=0.10  KS prob  training s  epochs"
    for name, r in metrics["networks"].items():
        assert 0.0 <= r["roc_auc"] <= 1.0 and r["training_seconds"] > 0, name
        assert r["epochs_run"] == (None if name == "BDT" else 2), name
        if name in ("LSTM", "GRU", "RNN"):
            assert len(r["gradient_norm_per_step"]) == 10 and all(v > 0 for v in r["gradient_norm_per_step"])
        else:
            assert "gradient_norm_per_step" not in r
        row = [line for line in lines if line.startswith(TITLES[name] + " ")]
        assert len(row) == 1, name
        # the printed table shows the same figures
        assert row[0].split()[1:3] == [f"{r['roc_auc']:.4f}", f"{r['accuracy']:.4f}"], name
    evaluation = (out / "evaluation.txt").read_text()
    assert all(title in evaluation for title in TITLES.values())


def test_evaluate_a_tutorial_model(tutorial_dir, tmp_path):
    out, _ = tutorial_dir
    report = tmp_path / "eval.json"
    run = bptt("evaluate", str(out / "model_lstm.bptt"), str(out / "time_data_t10_d30.root"), "--json", str(report))
    assert run.returncode == 0, run.stderr
    result = json.loads(report.read_text())
    assert set(result) == {"loss", "roc_auc", "accuracy", "events"} and result["events"] == 300
    assert f"roc_auc: {result['roc_auc']:.4f}" in run.stdout


def _npz(tmp_path):
    import numpy as np

    from bptt.data.arrays import write_npz

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10, 30)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    return write_npz(str(tmp_path / "data.npz"), X, y)


def test_train_with_tmva_options_and_toml(tmp_path):
    data = _npz(tmp_path)
    run = bptt(
        "train", data, "--layout", "GRU|6|30|10|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR", "--input-layout", "10|1|30",
        "--training-strategy", "LearningRate=1e-2,BatchSize=20,MaxEpochs=3,Optimizer=ADAM", "--out", str(tmp_path / "a.bptt"), "--quiet",
    )
    assert run.returncode == 0, run.stderr
    assert "trained 3 epochs" in run.stdout and (tmp_path / "a.bptt").exists()
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(
        '[model]\nlayout = "LSTM|4|30|10|0|0,LINEAR"\ninput_layout = "10|30"\n'
        "[training]\nepochs = 2\nbatch_size = 30\nlearning_rate = 0.01\n"
    )
    run = bptt("train", data, "--config", str(cfg), "--out", str(tmp_path / "b.bptt"), "--quiet")
    assert run.returncode == 0, run.stderr
    assert "trained 2 epochs" in run.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "nope.root", "--layout", "LINEAR", "--input-layout", "1|1"], "bptt train: error: no such file: 'nope.root'"),
        (["evaluate", "nope.bptt", "x.root"], "bptt evaluate: error: no such model file: 'nope.bptt'"),
        (["tutorial", "--networks", "LSTM,CNN"], "bptt tutorial: error: --networks must be a comma-separated subset of LSTM,GRU,RNN,DNN,BDT; got 'LSTM,CNN'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message):
    run = bptt(*args)
    assert run.returncode == 2
    assert run.stderr.strip() == message


def test_train_mistakes_in_data_and_options(tmp_path, tutorial_dir):
    out, _ = tutorial_dir
    root = str(out / "time_data_t10_d30.root")
    layout = ["--layout", "LSTM|4|30|10|0|0,LINEAR", "--input-layout", "10|30", "--quiet"]
    run = bptt("train", root, "--signal-tree", "signal", *layout)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "signal" in run.stderr and "sgn" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    run = bptt("train", root, "--prefix", "var_t", *layout)
    assert run.returncode == 2 and "var_t" in run.stderr and "vars_time0" in run.stderr
    run = bptt("train", root, "--layout", "LSTM|4|30|10|0|0,DENSE|sixty|TANH", "--input-layout", "10|30")
    assert run.returncode == 2
    assert "Layout token 2 'DENSE|sixty|TANH': field 2 must be a positive integer (number of units); got 'sixty'" in run.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[model]\nlayout = "LINEAR"\ninput_layout = "10|30"\n[training]\nepochz = 3\n')
    run = bptt("train", root, "--config", str(cfg))
    assert run.returncode == 2 and "unknown [training] keys ['epochz']" in run.stderr


def test_trace_prints_the_worked_example_and_plots(tmp_path):
    run = bptt("trace", "--plot", str(tmp_path / "flow.png"))
    assert run.returncode == 0, run.stderr
    for value in ("0.96083", "0.53631", "-0.00165", "-0.01702", "-0.05538", "-0.47802"):  # gates, deltas, dh
        assert value in run.stdout, value
    assert (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"


def test_trace_a_trained_model(tutorial_dir):
    out, _ = tutorial_dir
    run = bptt("trace", "--model", str(out / "model_lstm.bptt"), "--data", str(out / "time_data_t10_d30.root"), "--events", "6")
    assert run.returncode == 0, run.stderr
    assert "LSTM gradient flow: B=6, T=10, H=10" in run.stdout and "|dz_f|" in run.stdout
    bad = bptt("trace", "--model", str(out / "model_lstm.bptt"))
    assert bad.returncode == 2 and bad.stderr.strip() == "bptt trace: error: --model needs --data (the ROOT or npz file to trace on)"
