"""The ``bptt`` command line: ``example``, ``tutorial``, ``train``, ``evaluate``, ``apply``, ``trace``.

User mistakes (a missing file, a wrong tree or branch name, a bad option) end with a one-line
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__


def _tbptt(text: str) -> tuple[int, int]:
    """``--tbptt K1[,K2]`` as ``(k1, k2)``; fit checks ``1 <= k1 <= k2`` against the network."""
    parts = text.split(",")
    if len(parts) > 2 or not all(p.strip().isdigit() and p.strip().isascii() for p in parts):
        raise argparse.ArgumentTypeError(f"expected K1 or K1,K2 (positive integers, steps); got {text!r}")
    k = [int(p) for p in parts]
    return (k[0], k[-1])


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


# ─────────────────────────────────────────────────────────────────────────────── commands


def _cmd_example(args) -> int:
    from . import example

    published = example.load()
    result = example.run(lr=args.lr)
    print(example.format_report(result, published=published, check=not args.no_check))
    return 0


def _cmd_tutorial(args) -> int:
    from .tmva.tutorial import format_table, run_tutorial

    networks = [n.strip().upper() for n in args.networks.split(",") if n.strip()]
    bad = [n for n in networks if n not in ("LSTM", "GRU", "RNN", "DNN", "BDT")]
    if bad or not networks:
        raise UsageError(f"--networks must be a comma-separated subset of LSTM,GRU,RNN,DNN,BDT; got {args.networks!r}")
    summary = run_tutorial(
        args.out, events=args.events, epochs=args.epochs, seed=args.seed, data=args.data,
        networks=networks, verbose=not args.quiet,
    )
    print(format_table(summary))
    print(f"\nwrote {os.path.join(args.out, 'metrics.json')}, roc.png, loss.png and the model files to {args.out}/")
    return 0


def _loader(path: str, args):
    """The DataLoader of DATA and the data options (bptt.data.sources)."""
    from .data.sources import loader_for_file

    return loader_for_file(
        path, trees=args.tree, signal_trees=args.signal_tree, background_trees=args.background_tree,
        class_branch=args.class_branch, signal_cut=args.signal_cut, background_cut=args.background_cut,
        variables=args.variables, variables_arrays=args.variables_array, weight=args.weight, cut=args.cut,
        prefix=args.prefix, sequence=args.sequence, max_length=args.max_length, step_target=args.step_target,
    )


def _check_data_path(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path!r}")


def _read_data(path: str, args) -> tuple:
    """(X, y, lengths) of every event of DATA that passes the cuts (for evaluate and trace); lengths
    None unless the events are ragged sequences (--sequence, or an .npz file with an array lengths)."""
    _check_data_path(path)
    if path.endswith(".npz"):
        from .data.arrays import read_npz

        _sequence_options_npz(args)
        return read_npz(path, with_lengths=True)
    events = _loader(path, args).all_events()
    return events.X, events.y, events.lengths


def _sequence_options_npz(args) -> None:
    """An .npz file holds its own lengths: the ROOT options for ragged sequences do not apply."""
    given = [opt for opt, value in (("--sequence", args.sequence), ("--max-length", args.max_length),
                                    ("--step-target", args.step_target)) if value]
    if given:
        raise UsageError(f"{', '.join(given)}: for ROOT files' jagged branches; an .npz file gives its ragged "
                         f"sequences with an array 'lengths' (and per-step targets as y (n, T))")


def _read_events(path: str, args):
    """The events of DATA split as TMVA's DataLoader splits them (--split, TMVA's
    PrepareTrainingAndTestTree options; default: half of each class for training, SplitSeed=100),
    with their weights and the names of the branches or expressions the inputs come from
    (``Events.variables``). An .npz file: its arrays x and y with unit weights, split the same way
    (:func:`bptt.data.splitting.split_arrays`)."""
    import numpy as np

    from .data.events import Events

    _check_data_path(path)
    if path.endswith(".npz"):
        from .data.arrays import read_npz

        from .data.splitting import parse_split_options, split_arrays

        _sequence_options_npz(args)
        X, y, lengths = read_npz(path, with_lengths=True)
        used, is_train, weights = split_arrays(y, np.ones(len(y)), parse_split_options(getattr(args, "split", None) or ""))
        return Events(X=X[used], y=y[used], weights=weights, is_train=is_train, variables=[],
                      source=os.path.basename(path), lengths=None if lengths is None else lengths[used])
    return _loader(path, args).prepare_training_and_test_tree("", args.split or "")


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    if not os.path.exists(path):
        raise UsageError(f"no such config file: {path!r}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def _training_setup(args, n_events: int):
    """The :class:`bptt.tmva.network.TrainingPlan` of --options, or --layout/--input-layout
    [/--training-strategy], or --config; ``n_events``, the number of training events, turns a
    ValidationSize in events into a fraction. A booking string (--options) means what TMVA means,
    RandomSeed=0 included (a seed drawn for the run, reported); --layout and --config default to
    seed 0, and --config to fit's own defaults (standardize = true) for what its [training] omits."""
    from .tmva.network import plan_from_options

    given = [name for name in ("options", "config", "layout") if getattr(args, name)]
    if len(given) != 1:
        raise UsageError("give exactly one of --options, --config, or --layout with --input-layout")
    if args.options:
        return plan_from_options(args.options, seed=args.seed, n_events=n_events)
    if args.layout:
        if not args.input_layout:
            raise UsageError("--layout needs --input-layout (e.g. --input-layout 10|30)")
        text = f"InputLayout={args.input_layout}:Layout={args.layout}"
        if args.training_strategy:
            text += f":TrainingStrategy={args.training_strategy}"
        return plan_from_options(text, seed=0 if args.seed is None else args.seed, n_events=n_events)
    config = _load_toml(args.config)
    model_cfg, training = config.get("model", {}), dict(config.get("training", {}))
    unknown = set(config) - {"model", "training"}
    if unknown:
        raise UsageError(f"{args.config}: unknown sections {sorted(unknown)}; expected [model] and [training]")
    if "layout" not in model_cfg or "input_layout" not in model_cfg:
        raise UsageError(f"{args.config}: [model] needs layout = \"...\" and input_layout = \"...\"")
    text = f"InputLayout={model_cfg['input_layout']}:Layout={model_cfg['layout']}"
    strategy = training.pop("training_strategy", None)
    if strategy:
        text += f":TrainingStrategy={strategy}"
    seed = training.get("seed", args.seed)
    plan = plan_from_options(text, seed=0 if seed is None else seed, n_events=n_events)
    if "loss" in model_cfg:
        from .losses import make_loss

        plan.model.loss = make_loss(model_cfg["loss"])
    import inspect

    from .train import fit

    allowed = set(inspect.signature(fit).parameters) - {"model", "X", "y", "resume", "checkpoint", "verbose"}
    bad = set(training) - allowed
    if bad:
        raise UsageError(f"{args.config}: unknown [training] keys {sorted(bad)}; allowed: {', '.join(sorted(allowed))}")
    for phase in plan.phases:
        del phase["standardize"]  # fit's default (true) unless [training] says otherwise
        phase.update(training)
    return plan


