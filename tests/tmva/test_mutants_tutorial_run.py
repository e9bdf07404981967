"""bptt.tmva.tutorial.run_tutorial, in process, at a few hundred events (docs/mutation.md: "no tests").

``run_tutorial`` is the job behind ``bptt tutorial``: TMVA_RNN_Classification.C in bptt (its
DataLoader and split, its methods TMVA_LSTM, TMVA_GRU, TMVA_RNN, TMVA_DNN and BDTG, TMVA's
evaluation of each). The command line's tests run it in a subprocess and
tests/train/test_training_glue.py at full size, neither of which mutation testing can use. Here it
runs three times, each once per module (the whole file takes seconds):

* ``run_a``: 260 + 260 generated events, two epochs, seed 3, the five methods named in mixed
  case, verbose: the data file; TMVA's split (nTrain_Signal = nTrain_Background = int(0.8 × 260) =
  208, the other 52 of each class for testing, SplitMode=Random with SplitSeed=100: the events
  checked by identity against the file); metrics.json (and the returned summary); the model files
  and the inputs they name; the AUC and accuracy of those files rescored with scikit-learn on the
  test events; every network trained exactly as its TMVA booking string says (the same weights
  from a fit written out here from TMVA's meanings); the BDTG's scores those of scikit-learn's
  GradientBoostingClassifier with the macro's settings; TMVA's evaluation (evaluation.txt and the
  figures in metrics.json); the gradient-flow norms; the plots asked for and the progress text;
* ``run_b``: the same seed on run_a's data file (``data=``), one network, quiet: nothing printed,
  no new data, the same network as run_a's (reproducible);
* ``run_defaults``: no argument at all, in a fresh working directory, the data generator replaced
  by one that records its arguments and writes 20 + 20 events (2000 + 2000 would take too long):
  the documented defaults (``tutorial_output``, 2000 events per class, 20 epochs, seed 0, the
  methods LSTM, GRU, RNN, DNN and BDT, verbose).

Each run is checked by one test, which calls the ``check_*`` functions below in turn: mutmut
credits a call of ``run_tutorial`` to the test during which it ran, so a module-scoped run shared
by several tests would be credited to the first of them only, and mutmut would run only that one
against each mutant.

The plotting functions are replaced by recorders of what they are asked to draw (the drawing is
tests/core/test_plots.py's; the command line's tests check the PNG files): drawing the figures
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
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score, roc_curve

from bptt.data.loader import DataLoader
from bptt.data.root import read_tmva_root
from bptt.data.toy import make_tutorial_data
from bptt.model import Sequential
from bptt.results import classifier_results
from bptt.trace import model_flow
from bptt.tmva.tutorial import BDT_OPTIONS, run_tutorial

EVENTS, EPOCHS, SEED = 260, 2, 3
N_TRAIN = 208  # int(0.8 × 260) per class (nTrain_Signal = nTrain_Background); 52 per class for testing
CELLS = ["LSTM", "GRU", "RNN"]
METHODS = ["LSTM", "GRU", "RNN", "DNN", "BDT"]
TITLES = {"LSTM": "TMVA_LSTM", "GRU": "TMVA_GRU", "RNN": "TMVA_RNN", "DNN": "TMVA_DNN", "BDT": "BDTG"}
DATA_NAME = "time_data_t10_d30.root"
SUMMARY_KEYS = ["data", "events", "train_events", "test_events", "seed", "networks"]
FIGURE_KEYS = ["roc_auc", "accuracy", "training_seconds", "roc_integral", "signal_efficiency", "overtraining"]
NETWORK_KEYS = ["model_file", "epochs_run", "best_epoch", *FIGURE_KEYS]
RECURRENT_KEYS = [*NETWORK_KEYS, "gradient_norm_per_step"]
INPUTS = [{"name": f"vars_time{i}", "size": 30} for i in range(10)]  # the macro's ten AddVariablesArray
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-7}  # TMVA's Adam (MethodDL: ADAM_beta1/2, ADAM_eps defaults)


def tutorial_fit(name, X, y, epochs, seed):
    """The macro's networks and training, from its booking strings read by hand.

    Recurrent (TMVA_LSTM/GRU/RNN): InputLayout=10|30 (10 steps of 30 features),
    Layout={cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR, WeightInitialization=XAVIERUNIFORM,
    DropConfig=0.0+0.+0.+0.; TrainingStrategy LearningRate=1e-3, Momentum=0.0, ConvergenceSteps=5,
    BatchSize=100, WeightDecay=1e-2 with Regularization=None (no penalty), Optimizer=ADAM (TMVA's
    beta1 0.9, beta2 0.999, eps 1e-7). TMVA_DNN: InputLayout=1|1|300 (the 300 inputs flattened),
    DENSE|64|TANH three times (its DENSE|TANH|64 is the same layer), LINEAR, WeightInitialization=XAVIER,
    BatchSize=256, ConvergenceSteps=10, WeightDecay=1e-4 with Regularization=None, Optimizer=ADAM,
    its DropConfig lost to the missing ','. Both: CROSSENTROPY, ValidationSize=0.2,
    VarTransform=None (the inputs as they are: no standardisation); MaxEpochs replaced by
    ``epochs``, RandomSeed by ``seed``."""
    if name == "DNN":
        model = Sequential.from_tmva("DENSE|64|TANH,DENSE|64|TANH,DENSE|64|TANH,LINEAR", "1|1|300", loss="bce",
                                     seed=seed, weight_initialization="XAVIER")
        X, batch, patience = X.reshape(len(X), 300), 256, 10
    else:
        model = Sequential.from_tmva(f"{name}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", "10|30",
                                     loss="bce", seed=seed, dropout=[0.0, 0.0, 0.0, 0.0],
                                     weight_initialization="XAVIERUNIFORM")
        batch, patience = 100, 5
    history = model.fit(X, y, epochs=epochs, batch_size=batch, optimizer="adam", learning_rate=1e-3, momentum=0.0,
                        optimizer_options=dict(ADAM), early_stopping=patience, weight_decay=0.0, regularization=None,
                        validation_split=0.2, seed=seed, standardize=False, verbose=False)
    return model, history


def tutorial_bdt(seed):
    """The macro's BDTG (NTrees=100, Shrinkage=0.10, MaxDepth=2, UseBaggedBoost with
    BaggedSampleFraction=0.5, MinNodeSize=2.5 %) as scikit-learn's gradient-boosted trees."""
    return GradientBoostingClassifier(n_estimators=100, learning_rate=0.1, max_depth=2, subsample=0.5,
                                      min_samples_leaf=0.025, random_state=seed)


