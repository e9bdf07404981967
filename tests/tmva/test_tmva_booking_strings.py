"""Every kDL booking string of ROOT's TMVA tutorials (tests/tmva/tutorial_booking_strings.json,
written by tools/tmva_booking_strings.py from the tutorials the `root` package ships) parses; those
whose layers bptt has build and train for one epoch on a few events of their shape; those with
layers bptt lacks are refused with an error that names the layer. docs/tmva-booking-strings.md is
the table of the outcome."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from bptt.model import Sequential
from bptt.tmva import TMVAOptionError, TMVAOptionWarning, parse_options
from bptt.tmva.layers import build_layers
from bptt.tmva.network import fit_arguments

ENTRIES = json.loads((Path(__file__).parent / "tutorial_booking_strings.json").read_text())
#: What each tutorial trains, from its DataLoader (number of classes, targets): TMVAMulticlass has
#: four classes, TMVARegression one target; the others classify signal against background.
TASKS = {"machine_learning/TMVAMulticlass.C": ("softmax_ce", 4), "machine_learning/TMVARegression.C": ("mse", 1)}
UNSUPPORTED = ("BNORM", "CONV", "MAXPOOL")
#: The two tutorial strategies with a ',' missing ("MaxEpochs=20" "DropConfig=…"): TMVA's atoi
#: reads the number and drops the rest; bptt does the same and warns.
GLUED = re.compile(r"MaxEpochs=\d+[A-Za-z]")


def ident(entry):
    how = "gpu" if "the GPU branch" in entry["how"] else "cpu"
    return f"{Path(entry['file']).name}:{entry['line']}:{entry['title']}:{how}"


def test_the_list_covers_every_tutorial_that_books_kdl():
    files = {e["file"] for e in ENTRIES}
    assert files == {f"machine_learning/{name}" for name in (
        "TMVAClassification.C", "TMVAMulticlass.C", "TMVARegression.C", "TMVA_CNN_Classification.C",
        "TMVA_CNN_Classification.py", "TMVA_Higgs_Classification.C", "TMVA_Higgs_Classification.py",
        "TMVA_RNN_Classification.C", "TMVA_RNN_Classification.py")}
    assert all("options" in e and "error" not in e for e in ENTRIES)
    assert len(ENTRIES) == 34  # 17 call sites (the RNN loops unrolled), each as without and with a GPU


def test_the_strings_are_the_tutorials_own():
    """Spot checks against the macros' text, assembled by hand."""
    by = {ident(e): e["options"] for e in ENTRIES}
    assert by["TMVA_RNN_Classification.C:347:TMVA_LSTM:cpu"] == (
        "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:ValidationSize=0.2:"
        "RandomSeed=1234:InputLayout=10|30:Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:"
        "TrainingStrategy=LearningRate=1e-3,Momentum=0.0,Repetitions=1,ConvergenceSteps=5,BatchSize=100,"
        "TestRepetitions=1,WeightDecay=1e-2,Regularization=None,MaxEpochs=20,Optimizer=ADAM,DropConfig=0.0+0.+0.+0.:"
        "Architecture=CPU")
    assert by["TMVA_RNN_Classification.C:384:TMVA_DNN:cpu"].endswith(
        "Layout=DENSE|64|TANH,DENSE|TANH|64,DENSE|TANH|64,LINEAR:TrainingStrategy=LearningRate=1e-3,Momentum=0.0,"
        "Repetitions=1,ConvergenceSteps=10,BatchSize=256,TestRepetitions=1,WeightDecay=1e-4,Regularization=None,"
        "MaxEpochs=20DropConfig=0.0+0.+0.+0.,Optimizer=ADAM:CPU")
    assert "ADAM_beta1=0.9,ADAM_beta2=0.999,ADAM_eps=1.E-7" in by["TMVA_Higgs_Classification.C:287:DNN_CPU:cpu"]


@pytest.mark.parametrize("entry", ENTRIES, ids=ident)
def test_every_tutorial_booking_parses_or_names_the_missing_layer(entry):
    loss, n_outputs = TASKS.get(entry["file"], ("bce", 1))
    text, n = entry["options"], entry["n_variables"]
    missing = [name for name in UNSUPPORTED if re.search(rf"(?<![A-Z]){name}(?![A-Z])", text.split("Layout=")[-1])]
    if missing:
        with pytest.raises(TMVAOptionError, match=rf"layer type '({'|'.join(missing)})' is a TMVA layer that bptt "
                                                   rf"does not support"):
            parse_options(text, n_inputs=n, n_outputs=n_outputs)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opts = parse_options(text, n_inputs=n, n_outputs=n_outputs)
    said = [str(w.message) for w in caught if issubclass(w.category, TMVAOptionWarning)]
    assert len(said) == (1 if GLUED.search(text) else 0), said
    T, F = opts.get("input_layout", (1, n))
    assert T * F == n
    strategy = opts["training_strategy"][0]
    layers = build_layers(opts["layout"], (T, F), seed=1, dtype=np.float64, dropout=strategy.drop_config)
    model = Sequential(layers, loss=loss)
    rng = np.random.default_rng(0)
    dense_only = T == 1 and all(spec.kind == "dense" for spec in opts["layout"])
    X = rng.normal(size=(40, F) if dense_only else (40, T, F))  # TMVA's 1|1|N input is a flat event
    y = {"bce": lambda: np.arange(40) % 2, "softmax_ce": lambda: np.arange(40) % 4,
         "mse": lambda: rng.normal(size=40)}[loss]().astype(np.float64)
    args = fit_arguments(strategy, opts.get("validation_size", 0.2), n_events=40)
    args.update(epochs=1, verbose=False, standardize=False)  # VarTransform is not this test's subject
    history = model.fit(X, y, **args)
    assert len(history.loss) == 1 and np.isfinite(history.loss[0])
    out = model.decision_function(X[:5])
    assert np.isfinite(out).all() and len(out) == 5