def _note(command: str, text: str) -> None:
    print(f"bptt {command}: note: {text}", file=sys.stderr)


def _result_files(args) -> dict:
    """Where ``bptt train`` writes its results (checked before training): the ROOT file (--results,
    default MODEL's name with .root), the JSON (MODEL's name with .json) and the plots' directory
    (--plots, default MODEL's directory), with the method's name (--method, default as bptt apply's)."""
    from .apply import score_name_for

    stem = os.path.splitext(os.path.basename(args.out))[0]
    directory = os.path.dirname(args.out)
    files = {"root": args.results or os.path.join(directory, stem + ".root"),
             "json": os.path.join(directory, stem + ".json"), "plots": args.plots or directory,
             "prefix": stem + "_", "method": args.method or score_name_for(args.out)}
    for key, option in (("root", "--results"), ("json", "--out")):
        for other, what in ((args.data, "the input file"), (args.out, "the model file")):
            if os.path.abspath(files[key]) == os.path.abspath(other):
                raise UsageError(f"{option}: the results file {files[key]!r} would replace {what}; give another "
                                 f"{'--results FILE' if key == 'root' else '--out name'}")
    folder = os.path.dirname(os.path.abspath(files["root"]))
    if not os.path.isdir(folder):
        raise UsageError(f"--results: the directory {folder!r} does not exist; create it or give another --results")
    if files["plots"] and os.path.exists(files["plots"]) and not os.path.isdir(files["plots"]):
        raise UsageError(f"--plots: {files['plots']!r} is a file, not a directory; give a directory for the PNG files")
    return files


