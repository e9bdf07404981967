"""bptt.tmva.tutorial.run_tutorial, in process, at a few hundred events (docs/mutation.md: "no tests").

``run_tutorial`` is the job behind ``bptt tutorial``; the command line's tests run it in a
subprocess and tests/train/test_training_glue.py at full size, neither of which mutation testing can
use. Here it runs three times, each once per module (the whole file takes seconds):

* ``run_a``: 260 + 260 generated events, two epochs, seed 3, the three networks named in mixed
  case, verbose: the data file, the split, metrics.json (and the returned summary), the model
  files, the AUC and accuracy of those files rescored on the reproduced split with scikit-learn,
  the networks trained exactly as the tutorial's TMVA options say (the same weights from a fit
  written out here from TMVA's options), the gradient-flow norms, the plots asked for and the
  progress text;
* ``run_b``: the same seed on run_a's data file (``data=``), one network, quiet: nothing printed,
  no new data, the same network as run_a's (reproducible);
* ``run_defaults``: no argument at all, in a fresh working directory, the data generator replaced
  by one that records its arguments and writes 20 + 20 events (2000 + 2000 would take too long):
  the documented defaults (``tutorial_output``, 2000 events per class, 20 epochs, seed 0, LSTM,
  GRU and RNN, verbose).

Each run is checked by one test, which calls the ``check_*`` functions below in turn: mutmut
credits a call of ``run_tutorial`` to the test during which it ran, so a module-scoped run shared
by several tests would be credited to the first of them only, and mutmut would run only that one
against each mutant.

The plotting functions are replaced by recorders of what they are asked to draw (the drawing is
tests/core/test_plots.py's; the command line's tests check the PNG files): drawing the five figures
would take most of the run's time, and mutmut runs this file once per mutant.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from bptt.data.arrays import train_test_split
from bptt.data.root import read_tmva_root
from bptt.data.toy import make_tutorial_data
from bptt.model import Sequential
from bptt.trace import model_flow
from bptt.tmva.tutorial import run_tutorial

EVENTS, EPOCHS, SEED = 260, 2, 3  # 2 × round(0.2 × 260) = 104 test events: more than the 100 traced
CELLS = ["LSTM", "GRU", "RNN"]
DATA_NAME = "time_data_t10_d30.root"
SUMMARY_KEYS = ["data", "events", "train_events", "test_events", "seed", "networks"]
NETWORK_KEYS = ["roc_auc", "accuracy", "training_seconds", "epochs_run", "best_epoch", "model_file",
                "gradient_norm_per_step"]


def tutorial_fit(cell, X, y, epochs, seed):
    """The tutorial's network and training, from TMVA_RNN_Classification's options read by hand:
    Layout={cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR on InputLayout=10|1|30,
    CROSSENTROPY, DropConfig=0.0+0.+0.+0.; LearningRate=1e-3, Momentum=0.0, ConvergenceSteps=5,
    BatchSize=100, WeightDecay with Regularization=None (no penalty), Optimizer=ADAM,
    ValidationSize=0.2, WeightInitialization=XAVIERUNIFORM, VarTransform=None (the inputs as they
    are: no standardisation); MaxEpochs replaced by ``epochs``; ``seed`` for RandomSeed."""
    model = Sequential.from_tmva(f"{cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", "10|1|30",
                                 loss="bce", seed=seed, dropout=[0.0, 0.0, 0.0, 0.0],
                                 weight_initialization="XAVIERUNIFORM")
    history = model.fit(X, y, epochs=epochs, batch_size=100, optimizer="adam", learning_rate=1e-3, momentum=0.0,
                        early_stopping=5, weight_decay=0.0, regularization=None, validation_split=0.2, seed=seed,
                        standardize=False, verbose=False)
    return model, history


class Recorder:
    """Stands in for a plotting function: keeps the arguments of each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return args[1]


@contextlib.contextmanager
def recorded_run():
    """Plots recorded, stdout and stderr captured."""
    plots = {name: Recorder() for name in ("plot_rejection", "plot_loss", "plot_gradient_flow")}
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name, recorder in plots.items():
            mp.setattr(f"bptt.plots.{name}", recorder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run = {"plots": plots, "stdout": out, "stderr": err}
            yield run
    run["stdout"], run["stderr"] = out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    out = tmp_path_factory.mktemp("a") / "nested" / "out"  # makedirs makes the parents
    with recorded_run() as run:
        t0 = time.perf_counter()
        run["summary"] = run_tutorial(str(out), events=EVENTS, epochs=EPOCHS, seed=SEED,
                                      networks=("LSTM", "gru", "Rnn"), verbose=True)
        run["elapsed"] = time.perf_counter() - t0
    run["out"] = out
    return run


@pytest.fixture(scope="module")
def split(run_a):
    X, y = read_tmva_root(str(run_a["out"] / DATA_NAME))
    return train_test_split(X, y, 0.2, seed=SEED)


@pytest.fixture(scope="module")
def run_b(run_a, tmp_path_factory):
    out = tmp_path_factory.mktemp("b")  # exists already
    data = run_a["out"] / DATA_NAME
    before = data.read_bytes()
    with recorded_run() as run:
        run["summary"] = run_tutorial(str(out), events=7, epochs=EPOCHS, seed=SEED, data=str(data),
                                      networks=("gru",), verbose=False)
    run["out"], run["data_unchanged"] = out, data.read_bytes() == before
    return run


@pytest.fixture(scope="module")
def run_defaults(tmp_path_factory):
    import bptt.data.toy as toy

    cwd = tmp_path_factory.mktemp("defaults")
    generated = []
    write = toy.write_tutorial_root

    def small(path, n_events, seed):
        generated.append((path, n_events, seed))
        return write(path, n_events=20, seed=seed)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(toy, "write_tutorial_root", small)
        with recorded_run() as run:
            run["summary"] = run_tutorial()
    run["cwd"], run["generated"] = cwd, generated
    return run


# ───────────────────────────────────────────────────────────────────────────── run_a: data


def check_the_data_file_holds_the_generated_events(run_a):
    out, summary = run_a["out"], run_a["summary"]
    assert summary["data"] == str(out / DATA_NAME)
    signal, background = make_tutorial_data(EVENTS, seed=SEED)
    X, y = read_tmva_root(summary["data"])
    np.testing.assert_array_equal(X, np.concatenate([signal, background]))
    np.testing.assert_array_equal(y, np.r_[np.ones(EVENTS), np.zeros(EVENTS)])


def check_the_summary_is_metrics_json(run_a):
    summary = run_a["summary"]
    written = json.loads((run_a["out"] / "metrics.json").read_text())
    assert written == summary
    assert list(summary) == SUMMARY_KEYS
    # 20 % of each class (52 of 260) for testing
    assert (summary["events"], summary["train_events"], summary["test_events"], summary["seed"]) == (520, 416, 104, SEED)
    assert list(summary["networks"]) == CELLS
    for name, r in summary["networks"].items():
        assert list(r) == NETWORK_KEYS, name
        assert r["model_file"] == f"model_{name.lower()}.bptt"
        assert (run_a["out"] / r["model_file"]).is_file()


def check_the_auc_and_accuracy_are_those_of_the_model_files_on_the_test_split(run_a, split):
    _, X_test, _, y_test = split
    assert len(X_test) == 104
    for name, r in run_a["summary"]["networks"].items():
        p = Sequential.load(str(run_a["out"] / r["model_file"])).predict_proba(X_test)
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y_test, p), abs=1e-12), name
        assert r["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y_test == 1)), abs=1e-12), name


def check_each_network_is_trained_as_the_tmva_options_say(run_a, split):
    """The same weights and losses as the tutorial's options written out by hand, trained on the
    training part of the split: cell, layout, seed, MaxEpochs replaced by ``epochs``."""
    X_train, _, y_train, _ = split
    losses = run_a["plots"]["plot_loss"].calls[0][0][0]
    for name, r in run_a["summary"]["networks"].items():
        model, history = tutorial_fit(name, X_train, y_train, EPOCHS, SEED)
        saved = Sequential.load(str(run_a["out"] / r["model_file"]))
        assert [type(layer).__name__ for layer in saved.layers] == [name, "Flatten", "Dense", "Dense"]
        for key, value in model.parameters().items():
            np.testing.assert_allclose(saved.parameters()[key], value, rtol=1e-5, atol=1e-7, err_msg=f"{name} {key}")
        assert (r["epochs_run"], r["best_epoch"]) == (EPOCHS, history.best_epoch), name
        assert r["best_epoch"] == 1 + int(np.argmin(history.val_loss))
        np.testing.assert_allclose(losses[name]["train"], history.loss, rtol=1e-6)
        np.testing.assert_allclose(losses[name]["val"], history.val_loss, rtol=1e-6)
        assert list(losses[name]) == ["train", "val"]


def check_training_seconds_are_rounded_to_milliseconds(run_a):
    for name, r in run_a["summary"]["networks"].items():
        assert 0 < r["training_seconds"] < run_a["elapsed"], name
        assert r["training_seconds"] == round(r["training_seconds"], 3), name


def check_gradient_norms_are_those_of_the_first_100_test_events(run_a, split):
    _, X_test, _, y_test = split
    (flow_calls,) = [run_a["plots"]["plot_gradient_flow"].calls]
    assert len(flow_calls) == 3
    for (args, kwargs), (name, r) in zip(flow_calls, run_a["summary"]["networks"].items()):
        model = Sequential.load(str(run_a["out"] / r["model_file"]))
        expected = model_flow(model, X_test[:100], y_test[:100]).dh_norms
        assert len(r["gradient_norm_per_step"]) == 10
        np.testing.assert_allclose(r["gradient_norm_per_step"], expected, rtol=1e-5)
        flow, path = args
        np.testing.assert_allclose(flow.dh_norms, expected, rtol=1e-5)
        assert path == str(run_a["out"] / f"gradient_flow_{name.lower()}.png")
        assert kwargs == {"title": f"{name}: gradient flow on 100 test events"}


def check_the_roc_and_loss_plots(run_a, split):
    _, X_test, _, y_test = split
    ((args, kwargs),) = run_a["plots"]["plot_rejection"].calls
    curves, path = args
    assert path == str(run_a["out"] / "roc.png")
    assert kwargs == {"title": "TMVA RNN tutorial: test ROC curves"}
    assert list(curves) == CELLS
    for name, (eff_s, rejection, auc) in curves.items():  # TMVA's convention: 1 - eff_B against eff_S
        r = run_a["summary"]["networks"][name]
        p = Sequential.load(str(run_a["out"] / r["model_file"])).predict_proba(X_test)
        fpr_sk, tpr_sk, _ = roc_curve(y_test, p, drop_intermediate=False)
        np.testing.assert_allclose(eff_s, tpr_sk)
        np.testing.assert_allclose(rejection, 1 - fpr_sk)
        assert auc == pytest.approx(r["roc_auc"], abs=1e-12)
    ((args, kwargs),) = run_a["plots"]["plot_loss"].calls
    assert args[1] == str(run_a["out"] / "loss.png") and kwargs == {}
    assert list(args[0]) == CELLS


def check_the_progress_text(run_a):
    err, data = run_a["stderr"], run_a["summary"]["data"]
    assert run_a["stdout"] == ""
    assert err.startswith(
        f"generating the tutorial data (260 signal + 260 background events) → {data}\n"
        f"data: {data}: 520 events of 10 steps × 30 features; 416 for training, 104 for testing\n"
        f"\nLSTM: LSTM → Flatten → Dense → Dense\n"
    )
    for name in CELLS:
        assert f"\n\n{name}: {name} → Flatten → Dense → Dense\n" in err
    # fit's own progress: one line per epoch and network
    assert err.count("epoch 1/2  loss ") == 3 and err.count("epoch 2/2  loss ") == 3


# ──────────────────────────────────────────────────────────────── run_b: data=, networks=, quiet


def check_quiet_prints_nothing(run_b):
    assert run_b["stderr"] == "" and run_b["stdout"] == ""


def check_an_existing_data_file_is_reused(run_a, run_b):
    summary = run_b["summary"]
    assert run_b["data_unchanged"]
    assert summary["data"] == run_a["summary"]["data"]
    assert (summary["events"], summary["train_events"], summary["test_events"]) == (520, 416, 104)
    assert sorted(os.listdir(run_b["out"])) == ["metrics.json", "model_gru.bptt"]
    assert json.loads((run_b["out"] / "metrics.json").read_text()) == summary


def check_the_same_seed_gives_the_same_network(run_a, run_b):
    assert list(run_b["summary"]["networks"]) == ["GRU"]
    a, b = run_a["summary"]["networks"]["GRU"], run_b["summary"]["networks"]["GRU"]
    for key in NETWORK_KEYS:
        if key != "training_seconds":
            assert b[key] == a[key], key
    first = Sequential.load(str(run_a["out"] / "model_gru.bptt")).parameters()
    for key, value in Sequential.load(str(run_b["out"] / "model_gru.bptt")).parameters().items():
        np.testing.assert_array_equal(value, first[key])
    ((args, _),) = run_b["plots"]["plot_rejection"].calls
    assert list(args[0]) == ["GRU"] and args[1] == str(run_b["out"] / "roc.png")


# ──────────────────────────────────────────────────────────────────────────── run_defaults


def check_the_defaults(run_defaults):
    out = run_defaults["cwd"] / "tutorial_output"
    relative = os.path.join("tutorial_output", DATA_NAME)
    assert run_defaults["generated"] == [(relative, 2000, 0)]
    summary = run_defaults["summary"]
    assert summary["data"] == str(out / DATA_NAME)
    assert (summary["events"], summary["seed"]) == (40, 0)
    assert json.loads((out / "metrics.json").read_text()) == summary
    assert list(summary["networks"]) == CELLS
    assert run_defaults["stderr"].startswith(
        f"generating the tutorial data (2000 signal + 2000 background events) → {relative}\n"
    )


def check_the_default_trains_for_tmvas_20_epochs(run_defaults):
    """fit's progress lines count to MaxEpochs=20 (early stopping may end a network sooner)."""
    err = run_defaults["stderr"]
    assert err.count("epoch 1/20  loss ") == 3
    runs = sum(r["epochs_run"] for r in run_defaults["summary"]["networks"].values())
    assert sum(err.count(f"epoch {k}/20  loss ") for k in range(1, 21)) == runs


# ──────────────────────────────────────────────────────────────────────────────── the tests


def test_run_a(run_a, split):
    check_the_data_file_holds_the_generated_events(run_a)
    check_the_summary_is_metrics_json(run_a)
    check_the_auc_and_accuracy_are_those_of_the_model_files_on_the_test_split(run_a, split)
    check_each_network_is_trained_as_the_tmva_options_say(run_a, split)
    check_training_seconds_are_rounded_to_milliseconds(run_a)
    check_gradient_norms_are_those_of_the_first_100_test_events(run_a, split)
    check_the_roc_and_loss_plots(run_a, split)
    check_the_progress_text(run_a)


def test_run_b(run_a, run_b):
    check_quiet_prints_nothing(run_b)
    check_an_existing_data_file_is_reused(run_a, run_b)
    check_the_same_seed_gives_the_same_network(run_a, run_b)


def test_run_defaults(run_defaults):
    check_the_defaults(run_defaults)
    check_the_default_trains_for_tmvas_20_epochs(run_defaults)