def macro_events(path, per_class):
    """The macro's DataLoader, written out here: ten AddVariablesArray("vars_time{i}", 30), trees sgn
    and bkg, nTrain_Signal = nTrain_Background = int(0.8 × events per class), SplitMode=Random,
    SplitSeed=100, NormMode=NumEvents."""
    loader = DataLoader("dataset")
    for i in range(10):
        loader.AddVariablesArray(f"vars_time{i}", 30)
    loader.AddSignalTree((str(path), "sgn"), 1.0)
    loader.AddBackgroundTree((str(path), "bkg"), 1.0)
    n = int(0.8 * per_class)
    return loader.PrepareTrainingAndTestTree(
        "", f"nTrain_Signal={n}:nTrain_Background={n}:SplitMode=Random:SplitSeed=100:NormMode=NumEvents:!V")


def scores(name, out, r, X):
    """The classifier output of a saved network (its sigmoid, CROSSENTROPY's output), float64."""
    X = X.reshape(len(X), 300) if name == "DNN" else X
    return np.asarray(Sequential.load(str(out / r["model_file"])).predict_proba(X), np.float64).reshape(len(X))


class Recorder:
    """Stands in for a plotting function: keeps the arguments of each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return kwargs.get("path", args[-1])


PLOTS = ("plot_rejection", "plot_loss", "plot_gradient_flow", "plot_overtraining")


@contextlib.contextmanager
def recorded_run():
    """Plots recorded, stdout and stderr captured."""
    plots = {name: Recorder() for name in PLOTS}
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
                                      networks=("LSTM", "gru", "Rnn", "dnn", "Bdt"), verbose=True)
        run["elapsed"] = time.perf_counter() - t0
    run["out"] = out
    return run


@pytest.fixture(scope="module")
def split(run_a):
    """The training and test events, read again with the macro's DataLoader (the documented API)."""
    ev = macro_events(run_a["out"] / DATA_NAME, EVENTS)
    X_train, y_train, _ = ev.train()
    X_test, y_test, _ = ev.test()
    return X_train, X_test, y_train, y_test


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