def _report_training(model, events, history, files: dict, model_path: str) -> None:
    """TMVA's TestAllMethods / EvaluateAllMethods on the kept test events: the tables on stdout, the
    output ROOT file, the plots and the JSON of the figures (:mod:`bptt.results`). Per-step targets
    (``y (n, T)``): the per-step figures instead (:func:`_report_per_step`)."""
    from . import plots, results

    if len(events.y.shape) == 2:
        return _report_per_step(model, events, history, files, model_path)
    evaluation = results.evaluate_events(model, events, files["method"])
    print()
    print(evaluation.table())
    inputs = (events.X[events.is_train], events.X[~events.is_train]) if events.variables else (None, None)
    written = [evaluation.write_root(files["root"], *inputs, events.variables)]
    if files["plots"]:
        os.makedirs(files["plots"], exist_ok=True)
    written += evaluation.plot(files["plots"], prefix=files["prefix"])
    written.append(plots.plot_loss({files["method"]: {"train": history.loss, "val": history.val_loss}},
                                   os.path.join(files["plots"], files["prefix"] + "loss.png")))
    written.append(evaluation.write_json(
        files["json"], source=events.source, model_file=model_path, results_file=files["root"],
        epochs_run=len(history.loss), best_epoch=history.best_epoch,
        inputs=model.inputs, split={"train": events.n_train, "test": events.n_test},
    ))
    print(f"\nwrote {', '.join(written)}")


def _report_per_step(model, events, history, files: dict, model_path: str) -> None:
    """Per-step targets (sequence labelling, per-step regression): TMVA's tables and its output ROOT
    file hold one classifier output per event, which a per-step network does not have; the figures
    over the real steps of the test and training events are printed and saved as JSON instead, with
    the loss plot (:func:`bptt.results.per_step_results`)."""
    from . import plots, results

    _note("train", "per-step targets: TMVA's tables (ROC integral, signal efficiencies, overtraining test) and its "
                   "output ROOT file (one classifier output per event) have no per-step meaning; the figures over the "
                   f"real steps follow instead, and no results ROOT file is written ({files['root']})")
    figures = results.per_step_results(model, events)
    print()
    print(results.format_per_step(files["method"], figures))
    if files["plots"]:
        os.makedirs(files["plots"], exist_ok=True)
    written = [plots.plot_loss({files["method"]: {"train": history.loss, "val": history.val_loss}},
                               os.path.join(files["plots"], files["prefix"] + "loss.png"))]
    record = {"method": files["method"], "per_step": True, "metrics": figures, "source": events.source,
              "model_file": model_path, "epochs_run": len(history.loss), "best_epoch": history.best_epoch,
              "inputs": model.inputs, "split": {"train": events.n_train, "test": events.n_test}}
    from ._files import atomic_write

    written.append(atomic_write(files["json"], lambda f: f.write(json.dumps(record, indent=2) + "\n"), mode="w"))
    print(f"\nwrote {', '.join(written)}")


