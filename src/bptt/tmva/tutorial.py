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


from .._files import atomic_write
from ._common import TMVAOptionWarning
from .network import network_from_options

#: The tutorial's booking string (TMVA_RNN_Classification.C), with ``{cell}`` for RNN/LSTM/GRU.
TUTORIAL_OPTIONS = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:"
    "ValidationSize=0.2:RandomSeed=1234:InputLayout=10|1|30:BatchLayout=100|10|30:"
    "Layout={cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:"
    "TrainingStrategy=LearningRate=1e-3,Momentum=0.0,Repetitions=1,ConvergenceSteps=5,BatchSize=100,"
    "TestRepetitions=1,WeightDecay=1e-2,Regularization=None,MaxEpochs=20,Optimizer=ADAM,"
    "DropConfig=0.0+0.+0.+0.:Architecture=CPU"
)


def _write_json(path: str, data: dict) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2) + "\n"), mode="w")


def run_tutorial(
    out: str = "tutorial_output",
    *,
    events: int = 2000,
    epochs: int = 20,
    seed: int = 0,
    data: str | None = None,
    networks=("LSTM", "GRU", "RNN"),
    verbose: bool = True,
) -> dict:
    """The tutorial job; returns the metrics it writes to ``out/metrics.json``.

    1. the toy data as a ROOT file (``data``, default ``out/time_data_t10_d30.root``), generated
       with ``events`` per class if absent; 2. read back, 80 % / 20 % split (stratified, ``seed``);
    3. each network trained with the tutorial's TMVA options (MaxEpochs replaced by ``epochs``);
    4. test ROC AUC, training time; model files, ``roc.png``, ``loss.png`` and, per network, the
       gradient flow of the test loss through time (``gradient_flow_<cell>.png``, and its norm per
       step in ``metrics.json``).
    """
    from .. import metrics, plots, trace
    from ..data.arrays import train_test_split
    from ..data.root import read_tmva_root
    from ..data.toy import write_tutorial_root

    os.makedirs(out, exist_ok=True)
    data = data or os.path.join(out, "time_data_t10_d30.root")
    say = (lambda *a: print(*a, file=sys.stderr)) if verbose else (lambda *a: None)
    if not os.path.exists(data):
        say(f"generating the tutorial data ({events} signal + {events} background events) → {data}")
        write_tutorial_root(data, n_events=events, seed=seed)
    X, y = read_tmva_root(data)
    X_train, X_test, y_train, y_test = train_test_split(X, y, 0.2, seed=seed)
    say(f"data: {data}: {len(X)} events of {X.shape[1]} steps × {X.shape[2]} features; "
        f"{len(X_train)} for training, {len(X_test)} for testing")

    results, curves, histories = {}, {}, {}
    for cell in networks:
        cell = cell.upper()
        with warnings.catch_warnings(record=True) as notes:  # the options bptt only notes, said once
            warnings.simplefilter("always", TMVAOptionWarning)
            model, args = network_from_options(TUTORIAL_OPTIONS.format(cell=cell), seed=seed)
        if cell == networks[0].upper():
            for note in notes:
                say(f"note: {note.message}")
        args["epochs"] = epochs
        say(f"\n{cell}: {' → '.join(type(layer).__name__ for layer in model.layers)}")
        t0 = time.perf_counter()
        history = model.fit(X_train, y_train, verbose=verbose, **args)
        seconds = time.perf_counter() - t0
        scores = model.predict_proba(X_test)
        auc = metrics.roc_auc(y_test, scores)
        fpr, tpr, _ = metrics.roc_curve(y_test, scores)
        curves[cell] = (tpr, 1.0 - fpr, auc)  # TMVA's ROC: background rejection against signal efficiency
        histories[cell] = {"train": history.loss, "val": history.val_loss}
        model_path = model.save(os.path.join(out, f"model_{cell.lower()}.bptt"))
        # The report's view of BPTT: how the gradient of the test loss flows back through time.
        flow = trace.model_flow(model, X_test[:100], y_test[:100])
        plots.plot_gradient_flow(flow, os.path.join(out, f"gradient_flow_{cell.lower()}.png"),
                                 title=f"{cell}: gradient flow on 100 test events")
        results[cell] = {
            "roc_auc": float(auc),
            "accuracy": float(metrics.accuracy(y_test, scores)),
            "training_seconds": round(seconds, 3),
            "epochs_run": len(history.loss),
            "best_epoch": history.best_epoch,
            "model_file": os.path.basename(model_path),
            "gradient_norm_per_step": [float(v) for v in flow.dh_norms],
        }
    plots.plot_rejection(curves, os.path.join(out, "roc.png"), title="TMVA RNN tutorial: test ROC curves")
    plots.plot_loss(histories, os.path.join(out, "loss.png"))
    summary = {
        "data": os.path.abspath(data),
        "events": int(len(X)),
        "train_events": int(len(X_train)),
        "test_events": int(len(X_test)),
        "seed": seed,
        "networks": results,
    }
    _write_json(os.path.join(out, "metrics.json"), summary)
    return summary


def format_table(summary: dict) -> str:
    rows = [f"{'network':<8} {'test ROC AUC':>12} {'accuracy':>9} {'training s':>11} {'epochs':>7}"]
    for name, r in summary["networks"].items():
        rows.append(
            f"{name:<8} {r['roc_auc']:>12.4f} {r['accuracy']:>9.4f} {r['training_seconds']:>11.2f} "
            f"{r['epochs_run']:>4} (best {r['best_epoch']})"
        )
    return "\n".join(rows)