def file_rows(X, X_file):
    """The row of the file each event is (the toy events are all different)."""
    index = {row.tobytes(): i for i, row in enumerate(X_file.reshape(len(X_file), -1))}
    assert len(index) == len(X_file)
    return np.array([index[row.tobytes()] for row in X.reshape(len(X), -1)])


def check_the_split_is_tmvas(run_a, split):
    """TMVA's split, by identity through the file: 208 events of each class for training, the other
    52 for testing, each event once; drawn at random (not the first or the last of each class),
    with SplitSeed=100 (another seed draws other events)."""
    X_train, X_test, y_train, y_test = split
    X_file, y_file = read_tmva_root(run_a["summary"]["data"])
    train, test = file_rows(X_train, X_file), file_rows(X_test, X_file)
    np.testing.assert_array_equal(y_file[train], y_train)
    np.testing.assert_array_equal(y_file[test], y_test)
    assert (np.sum(y_train == 1), np.sum(y_train == 0)) == (N_TRAIN, N_TRAIN)
    assert (np.sum(y_test == 1), np.sum(y_test == 0)) == (EVENTS - N_TRAIN, EVENTS - N_TRAIN)
    assert sorted(np.r_[train, test]) == list(range(2 * EVENTS))  # every event once
    for cls in (1, 0):
        rows = set(test[y_test == cls] - (0 if cls == 1 else EVENTS))
        assert rows != set(range(EVENTS - N_TRAIN)) and rows != set(range(N_TRAIN, EVENTS)), "a block, not Random"
    other = DataLoader("dataset")
    for i in range(10):
        other.AddVariablesArray(f"vars_time{i}", 30)
    other.AddSignalTree((run_a["summary"]["data"], "sgn"), 1.0)
    other.AddBackgroundTree((run_a["summary"]["data"], "bkg"), 1.0)
    X_other = other.PrepareTrainingAndTestTree(
        "", f"nTrain_Signal={N_TRAIN}:nTrain_Background={N_TRAIN}:SplitMode=Random:SplitSeed=101:!V").test()[0]
    assert set(file_rows(X_other, X_file)) != set(test)


def check_the_summary_is_metrics_json(run_a):
    summary = run_a["summary"]
    written = json.loads((run_a["out"] / "metrics.json").read_text())
    assert written == summary
    assert list(summary) == SUMMARY_KEYS
    assert (summary["events"], summary["train_events"], summary["test_events"], summary["seed"]) == (520, 416, 104, SEED)
    assert list(summary["networks"]) == METHODS
    for name, r in summary["networks"].items():
        assert list(r) == (RECURRENT_KEYS if name in CELLS else NETWORK_KEYS), name
        if name == "BDT":
            assert (r["model_file"], r["epochs_run"], r["best_epoch"]) == (None, None, None)
        else:
            assert r["model_file"] == f"model_{name.lower()}.bptt"
            assert Sequential.load(str(run_a["out"] / r["model_file"])).inputs == INPUTS, name
    assert sorted(os.listdir(run_a["out"])) == [
        "evaluation.txt", "metrics.json", "model_dnn.bptt", "model_gru.bptt", "model_lstm.bptt", "model_rnn.bptt",
        DATA_NAME,
    ]  # the figures: recorded, not drawn


def bdt_scores(split):
    X_train, X_test, y_train, _ = split
    bdt = tutorial_bdt(SEED).fit(X_train.reshape(len(X_train), -1), y_train)
    return bdt.predict_proba(X_train.reshape(len(X_train), -1))[:, 1], bdt.predict_proba(X_test.reshape(len(X_test), -1))[:, 1]


def all_scores(run_a, split):
    """{method: (training scores, test scores)}: the saved networks rescored, the BDTG refitted here."""
    X_train, X_test, _, _ = split
    out = {n: (scores(n, run_a["out"], r, X_train), scores(n, run_a["out"], r, X_test))
           for n, r in run_a["summary"]["networks"].items() if n != "BDT"}
    out["BDT"] = bdt_scores(split)
    return out