def _cmd_train(args) -> int:
    import warnings

    from .scale import mpi
    from .tmva._common import TMVAOptionWarning

    if getattr(args, "data_parallel", None) is None and (args.mpi or args.mpi_shards or mpi.launched_by_mpiexec()):
        return mpi.train_command(args, _cmd_train)  # mpiexec -n N bptt train: data-parallel (docs/scaling.md)

    events = _read_events(args.data, args)  # TMVA's training / test split; the test part is for the report
    files = _result_files(args)
    X, y, weights = events.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TMVAOptionWarning)  # printed below, one line per option
        plan = _training_setup(args, len(X))
    for note in plan.notes:
        _note("train", note)
    if plan.seed_drawn:
        _note("train", f"RandomSeed=0: this run's seed is {plan.seed}; give RandomSeed={plan.seed} (or --seed "
                       f"{plan.seed}) to repeat it")
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    if (weights != 1).any():
        overrides["sample_weight"] = weights
    if events.lengths is not None:  # ragged sequences (--sequence, an .npz file's lengths)
        overrides["lengths"] = events.train_lengths()
    if args.tbptt is not None:
        overrides["tbptt"] = args.tbptt
    with warnings.catch_warnings():
        warnings.simplefilter("always", TMVAOptionWarning)
        warnings.showwarning = lambda message, *rest: _note("train", str(message))
        history = plan.fit(X, y, verbose=not args.quiet, checkpoint=args.checkpoint, resume=args.resume, **overrides)
    ranks = getattr(args, "data_parallel", None)  # MPI: rank 0 writes the model and the results
    if ranks is not None and ranks.rank != 0:
        return 0
    model = plan.model
    if events.model_inputs():  # the variables, or a ragged sequence's jagged branches
        model.inputs = events.model_inputs()
    path = model.save(args.out)
    best = f", best epoch {history.best_epoch}" if history.best_epoch else ""
    phases = f" in {len(plan.phases)} phases" if len(plan.phases) > 1 else ""
    share = f" ({ranks.share_text()})" if ranks is not None else ""
    print(f"trained {len(history.loss)} epochs{phases}{best} on {events.n_train} events{share}; final loss "
          f"{history.loss[-1]:.4f}; seed {plan.seed}; model written to {path}")
    _report_training(model, events, history, files, path)
    return 0


def _cmd_evaluate(args) -> int:
    from .model import Sequential

    if not os.path.exists(args.model):
        raise UsageError(f"no such model file: {args.model!r}")
    model = Sequential.load(args.model)
    X, y, lengths = _read_data(args.data, args)
    result = model.evaluate(X, y) if lengths is None else model.evaluate(X, y, lengths=lengths)
    result["events"] = int(len(X))
    if len(y.shape) == 2:  # per-step targets: the figures pool the real steps of all events
        result["steps"] = int(lengths.sum()) if lengths is not None else int(y.size)
    for k, v in result.items():
        print(f"{k:>9}: {v:.4f}" if isinstance(v, float) else f"{k:>9}: {v}")
    if args.json:
        from ._files import atomic_write

        atomic_write(args.json, lambda f: f.write(json.dumps(result, indent=2) + "\n"), mode="w")
    return 0


def _cmd_apply(args) -> int:
    from .apply import DEFAULT_STEP_SIZE, apply_file, score_name_for
    from .model import Sequential
    from .scale.command import apply_many, is_many

    if is_many(args):  # several files or --dask: one file per partition in --out DIR (bptt.scale)
        return apply_many(args)
    args.data = args.data[0]
    if not os.path.isfile(args.model):
        raise UsageError(f"no such model file: {args.model!r}")
    out = args.out or os.path.splitext(os.path.basename(args.data))[0] + "_scored.root"
    s = apply_file(
        Sequential.load(args.model), args.data, args.tree, out, branches=args.branch, out_tree=args.out_tree,
        score_name=args.score_name or score_name_for(args.model), prefix=args.prefix,
        step_size=DEFAULT_STEP_SIZE if args.step_size is None else args.step_size, progress=not args.quiet,
        log=lambda note: print(f"bptt apply: note: {note}", file=sys.stderr),
    )
    print(f"scored {s['events']} events in {s['seconds']:.1f} s ({s['events_per_second']:,.0f} events/s); wrote "
          f"{s['out']} (tree {s['tree']}: {', '.join(s['branches'])})")
    return 0


