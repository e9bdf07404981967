"""TMVA's ``TMVA_RNN_Classification`` tutorial, end to end: :func:`run_tutorial` is the job behind
``bptt tutorial`` (and ``make run``): toy data as a ROOT file → LSTM, GRU and RNN networks built
from the tutorial's own booking string (:func:`bptt.tmva.network.network_from_options`) → ROC
curves, model files and a summary.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np


from .._files import atomic_write
from ._common import TMVAOptionWarning
from .network import network_from_options

#: The recurrent networks' booking string of TMVA_RNN_Classification.C, as the macro assembles it
#: (tests/tmva/tutorial_booking_strings.json), with ``{cell}`` for RNN/LSTM/GRU and ``{epochs}`` for
#: its MaxEpochs (20).
TUTORIAL_OPTIONS = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:"
    "ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:"
    "Layout={cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:"
    "TrainingStrategy=LearningRate=1e-3,Momentum=0.0,Repetitions=1,ConvergenceSteps=5,BatchSize=100,"
    "TestRepetitions=1,WeightDecay=1e-2,Regularization=None,MaxEpochs={epochs},Optimizer=ADAM,"
    "DropConfig=0.0+0.+0.+0.:Architecture=CPU"
)
#: The macro's dense network (TMVA_DNN), verbatim: the DENSE fields in both orders, the missing ','
#: after MaxEpochs (TMVA, and bptt with a note, read MaxEpochs and drop the DropConfig glued to it)
#: and the bare ``CPU`` the macro appends.
DNN_OPTIONS = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIER:RandomSeed=0:"
    "InputLayout=1|1|300:Layout=DENSE|64|TANH,DENSE|TANH|64,DENSE|TANH|64,LINEAR:"
    "TrainingStrategy=LearningRate=1e-3,Momentum=0.0,Repetitions=1,ConvergenceSteps=10,BatchSize=256,"
    "TestRepetitions=1,WeightDecay=1e-4,Regularization=None,MaxEpochs={epochs}DropConfig=0.0+0.+0.+0.,"
    "Optimizer=ADAM:CPU"
)
#: The macro's BDTG booking (``BookMethod(dataloader, kBDT, "BDTG", …)``), trained with scikit-learn's
#: GradientBoostingClassifier: NTrees → n_estimators, Shrinkage → learning_rate, MaxDepth →
#: max_depth, BaggedSampleFraction (with UseBaggedBoost) → subsample, MinNodeSize (a share of the
#: training events) → min_samples_leaf; TMVA's nCuts=20 grid has no scikit-learn equivalent
#: (scikit-learn tries every cut).
BDT_OPTIONS = ("!H:!V:NTrees=100:MinNodeSize=2.5%:BoostType=Grad:Shrinkage=0.10:UseBaggedBoost:"
               "BaggedSampleFraction=0.5:nCuts=20:MaxDepth=2")
#: The methods ``bptt tutorial`` books by default: the macro's three recurrent networks, its dense
#: network and its BDTG (which it books whatever its flags say).
METHODS = ("LSTM", "GRU", "RNN", "DNN", "BDT")
#: TMVA's method titles in the macro.
TITLES = {"LSTM": "TMVA_LSTM", "GRU": "TMVA_GRU", "RNN": "TMVA_RNN", "DNN": "TMVA_DNN", "BDT": "BDTG"}


def _write_json(path: str, data: dict) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2) + "\n"), mode="w")


def _bdt(seed: int):
    """The macro's BDTG as scikit-learn's gradient-boosted trees, or None without scikit-learn."""
    try:
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError:
        return None
    return GradientBoostingClassifier(n_estimators=100, learning_rate=0.10, max_depth=2, subsample=0.5,
                                      min_samples_leaf=0.025, random_state=seed)


def _read_tutorial_events(data: str, events_per_class: int):
    """The macro's DataLoader: ten AddVariablesArray("vars_time{i}", 30), the trees sgn and bkg, and
    PrepareTrainingAndTestTree with nTrain = 0.8 × the events per class, SplitMode=Random, SplitSeed=100."""
    from ..data.loader import DataLoader

    loader = DataLoader("dataset")
    for i in range(10):
        loader.add_variables_array(f"vars_time{i}", 30)
    loader.add_signal_tree((data, "sgn"), 1.0)
    loader.add_background_tree((data, "bkg"), 1.0)
    n_train = int(0.8 * events_per_class)
    return loader.prepare_training_and_test_tree(
        "", f"nTrain_Signal={n_train}:nTrain_Background={n_train}:SplitMode=Random:SplitSeed=100:"
            f"NormMode=NumEvents:!V:!CalcCorrelations")


def _class_counts(data: str) -> int:
    import uproot

    with uproot.open(data) as f:
        n = {name: int(f[name].num_entries) for name in ("sgn", "bkg")}
    return min(n.values())


def run_tutorial(
    out: str = "tutorial_output",
    *,
    events: int = 2000,
    epochs: int = 20,
    seed: int = 0,
    data: str | None = None,
    networks=METHODS,
    verbose: bool = True,
) -> dict:
    """The tutorial job, as TMVA_RNN_Classification.C runs it; returns the metrics it writes to
    ``out/metrics.json``.

    1. the toy data as a ROOT file (``data``, default ``out/time_data_t10_d30.root``), generated
       with ``events`` per class if absent (a file written by ROOT's own ``MakeTimeData`` works too);
    2. read with the macro's DataLoader: 80 % of each class for training (``nTrain_Signal`` =
       ``nTrain_Background`` = 0.8 × the events per class, SplitMode=Random, SplitSeed=100), the rest
       for testing;
    3. the macro's methods (``networks``, default all): TMVA_LSTM, TMVA_GRU and TMVA_RNN from its
       recurrent booking string, TMVA_DNN from its dense one (on the 300 inputs flattened), each
       with MaxEpochs replaced by ``epochs`` and RandomSeed by ``seed``, and BDTG
       (scikit-learn's gradient-boosted trees with the macro's settings, skipped with a note when
       scikit-learn is not installed);
    4. TMVA's evaluation of each (:mod:`bptt.results`): ROC integral, signal efficiency at 1/10/30 %
       background efficiency, Kolmogorov-Smirnov overtraining test, the test ROC AUC and accuracy,
       training time; model files, ``roc.png`` (background rejection against signal efficiency),
       ``loss.png``, per method ``<title>_overtraining.png``, and for each recurrent network the
       gradient flow of the test loss through time (``gradient_flow_<cell>.png``; its norm per step
       in ``metrics.json``).
    """
    from .. import metrics, plots, trace
    from ..data.toy import write_tutorial_root
    from ..results import classifier_output, classifier_results

    networks = [n.upper() for n in networks]
    os.makedirs(out, exist_ok=True)
    data = data or os.path.join(out, "time_data_t10_d30.root")
    say = (lambda *a: print(*a, file=sys.stderr)) if verbose else (lambda *a: None)
    if not os.path.exists(data):
        say(f"generating the tutorial data ({events} signal + {events} background events) → {data}")
        write_tutorial_root(data, n_events=events, seed=seed)
    ev = _read_tutorial_events(data, _class_counts(data))
    X_train, y_train, _ = ev.train()
    X_test, y_test, _ = ev.test()
    say(f"data: {data}: {len(ev.y)} events of {X_train.shape[1]} steps × {X_train.shape[2]} features; "
        f"{len(X_train)} for training, {len(X_test)} for testing (TMVA's split: nTrain = 80 % per class, SplitSeed=100)")

    results, curves, histories, tables = {}, {}, {}, []
    noted = False
    for name in networks:
        title = TITLES[name]
        flat = name in ("DNN", "BDT")
        Xtr = X_train.reshape(len(X_train), -1) if flat else X_train
        Xte = X_test.reshape(len(X_test), -1) if flat else X_test
        t0 = time.perf_counter()
        if name == "BDT":
            bdt = _bdt(seed)
            if bdt is None:
                say("\nBDTG: skipped (scikit-learn is not installed: pip install 'bptt[sklearn]')")
                continue
            say(f"\nBDTG: scikit-learn GradientBoostingClassifier with the macro's {BDT_OPTIONS}")
            bdt.fit(Xtr, y_train)
            seconds = time.perf_counter() - t0
            s_train, s_test = bdt.predict_proba(Xtr)[:, 1], bdt.predict_proba(Xte)[:, 1]
            entry = {"model_file": None, "epochs_run": None, "best_epoch": None}
        else:
            text = (DNN_OPTIONS if name == "DNN" else TUTORIAL_OPTIONS).format(cell=name, epochs=epochs)
            with warnings.catch_warnings(record=True) as notes:  # the options bptt only notes, said once
                warnings.simplefilter("always", TMVAOptionWarning)
                model, args = network_from_options(text, seed=seed)
            for note in notes if not noted or name == "DNN" else ():
                say(f"note: {note.message}")
            noted = True
            say(f"\n{title}: {' → '.join(type(layer).__name__ for layer in model.layers)}")
            history = model.fit(Xtr, y_train, verbose=verbose, **args)
            seconds = time.perf_counter() - t0
            s_train, s_test = classifier_output(model, Xtr), classifier_output(model, Xte)
            histories[title] = {"train": history.loss, "val": history.val_loss}
            model.inputs = [{"name": n_, "size": int(k)} for n_, k in ev.variables]
            model_path = model.save(os.path.join(out, f"model_{name.lower()}.bptt"))
            entry = {"model_file": os.path.basename(model_path), "epochs_run": len(history.loss),
                     "best_epoch": history.best_epoch}
        res = classifier_results(title, train=(s_train, y_train, np.ones(len(y_train))),
                                 test=(s_test, y_test, np.ones(len(y_test))))
        res.plot(out, prefix=f"{title}_")
        tables.append(res.table())
        auc = metrics.roc_auc(y_test, s_test)
        fpr, tpr, _ = metrics.roc_curve(y_test, s_test)
        curves[title] = (tpr, 1.0 - fpr, auc)  # TMVA's ROC: background rejection against signal efficiency
        entry.update({
            "roc_auc": float(auc),
            "accuracy": float(metrics.accuracy(y_test, s_test)),
            "training_seconds": round(seconds, 3),
            "roc_integral": res.metrics["roc_integral"],
            "signal_efficiency": res.metrics["signal_efficiency"],
            "overtraining": {c: res.metrics["overtraining"][c]["probability"] for c in ("signal", "background")},
        })
        if not flat:
            # The report's view of BPTT: how the gradient of the test loss flows back through time.
            flow = trace.model_flow(model, X_test[:100], y_test[:100])
            plots.plot_gradient_flow(flow, os.path.join(out, f"gradient_flow_{name.lower()}.png"),
                                     title=f"{title}: gradient flow on 100 test events")
            entry["gradient_norm_per_step"] = [float(v) for v in flow.dh_norms]
        results[name] = entry
    plots.plot_rejection(curves, os.path.join(out, "roc.png"), title="TMVA RNN tutorial: test ROC curves")
    if histories:
        plots.plot_loss(histories, os.path.join(out, "loss.png"))
    summary = {
        "data": os.path.abspath(data),
        "events": int(len(ev.y)),
        "train_events": int(len(X_train)),
        "test_events": int(len(X_test)),
        "seed": seed,
        "networks": results,
    }
    _write_json(os.path.join(out, "metrics.json"), summary)
    _write_text(os.path.join(out, "evaluation.txt"), "\n\n".join(tables) + "\n")
    return summary


def _write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


def format_table(summary: dict) -> str:
    """One row per method: test ROC AUC, accuracy, signal efficiency at 10 % background efficiency,
    the overtraining test's smaller probability, training time and epochs."""
    rows = [f"{'method':<10} {'test ROC AUC':>12} {'accuracy':>9} {'eff_S@B=0.10':>13} {'KS prob':>8} "
            f"{'training s':>11} {'epochs':>7}"]
    for name, r in summary["networks"].items():
        epochs = f"{r['epochs_run']:>4} (best {r['best_epoch']})" if r.get("epochs_run") else "   -"
        eff = r["signal_efficiency"]["0.10"]["test"] if "signal_efficiency" in r else float("nan")
        ks = min(r["overtraining"].values()) if "overtraining" in r else float("nan")
        rows.append(
            f"{TITLES.get(name, name):<10} {r['roc_auc']:>12.4f} {r['accuracy']:>9.4f} {eff:>13.3f} {ks:>8.3f} "
            f"{r['training_seconds']:>11.2f} {epochs}"
        )
    return "\n".join(rows)