def check_the_auc_and_accuracy_are_those_of_the_methods_on_the_test_events(run_a, split, outputs):
    _, X_test, _, y_test = split
    assert len(X_test) == 104
    for name, r in run_a["summary"]["networks"].items():
        p = outputs[name][1]
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y_test, p), abs=1e-12), name
        assert r["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y_test == 1)), abs=1e-12), name


def check_tmvas_evaluation_of_each_method(run_a, split, outputs):
    """evaluation.txt holds TMVA's tables of each method in order, and metrics.json its figures: those
    of bptt.results on the training and test outputs with unit weights (training on the training
    events, test on the test events: swapped, the overtraining test and the train efficiencies differ)."""
    _, _, y_train, y_test = split
    tables = []
    for name, r in run_a["summary"]["networks"].items():
        s_train, s_test = outputs[name]
        res = classifier_results(TITLES[name], train=(s_train, y_train, np.ones(len(y_train))),
                                 test=(s_test, y_test, np.ones(len(y_test))))
        tables.append(res.table())
        assert r["roc_integral"] == res.metrics["roc_integral"], name
        assert r["signal_efficiency"] == res.metrics["signal_efficiency"], name
        assert r["overtraining"] == {c: res.metrics["overtraining"][c]["probability"] for c in ("signal", "background")}
    assert (run_a["out"] / "evaluation.txt").read_text() == "\n\n".join(tables) + "\n"
    assert "TMVA_LSTM" in tables[0] and "BDTG" in tables[4]


def check_each_network_is_trained_as_the_tmva_options_say(run_a, split):
    """The same weights and losses as the macro's booking strings written out by hand, trained on
    the training events: cell, layout, initialisation, Adam's settings, batch size, patience, seed,
    MaxEpochs replaced by ``epochs``; the DNN on the 300 inputs flattened."""
    X_train, _, y_train, _ = split
    losses = run_a["plots"]["plot_loss"].calls[0][0][0]
    layers = {name: [name, "Flatten", "Dense", "Dense"] for name in CELLS} | {"DNN": ["Dense"] * 4}
    for name, r in run_a["summary"]["networks"].items():
        if name == "BDT":
            continue
        model, history = tutorial_fit(name, X_train, y_train, EPOCHS, SEED)
        saved = Sequential.load(str(run_a["out"] / r["model_file"]))
        assert [type(layer).__name__ for layer in saved.layers] == layers[name], name
        assert saved.standardizer is None, name  # VarTransform=None
        assert list(saved.parameters()) == list(model.parameters()), name
        for key, value in model.parameters().items():
            np.testing.assert_allclose(saved.parameters()[key], value, rtol=1e-5, atol=1e-7, err_msg=f"{name} {key}")
        assert (r["epochs_run"], r["best_epoch"]) == (EPOCHS, history.best_epoch), name
        assert r["best_epoch"] == 1 + int(np.argmin(history.val_loss))
        title = TITLES[name]
        np.testing.assert_allclose(losses[title]["train"], history.loss, rtol=1e-6)
        np.testing.assert_allclose(losses[title]["val"], history.val_loss, rtol=1e-6)
        assert list(losses[title]) == ["train", "val"]


def check_the_bdt_is_the_macros(run_a, split, outputs):
    """BDTG's figures are those of scikit-learn's GradientBoostingClassifier with the macro's
    settings; other settings give other scores (the test is sensitive to them)."""
    X_train, X_test, y_train, y_test = split
    r = run_a["summary"]["networks"]["BDT"]
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y_test, outputs["BDT"][1]), abs=1e-12)
    flat = X_train.reshape(len(X_train), -1)
    for change in ({"max_depth": 3}, {"subsample": 1.0}, {"n_estimators": 50}, {"min_samples_leaf": 1}):
        other = tutorial_bdt(SEED).set_params(**change).fit(flat, y_train)
        p = other.predict_proba(X_test.reshape(len(X_test), -1))[:, 1]
        assert not np.array_equal(p, outputs["BDT"][1]), change


def check_training_seconds_are_rounded_to_milliseconds(run_a):
    for name, r in run_a["summary"]["networks"].items():
        assert 0 < r["training_seconds"] < run_a["elapsed"], name
        assert r["training_seconds"] == round(r["training_seconds"], 3), name