def _cmd_trace(args) -> int:
    import numpy as np

    from . import trace

    if args.model:
        from .model import Sequential

        if not os.path.exists(args.model):
            raise UsageError(f"no such model file: {args.model!r}")
        if not args.data:
            raise UsageError("--model needs --data (the ROOT or npz file to trace on)")
        if args.events < 1:
            raise UsageError(f"--events must be a positive integer; got {args.events}")
        model = Sequential.load(args.model)
        X, y, lengths = _read_data(args.data, args)
        pick = np.random.default_rng(0).permutation(len(X))[: args.events]
        flow = trace.model_flow(model, X[pick], y[pick], lengths=None if lengths is None else lengths[pick])
        title = f"{os.path.basename(args.model)} on {args.events} events of {os.path.basename(args.data)}"
    else:
        from . import example
        from .functional import lstm_forward

        ex = example.load()
        arrays = {k: np.array(ex[k], float) for k in ("x", "W", "U", "b")}
        h, _ = lstm_forward(**arrays)
        flow = trace.gradient_flow("lstm", arrays, dh=h - np.array(ex["y"], float))
        title = "published LSTM worked example"
    print(f"gradient flow: {title}")
    print(trace.format_table(flow))
    if args.plot:
        from . import plots

        print(f"wrote {plots.plot_gradient_flow(flow, args.plot, title=f'Gradient flow: {title}')}")
    return 0


# ──────────────────────────────────────────────────────────────────────────────── parser