def check_gradient_norms_are_those_of_the_first_100_test_events(run_a, split):
    _, X_test, _, y_test = split
    flow_calls = run_a["plots"]["plot_gradient_flow"].calls
    assert len(flow_calls) == 3  # the recurrent networks only
    for (args, kwargs), name in zip(flow_calls, CELLS):
        r = run_a["summary"]["networks"][name]
        model = Sequential.load(str(run_a["out"] / r["model_file"]))
        expected = model_flow(model, X_test[:100], y_test[:100]).dh_norms
        assert len(r["gradient_norm_per_step"]) == 10
        np.testing.assert_allclose(r["gradient_norm_per_step"], expected, rtol=1e-5)
        flow, path = args
        np.testing.assert_allclose(flow.dh_norms, expected, rtol=1e-5)
        assert path == str(run_a["out"] / f"gradient_flow_{name.lower()}.png")
        assert kwargs == {"title": f"TMVA_{name}: gradient flow on 100 test events"}


def check_the_plots(run_a, split, outputs):
    """Per method, TMVA's overtraining plot and ROC (bptt.results's, in the output directory with
    the method's title as prefix); then roc.png with every method (background rejection against
    signal efficiency, scikit-learn's curve) and loss.png with the networks' losses."""
    _, _, y_train, y_test = split
    out = run_a["out"]
    titles = [TITLES[n] for n in METHODS]
    over = run_a["plots"]["plot_overtraining"].calls
    assert [c[0][2] for c in over] == [str(out / f"{t}_overtraining.png") for t in titles]
    for (args, kwargs), name in zip(over, METHODS):
        test, train = args[0], args[1]
        s_train, s_test = outputs[name]
        assert list(test) == list(train) == ["signal", "background"]
        np.testing.assert_allclose(np.sort(test["signal"][0]), np.sort(s_test[y_test == 1]), rtol=1e-12)
        np.testing.assert_allclose(np.sort(train["background"][0]), np.sort(s_train[y_train == 0]), rtol=1e-12)
        assert kwargs["title"] == f"{TITLES[name]}: classifier output, training vs test"
    rejection = run_a["plots"]["plot_rejection"].calls
    assert [c[0][1] for c in rejection] == [str(out / f"{t}_roc.png") for t in titles] + [str(out / "roc.png")]
    assert [list(c[0][0]) for c in rejection[:-1]] == [[t] for t in titles]
    curves, _ = rejection[-1][0]
    assert rejection[-1][1] == {"title": "TMVA RNN tutorial: test ROC curves"}
    assert list(curves) == titles
    for name, title in zip(METHODS, titles):  # TMVA's convention: 1 - eff_B against eff_S
        eff_s, reject, auc = curves[title]
        fpr_sk, tpr_sk, _ = roc_curve(y_test, outputs[name][1], drop_intermediate=False)
        np.testing.assert_allclose(eff_s, tpr_sk)
        np.testing.assert_allclose(reject, 1 - fpr_sk)
        assert auc == pytest.approx(run_a["summary"]["networks"][name]["roc_auc"], abs=1e-12)
    ((args, kwargs),) = run_a["plots"]["plot_loss"].calls
    assert args[1] == str(out / "loss.png") and kwargs == {}
    assert list(args[0]) == titles[:4]  # the BDTG has no loss curve


def check_the_progress_text(run_a):
    err, data = run_a["stderr"], run_a["summary"]["data"]
    assert run_a["stdout"] == ""
    assert err.startswith(
        f"generating the tutorial data (260 signal + 260 background events) → {data}\n"
        f"data: {data}: 520 events of 10 steps × 30 features; 416 for training, 104 for testing "
        f"(TMVA's split: nTrain = 80 % per class, SplitSeed=100)\n"
        f"note: !H: bptt's output is set by verbose= / --quiet; V: bptt's output is set by verbose= / --quiet\n"
        f"\nTMVA_LSTM: LSTM → Flatten → Dense → Dense\n"
    )
    for name in CELLS:
        assert f"\n\nTMVA_{name}: {name} → Flatten → Dense → Dense\n" in err
    assert "\n\nTMVA_DNN: Dense → Dense → Dense → Dense\n" in err
    assert f"\n\nBDTG: scikit-learn GradientBoostingClassifier with the macro's {BDT_OPTIONS}\n" in err
    assert BDT_OPTIONS == ("!H:!V:NTrees=100:MinNodeSize=2.5%:BoostType=Grad:Shrinkage=0.10:UseBaggedBoost:"
                           "BaggedSampleFraction=0.5:nCuts=20:MaxDepth=2")  # the macro's, verbatim
    assert err.count("note: ") == 2  # said once for the recurrent networks, once for the DNN
    # fit's own progress: one line per epoch and network
    assert err.count("epoch 1/2  loss ") == 4 and err.count("epoch 2/2  loss ") == 4


# ──────────────────────────────────────────────────────────────── run_b: data=, networks=, quiet


def check_quiet_prints_nothing(run_b):
    assert run_b["stderr"] == "" and run_b["stdout"] == ""


def check_an_existing_data_file_is_reused(run_a, run_b):
    summary = run_b["summary"]
    assert run_b["data_unchanged"]
    assert summary["data"] == run_a["summary"]["data"]
    assert (summary["events"], summary["train_events"], summary["test_events"]) == (520, 416, 104)
    assert sorted(os.listdir(run_b["out"])) == ["evaluation.txt", "metrics.json", "model_gru.bptt"]
    assert json.loads((run_b["out"] / "metrics.json").read_text()) == summary


def check_the_same_seed_gives_the_same_network(run_a, run_b):
    assert list(run_b["summary"]["networks"]) == ["GRU"]
    a, b = run_a["summary"]["networks"]["GRU"], run_b["summary"]["networks"]["GRU"]
    for key in RECURRENT_KEYS:
        if key != "training_seconds":
            assert b[key] == a[key], key
    first = Sequential.load(str(run_a["out"] / "model_gru.bptt")).parameters()
    for key, value in Sequential.load(str(run_b["out"] / "model_gru.bptt")).parameters().items():
        np.testing.assert_array_equal(value, first[key])
    args, _ = run_b["plots"]["plot_rejection"].calls[-1]
    assert list(args[0]) == ["TMVA_GRU"] and args[1] == str(run_b["out"] / "roc.png")


# ──────────────────────────────────────────────────────────────────────────── run_defaults


def check_the_defaults(run_defaults):
    out = run_defaults["cwd"] / "tutorial_output"
    relative = os.path.join("tutorial_output", DATA_NAME)
    assert run_defaults["generated"] == [(relative, 2000, 0)]
    summary = run_defaults["summary"]
    assert summary["data"] == str(out / DATA_NAME)
    # 20 events per class in the (small) file: int(0.8 × 20) = 16 of each for training
    assert (summary["events"], summary["train_events"], summary["test_events"], summary["seed"]) == (40, 32, 8, 0)
    assert json.loads((out / "metrics.json").read_text()) == summary
    assert list(summary["networks"]) == METHODS
    assert run_defaults["stderr"].startswith(
        f"generating the tutorial data (2000 signal + 2000 background events) → {relative}\n"
    )


def check_the_default_trains_for_tmvas_20_epochs(run_defaults):
    """fit's progress lines count to MaxEpochs=20 (early stopping may end a network sooner)."""
    err = run_defaults["stderr"]
    assert err.count("epoch 1/20  loss ") == 4
    runs = sum(r["epochs_run"] for r in run_defaults["summary"]["networks"].values() if r["epochs_run"])
    assert sum(err.count(f"epoch {k}/20  loss ") for k in range(1, 21)) == runs


# ──────────────────────────────────────────────────────────────────────────────── the tests


def test_run_a(run_a, split):
    outputs = all_scores(run_a, split)
    check_the_data_file_holds_the_generated_events(run_a)
    check_the_split_is_tmvas(run_a, split)
    check_the_summary_is_metrics_json(run_a)
    check_the_auc_and_accuracy_are_those_of_the_methods_on_the_test_events(run_a, split, outputs)
    check_tmvas_evaluation_of_each_method(run_a, split, outputs)
    check_each_network_is_trained_as_the_tmva_options_say(run_a, split)
    check_the_bdt_is_the_macros(run_a, split, outputs)
    check_training_seconds_are_rounded_to_milliseconds(run_a)
    check_gradient_norms_are_those_of_the_first_100_test_events(run_a, split)
    check_the_plots(run_a, split, outputs)
    check_the_progress_text(run_a)


def test_run_b(run_a, run_b):
    check_quiet_prints_nothing(run_b)
    check_an_existing_data_file_is_reused(run_a, run_b)
    check_the_same_seed_gives_the_same_network(run_a, run_b)


def test_run_defaults(run_defaults):
    check_the_defaults(run_defaults)
    check_the_default_trains_for_tmvas_20_epochs(run_defaults)