def _data_options(p: argparse.ArgumentParser, split: bool = False) -> None:
    g = p.add_argument_group(
        "data (TMVA's DataLoader)",
        "Trees are TREE or FILE:TREE, with an optional global weight after a comma (sig,0.5). Default: trees "
        "sgn and bkg with the array branches PREFIX0, PREFIX1, … (TMVA's RNN tutorial).",
    )
    g.add_argument("--signal-tree", action="append", metavar="TREE", help="a signal tree (repeatable; default sgn)")
    g.add_argument("--background-tree", action="append", metavar="TREE", help="a background tree (repeatable; default bkg)")
    g.add_argument("--tree", action="append", metavar="TREE",
                   help="a tree holding both classes (repeatable), with --class-branch or --signal-cut/--background-cut")
    g.add_argument("--class-branch", metavar="NAME", help="with --tree: NAME==1 is signal, NAME==0 background")
    g.add_argument("--signal-cut", default="", metavar="EXPR", help="signal events are those passing EXPR")
    g.add_argument("--background-cut", default="", metavar="EXPR", help="background events are those passing EXPR")
    g.add_argument("--variables", default="", metavar="A,B,C",
                   help="input variables: branches or TTreeFormula expressions, comma-separated (AddVariable)")
    g.add_argument("--variables-array", action="append", metavar="NAME:N",
                   help="N values of the array branch NAME (AddVariablesArray; repeatable, one per time step)")
    g.add_argument("--weight", default="", metavar="EXPR", help="event weight expression (SetWeightExpression)")
    g.add_argument("--cut", default="", metavar="EXPR", help="a cut for both classes (TMVA's PrepareTrainingAndTestTree cut)")
    g.add_argument("--prefix", default="vars_time", help="without --variables: the per-time-step branches' prefix (default vars_time)")
    g.add_argument("--sequence", default="", metavar="A,B,C",
                   help="ragged sequences: jagged branches (std::vector<float> or float x[n]) of the same per-event "
                        "length, one feature each per step; the lengths are the counts (instead of --variables)")
    g.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="with --sequence: pad to N steps; longer sequences keep their first N (default: the longest)")
    g.add_argument("--step-target", default="", metavar="BRANCH",
                   help="with --sequence: a jagged branch of the same length, one label or value per step (sequence "
                        "labelling, per-step regression); --tree then needs no class")
    if split:
        g.add_argument("--split", default="", metavar="OPTIONS",
                       help="TMVA's PrepareTrainingAndTestTree options, e.g. 'nTrain_Signal=800:nTrain_Background=800:"
                            "SplitMode=Random:SplitSeed=100:NormMode=NumEvents' (default: half of each class)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt", description="Recurrent networks with backpropagation through time, written out by hand."
    )
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser(
        "example",
        help="forward and backward pass of the published LSTM worked example",
        description="Run the published LSTM worked example (Gomez 2016): gate values per step, the "
        "deltas of every gate in reverse, dW, dU, db and the weights after one SGD step.",
    )
    ex.add_argument("--lr", type=float, default=0.1, help="learning rate of the SGD step (default 0.1)")
    ex.add_argument("--no-check", action="store_true", help="skip the finite-difference check")
    ex.set_defaults(func=_cmd_example)

    tu = sub.add_parser(
        "tutorial",
        help="TMVA's RNN tutorial end to end: ROOT file → LSTM, GRU, RNN → ROC curves",
        description="Generate TMVA_RNN_Classification's toy data as a ROOT file (if absent), train LSTM, GRU "
        "and RNN networks with the tutorial's TMVA options, evaluate on a 20%% test split, and write "
        "metrics.json, the model files, roc.png, loss.png and each network's gradient flow "
        "(gradient_flow_<cell>.png).",
    )
    tu.add_argument("--events", type=int, default=2000, help="events per class to generate (default 2000)")
    tu.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20, the tutorial's MaxEpochs)")
    tu.add_argument("--seed", type=int, default=0, help="seed of data, split, weights and batches (default 0)")
    tu.add_argument("--out", default="tutorial_output", help="output directory (default tutorial_output)")
    tu.add_argument("--data", default=None, help="ROOT file to use or create (default OUT/time_data_t10_d30.root)")
    tu.add_argument("--networks", default="LSTM,GRU,RNN,DNN,BDT",
                    help="which of the macro's methods (default LSTM,GRU,RNN,DNN,BDT; BDT needs scikit-learn)")
    tu.add_argument("--quiet", action="store_true", help="no progress output")
    tu.set_defaults(func=_cmd_tutorial)

    tr = sub.add_parser(
        "train",
        help="train a network on a ROOT or npz file from TMVA option strings or a TOML config",
        description="Train on DATA (.root in TMVA's layout, or .npz with arrays x and y). The network and "
        "training come from TMVA option strings (--options, or --layout/--input-layout/--training-strategy) "
        "or from a TOML file with [model] layout/input_layout and [training] keys of bptt.train.fit. As TMVA, the "
        "events are split into a training and a test part (by default half of each class at random, SplitSeed=100, "
        "for .npz files too); the network trains on the training part and is evaluated on both: TMVA's tables "
        "(ROC integral, signal efficiency at 1/10/30%% background efficiency, Kolmogorov-Smirnov overtraining "
        "test), an output ROOT file with dataset/TrainTree and dataset/TestTree (classID, className, weight, "
        "the inputs, the classifier output), a JSON of the figures and plots (classifier output training vs "
        "test, background rejection vs signal efficiency, loss).",
    )
    tr.add_argument("data", help="input file: .root or .npz")
    tr.add_argument("--options", help="a whole TMVA MethodDL booking string")
    tr.add_argument("--layout", help="TMVA Layout, e.g. LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR")
    tr.add_argument("--input-layout", help="TMVA InputLayout, e.g. 10|30")
    tr.add_argument("--training-strategy", help="TMVA TrainingStrategy, e.g. LearningRate=1e-3,BatchSize=100,MaxEpochs=20")
    tr.add_argument("--config", help="TOML config file")
    tr.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    tr.add_argument("--seed", type=int, default=None,
                    help="random seed of weights, split and batches (default: the booking string's RandomSeed; "
                         "RandomSeed=0, TMVA's default, draws one and prints it; --layout and --config: 0)")
    tr.add_argument("--out", default="model.bptt", help="model file to write (default model.bptt)")
    tr.add_argument("--checkpoint", default=None, help="checkpoint file written every epoch")
    tr.add_argument("--resume", default=None, help="continue from this checkpoint")
    tr.add_argument("--mpi", action="store_true",
                    help="data-parallel training over MPI ranks (mpiexec -n N bptt train ...; found without --mpi from "
                         "mpiexec's environment; needs pip install 'bptt[mpi]'; docs/scaling.md)")
    tr.add_argument("--mpi-shards", type=int, default=None, metavar="S",
                    help="MPI: cut every batch into S parts added in a fixed order (N ranks must divide S): the same "
                         "weights bit for bit on any such N, one process included (default: one part per rank, MPI's sum)")
    tr.add_argument("--results", default=None,
                    help="TMVA-style output ROOT file with dataset/TrainTree and dataset/TestTree (default: --out's name with .root)")
    tr.add_argument("--plots", default=None, help="directory of the PNG plots (default: --out's directory)")
    tr.add_argument("--method", default=None,
                    help="the method's name: the classifier output's branch and the tables' row (default: --out's file name)")
    tr.add_argument("--tbptt", type=_tbptt, default=None, metavar="K1[,K2]",
                    help="truncated BPTT: an update every K1 steps, backpropagated K2 steps (default K2 = K1; "
                         "default: full BPTT); for per-step targets or networks whose time axis ends in the "
                         "last recurrent layer")
    tr.add_argument("--quiet", action="store_true", help="no progress output")
    _data_options(tr, split=True)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "evaluate",
        help="evaluate a model file on a ROOT or npz file",
        description="Print the loss, test ROC AUC and accuracy of MODEL on DATA. Ragged sequences (an .npz file with "
        "lengths, or --sequence) are read up to each one's last real step; with per-step targets every figure pools "
        "the real steps of all events (each step one prediction) and the number of real steps is printed too.",
    )
    ev.add_argument("model", help="model file written by bptt train or bptt tutorial")
    ev.add_argument("data", help="input file: .root or .npz")
    ev.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    _data_options(ev)
    ev.set_defaults(func=_cmd_evaluate)

    ap = sub.add_parser(
        "apply",
        help="score a ROOT file with a model: a new ROOT file with the score of every event (TMVA's Reader)",
        description="Score every entry of a tree of DATA with MODEL, reading the model's input branches (as the "
        "model file names them) in chunks, and write a new ROOT file with a tree of the same entries: the "
        "--branch branches copied from DATA and the score (signal probability of a bce model). Without --branch "
        "the output holds only the score, a friend tree of the input (TTree::AddFriend).",
    )
    ap.add_argument("model", help="model file written by bptt train or bptt tutorial")
    ap.add_argument("data", nargs="+", help="ROOT file to score (several: see --dask)")
    ap.add_argument("--tree", default=None, help="tree to score (default: the file's only tree)")
    ap.add_argument("--out", default=None, help="ROOT file to write (default: DATA's name + _scored.root, here)")
    ap.add_argument("--branch", action="append", default=[], metavar="NAME",
                    help="copy this branch of DATA to the output (repeatable; glob patterns such as 'jet_*')")
    ap.add_argument("--score-name", default=None, help="the score branch's name (default: the model file's name)")
    ap.add_argument("--out-tree", default=None, help="the output tree's name (default: the input tree's)")
    ap.add_argument("--prefix", default=None,
                    help="for a model file that does not name its inputs: per-time-step branch prefix (default vars_time)")
    ap.add_argument("--step-size", type=int, default=None, help="entries per chunk (default 10000)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    from .scale.command import add_options as _scale_options

    _scale_options(ap)
    ap.set_defaults(func=_cmd_apply)

    tc = sub.add_parser(
        "trace",
        help="gradient flow through time: every gate value and delta per step, norms, a plot",
        description="Trace backpropagation through time: per step, the gate values and the deltas of every "
        "gate (dz), the cell-state and hidden-state gradients, as a table (norms for more than 4 units) and "
        "optionally a PNG (heat map of |dz| over time and units, and the gradient norm per step). Without "
        "--model: the published LSTM worked example.",
    )
    tc.add_argument("--model", default=None, help="a model file (bptt train / bptt tutorial) to trace")
    tc.add_argument("--data", default=None, help="ROOT or npz file with events to trace the model on")
    tc.add_argument("--events", type=int, default=8, help="number of events (random, seed 0; default 8)")
    tc.add_argument("--plot", default=None, help="also write the gradient-flow plot to this PNG file")
    _data_options(tc)
    tc.set_defaults(func=_cmd_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UsageError, ValueError, FloatingPointError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"bptt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bptt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
