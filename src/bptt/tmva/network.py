"""From a TMVA ``MethodDL`` booking string to a network and the arguments of :func:`bptt.train.fit`:
one path from the parsed options (:func:`bptt.tmva.parse_options`), parsed once.

:func:`plan_from_options` gives the :class:`TrainingPlan` of a booking string: the layers
(:func:`bptt.tmva.layers.build_layers`) from the parsed ``Layout`` and ``InputLayout`` with
TMVA's ``WeightInitialization``, the loss from ``ErrorStrategy``, the input transformation of
``VarTransform`` (:mod:`bptt.transforms`), the seed of ``RandomSeed``, and one set of fit
arguments per ``TrainingStrategy`` phase (:func:`fit_arguments`); :meth:`TrainingPlan.fit`
trains the phases one after the other (:func:`train_phases`). :func:`network_from_options` is
its model and first phase, for ``model.fit``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..model import Sequential
from ..train import History
from ..transforms import VarTransform
from ._common import TMVAOptionError, TMVAOptionWarning
from .layers import build_layers
from .options import TrainingStrategy, parse_options

__all__ = [
    "network_from_options", "plan_from_options", "TrainingPlan", "PhasedHistory", "train_phases",
    "phase_checkpoint", "fit_arguments", "validation_split",
]

_LOSSES = {"CROSSENTROPY": "bce", "SUMOFSQUARES": "mse", "MUTUALEXCLUSIVE": "softmax_ce"}


def validation_split(validation_size, n_events: int | None = None) -> float:
    """TMVA's ``ValidationSize`` (as :func:`bptt.parse_options` gives it) as fit's ``validation_split``.

    A fraction (a float: ``ValidationSize=0.2`` or ``20%``) is the split itself. A number of events
    (an int: ``ValidationSize=500``) is that many of the ``n_events`` events given to fit, the
    fraction ``validation_size / n_events`` (fit splits each class in that proportion, rounded, so
    the validation part holds that many events, give or take one when both classes' shares fall
    exactly on a half); as in TMVA it must be fewer than the events.

    >>> validation_split(0.25), validation_split(500, n_events=2000)
    (0.25, 0.25)
    """
    if isinstance(validation_size, float):
        return validation_size
    if isinstance(validation_size, bool) or not isinstance(validation_size, int):
        raise TMVAOptionError(
            f"ValidationSize must be a fraction (float) or a number of events (int); got {validation_size!r}"
        )
    if n_events is None:
        raise TMVAOptionError(
            f"ValidationSize={validation_size} is a number of events: give the number of training events "
            f"(n_events) to turn it into a fraction"
        )
    if validation_size >= n_events:
        raise TMVAOptionError(
            f"ValidationSize={validation_size} events must be fewer than the {n_events} training events; "
            f"give fewer events or a fraction such as ValidationSize=0.2"
        )
    return validation_size / n_events


def fit_arguments(strategy: TrainingStrategy, validation_size=0.2, n_events: int | None = None) -> dict:
    """:func:`bptt.train.fit` keyword arguments for one TMVA training phase.

    TMVA's L2 penalty is ``λ Σ w²`` (gradient ``2 λ w``), bptt's ``(wd / 2) Σ w²``: TMVA's
    ``WeightDecay=λ`` with ``Regularization=L2`` is ``weight_decay = 2 λ`` here; with L1 the two agree.
    ``validation_size`` is TMVA's ValidationSize, a fraction or a number of events out of
    ``n_events`` (see :func:`validation_split`). The phase optimizer's own keys (``ADAM_beta1``,
    ``ADAM_beta2``, ``ADAM_eps``, ``ADAGRAD_eps``, ``RMSPROP_rho``, ``RMSPROP_eps``,
    ``ADADELTA_rho``, ``ADADELTA_eps``, TMVA's defaults where absent) are ``optimizer_options``.
    """
    reg = strategy.regularization
    weight_decay = 0.0 if reg is None else (2.0 * strategy.weight_decay if reg == "L2" else strategy.weight_decay)
    return {
        "epochs": strategy.max_epochs,
        "batch_size": strategy.batch_size,
        "optimizer": strategy.optimizer,
        "learning_rate": strategy.learning_rate,
        "momentum": strategy.momentum,
        "optimizer_options": strategy.optimizer_options() or None,
        "early_stopping": strategy.convergence_steps,
        "weight_decay": weight_decay,
        "regularization": reg,
        "validation_split": validation_split(validation_size, n_events),
    }


def _resolve_seed(opts: dict, seed) -> tuple[int, bool]:
    """``(seed, drawn)``: an explicit ``seed`` wins; else ``RandomSeed``; TMVA's ``RandomSeed=0``
    (its default) means a different seed every run (``TRandom3(0)``): one is drawn from the
    operating system's entropy and reported, so the run can be repeated with it."""
    if seed is not None:
        return int(seed), False
    random_seed = opts.get("random_seed", 0)
    if random_seed != 0:
        return int(random_seed), False
    return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1)) + 1, True


def _check_batch_layout(opts: dict, strategies) -> str | None:
    """TMVA's checks of ``BatchLayout`` against BatchSize and InputLayout (MethodDL::TrainDeepNet);
    a note when it passes (bptt takes its batches from BatchSize alone)."""
    layout = opts.get("batch_layout")
    if layout is None:
        return None
    T, F = opts["input_layout"]
    dims = (1,) * (3 - len(layout)) + tuple(layout)
    depth, height, width = dims
    for k, s in enumerate(strategies, start=1):
        b = s.batch_size
        if depth != b and depth > 1:
            bad = f"batch depth {depth} must equal BatchSize={b}"
        elif depth == 1 and b > 1 and height != b:
            bad = f"batch height {height} must equal BatchSize={b}"
        elif (depth == b and height * width != T * F) or (depth == 1 and height == b and width != T * F):
            bad = f"it is not compatible with InputLayout={T}|{F} ({T * F} values per event)"
        else:
            continue
        where = f" (TrainingStrategy phase {k})" if len(strategies) > 1 else ""
        raise TMVAOptionError(
            f"BatchLayout={'|'.join(map(str, layout))}: {bad}{where}, as TMVA checks it; write "
            f"BatchLayout={b}|{T}|{F} or leave BatchLayout out"
        )
    return f"BatchLayout={'|'.join(map(str, layout))} (checked as TMVA does; bptt's batches come from BatchSize)"


def _notes(opts: dict, strategies) -> list[str]:
    """What the booking string holds that bptt accepts without acting on it, one entry each."""
    notes = []
    arch = opts.get("architecture")
    if arch is not None and arch != "CPU":
        notes.append(f"Architecture={arch}: bptt runs on the CPU")
    for key, name in (("help", "H"), ("verbose", "V"), ("verbosity_level", "VerbosityLevel"),
                      ("create_mva_pdfs", "CreateMVAPdfs")):
        if key in opts:
            value = opts[key]
            shown = name if value is True else (f"!{name}" if value is False else f"{name}={value}")
            what = "no MVA PDFs are made" if key == "create_mva_pdfs" else "bptt's output is set by verbose= / --quiet"
            notes.append(f"{shown}: {what}")
    defaults = TrainingStrategy()
    for k, s in enumerate(strategies, start=1):
        where = f"phase {k}: " if len(strategies) > 1 else ""
        for field_name, key, meaning in (
            ("repetitions", "Repetitions", "TMVA's MethodDL does not use it either"),
            ("drop_repetitions", "DropRepetitions", "TMVA's MethodDL does not use it either"),
            ("multithreading", "Multithreading", "bptt's BLAS threads are chosen by size"),
        ):
            value = getattr(s, field_name)
            if value != getattr(defaults, field_name):
                notes.append(f"{where}{key}={value}: ignored ({meaning})")
        if s.test_repetitions != 1:
            notes.append(
                f"{where}TestRepetitions={s.test_repetitions}: bptt evaluates the validation loss after every "
                f"epoch (TMVA every {s.test_repetitions} epochs; TestRepetitions=1 is the same in both)"
            )
    return notes


@dataclass
class TrainingPlan:
    """What a booking string asks for: the network, one set of :func:`bptt.train.fit` arguments
    per ``TrainingStrategy`` phase, and how the inputs are transformed; :meth:`fit` trains it all.

    Attributes:
        model: the network (WeightInitialization drawn from ``seed``; its ``input_transform`` is
            the unfitted ``VarTransform``, or None for ``VarTransform=None``).
        phases: fit's keyword arguments for each phase, in order (``standardize=False``: the
            booking string's VarTransform is the input transformation).
        dropout: the DropConfig of each phase, one rate per Dropout layer of ``model``.
        seed: the seed of the weights, the validation split and the batch order;
            ``seed_drawn``: True when TMVA's ``RandomSeed=0`` made bptt draw it (report it to
            repeat the run).
        notes: the options accepted without effect (also issued as :class:`TMVAOptionWarning`).
    """

    model: Sequential
    phases: list
    dropout: list
    seed: int
    seed_drawn: bool
    notes: list = field(default_factory=list)
    input_layout: tuple | None = None

    def check_data(self, X) -> None:
        """Refuse data whose events do not have InputLayout's shape, in TMVA's terms."""
        if self.input_layout is None:
            return
        T, F = self.input_layout
        shape = np.shape(X)
        say = f"InputLayout={T}|{F}"
        if len(shape) == 3:
            if shape[2] != F:
                raise TMVAOptionError(f"{say} says {F} features per time step; the data have {shape[2]} "
                                      f"(events of shape {shape[1:]})")
            if shape[1] != T:
                raise TMVAOptionError(f"{say} says {T} time steps; the data have {shape[1]} (events of shape {shape[1:]})")
        elif len(shape) == 2 and shape[1] != T * F:
            raise TMVAOptionError(f"{say} says {T * F} values per event; the data have {shape[1]}")

    def fit(self, X, y, *, sample_weight=None, verbose: bool = True, checkpoint=None, resume=None, **overrides):
        """Train every phase (see :func:`train_phases`); ``overrides`` replace fit arguments of
        every phase (e.g. ``epochs=3``). Returns the :class:`PhasedHistory`. Data that do not
        have InputLayout's shape are refused first, in TMVA's terms (:meth:`check_data`)."""
        self.check_data(X)
        phases = [{**args, **overrides} for args in self.phases]
        return train_phases(self.model, X, y, phases, dropout=self.dropout, sample_weight=sample_weight,
                            verbose=verbose, checkpoint=checkpoint, resume=resume)


@dataclass
class PhasedHistory(History):
    """The :class:`bptt.train.History` of a multi-phase training, epochs numbered on from phase to
    phase, with ``phase`` (the phase of each epoch, from 1) and ``phase_starts`` (the index in the
    lists where each phase begins). ``best_epoch``/``best_loss`` are the last phase's (its best
    weights are the model's at the end, as TMVA keeps them)."""

    phase: list = field(default_factory=list)
    phase_starts: list = field(default_factory=list)


def phase_checkpoint(checkpoint, phase: int, n_phases: int) -> str | None:
    """The checkpoint file of ``phase`` (from 1): ``checkpoint`` itself for a single phase, else
    ``<stem>.phase<k><suffix>`` beside it (``run.ckpt`` → ``run.phase2.ckpt``)."""
    if checkpoint is None:
        return None
    path = os.fspath(checkpoint)
    if n_phases == 1:
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}.phase{phase}{suffix}"


def train_phases(model, X, y, phases: list, *, dropout=None, sample_weight=None, verbose: bool = True,
                 checkpoint=None, resume=None) -> PhasedHistory:
    """Train ``model`` phase after phase, as TMVA's ``MethodDL`` does with a multi-phase
    ``TrainingStrategy``: each phase is one :func:`bptt.train.fit` with its own optimizer (fresh
    state), learning rate, batch size, MaxEpochs, ConvergenceSteps, regularisation and dropout
    rates (``dropout[k]``: one rate per Dropout layer), starting from the weights the phase
    before ended with (its best epoch's, ``restore_best``) on the same validation events (the
    same ``seed``).

    An unfitted :class:`bptt.transforms.VarTransform` on the model is first fitted on all of
    ``X`` (TMVA prepares its transformations on the whole training set, before ValidationSize
    takes its part). Progress lines name the phase.

    Checkpoints: with several phases, phase k writes ``<stem>.phase<k><suffix>``
    (:func:`phase_checkpoint`); ``resume=<the same checkpoint path>`` finds the last phase that
    has a checkpoint, takes the earlier phases' histories from theirs, continues that phase where
    it stopped and trains the phases after it. With one phase both are fit's own.
    """
    import sys

    from ..io.model_file import load_checkpoint
    from ..layers.dropout import Dropout

    if not phases:
        raise ValueError("train_phases: phases must hold at least one phase's fit arguments; got none")
    n = len(phases)
    t = model.input_transform
    if getattr(t, "fitted", True) is False:  # over the real steps when the phases train with lengths
        t.fit(X, y, sample_weight, lengths=phases[0].get("lengths"))
    drops = [layer for layer in model.layers if isinstance(layer, Dropout)]
    start = 1
    done: list[History] = []
    if resume is not None:
        paths = [phase_checkpoint(resume, k, n) for k in range(1, n + 1)]
        present = [k for k, p in enumerate(paths, start=1) if os.path.exists(p)]
        if not present:
            raise ValueError(f"train_phases: resume={os.fspath(resume)!r}: no checkpoint of any phase ({paths[0]!r} …)")
        start = present[-1]
        done = [History.from_dict(load_checkpoint(paths[k - 1])[1]["history"]) for k in range(1, start)]
    history = PhasedHistory()
    for k, h in enumerate(done, start=1):
        _append(history, h, k)
    for k in range(start, n + 1):
        args = dict(phases[k - 1])
        rates = (dropout or [[]] * n)[k - 1]
        for layer, rate in zip(drops, list(rates) + [0.0] * (len(drops) - len(rates))):
            layer.rate = float(rate)
        if verbose and n > 1:
            print(f"TrainingStrategy phase {k} of {n}: {args.get('optimizer', 'adam')}, learning rate "
                  f"{args.get('learning_rate')}, batch size {args.get('batch_size')}, up to {args.get('epochs')} "
                  f"epochs", file=sys.stderr)
        h = model.fit(X, y, sample_weight=sample_weight, verbose=verbose,
                      checkpoint=phase_checkpoint(checkpoint, k, n),
                      resume=phase_checkpoint(resume, k, n) if resume is not None and k == start else None, **args)
        _append(history, h, k)
    model.history = history
    return history


def _append(history: PhasedHistory, h: History, phase: int) -> None:
    offset = history.epoch[-1] if history.epoch else 0
    history.phase_starts.append(len(history.epoch))
    history.epoch.extend(e + offset for e in h.epoch)
    history.loss.extend(h.loss)
    history.val_loss.extend(h.val_loss)
    history.seconds.extend(h.seconds)
    history.phase.extend([phase] * len(h.epoch))
    history.best_epoch = None if h.best_epoch is None else h.best_epoch + offset
    history.best_loss, history.stopped_early = h.best_loss, h.stopped_early


def plan_from_options(
    options: str | dict, *, seed: int | None = None, dtype=np.float32, n_events: int | None = None
) -> TrainingPlan:
    """The :class:`TrainingPlan` of a TMVA booking string (or its :func:`bptt.parse_options`).

    Needs ``InputLayout`` and ``Layout``. Every other option means what it means in TMVA, with
    TMVA's default when it is absent: ``ErrorStrategy`` (the loss), ``WeightInitialization``
    (default XAVIER, :mod:`bptt.tmva.layers`), ``VarTransform`` (default None: no input
    transformation, :mod:`bptt.transforms`), ``ValidationSize`` (a number of events needs
    ``n_events``, the events that will be given to fit), ``RandomSeed`` (default 0: a seed drawn
    for this run, see :class:`TrainingPlan`; ``seed`` overrides it), every ``TrainingStrategy``
    phase, ``IgnoreNegWeightsInTraining``, ``BatchLayout`` (checked). The options bptt accepts
    without acting on (Architecture other than CPU, H, V, VerbosityLevel, CreateMVAPdfs,
    Repetitions, DropRepetitions, Multithreading, TestRepetitions other than 1) are listed in a
    :class:`TMVAOptionWarning` and in ``plan.notes``.
    """
    parse_notes: list[str] = []
    if isinstance(options, str):
        with warnings.catch_warnings(record=True) as caught:  # the parser's notes join the plan's
            warnings.simplefilter("always", TMVAOptionWarning)
            opts = parse_options(options)
        parse_notes = [str(w.message) for w in caught if issubclass(w.category, TMVAOptionWarning)]
        for w in caught:
            if not issubclass(w.category, TMVAOptionWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    else:
        opts = options
    for key, name in (("input_layout", "InputLayout"), ("layout", "Layout")):
        if key not in opts:
            raise TMVAOptionError(f"the options need {name}=...; got only {sorted(opts)}")
    loss = _LOSSES.get(opts.get("error_strategy", "CROSSENTROPY"))
    if loss is None:
        raise TMVAOptionError(
            f"ErrorStrategy={opts['error_strategy']} is not supported; use one of {', '.join(_LOSSES)}"
        )
    strategies = opts.get("training_strategy") or [TrainingStrategy()]
    try:
        var_transform = VarTransform(opts.get("var_transform", "None"))
    except ValueError as exc:
        raise TMVAOptionError(str(exc)) from None
    notes = parse_notes + _notes(opts, strategies)
    batch_note = _check_batch_layout(opts, strategies)
    if batch_note:
        notes.append(batch_note)
    seed, drawn = _resolve_seed(opts, seed)
    # one Dropout layer wherever a phase drops: the rates change from phase to phase
    width = max(len(s.drop_config) for s in strategies)
    union = [max((s.drop_config[i] if i < len(s.drop_config) else 0.0) for s in strategies) for i in range(width)]
    layers = build_layers(opts["layout"], opts["input_layout"], seed=seed, dtype=dtype, dropout=union,
                          weight_initialization=opts.get("weight_initialization", "XAVIER"))
    model = Sequential(layers, loss=loss)
    model.input_transform = var_transform if var_transform.steps else None
    positions = [i for i, p in enumerate(union) if p > 0.0]
    dropout = [[(s.drop_config[i] if i < len(s.drop_config) else 0.0) for i in positions] for s in strategies]
    phases = []
    for s in strategies:
        args = fit_arguments(s, opts.get("validation_size", 0.2), n_events)
        args.update(seed=seed, standardize=False)
        if opts.get("ignore_neg_weights_in_training"):
            args["ignore_negative_weights"] = True
        phases.append(args)
    if notes:
        warnings.warn("; ".join(notes), TMVAOptionWarning, stacklevel=2)
    return TrainingPlan(model, phases, dropout, seed, drawn, notes, tuple(opts["input_layout"]))


def network_from_options(
    options: str | dict, *, seed: int | None = None, dtype=np.float32, n_events: int | None = None
) -> tuple[Sequential, dict]:
    """``(model, fit arguments)`` from a TMVA booking string (or its :func:`bptt.parse_options`):
    :func:`plan_from_options`'s model and its first phase's fit arguments, for
    ``model.fit(X, y, **args)`` (an unfitted VarTransform is fitted by fit on its training part).
    A TrainingStrategy of several phases warns: train them with ``plan_from_options(...).fit``.
    """
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("ignore", TMVAOptionWarning)
        plan = plan_from_options(options, seed=seed, dtype=dtype, n_events=n_events)
    notes = list(plan.notes)
    if len(plan.phases) > 1:
        notes.append(
            f"TrainingStrategy has {len(plan.phases)} phases: these fit arguments are phase 1's; train them all "
            f"with bptt.tmva.network.plan_from_options(...).fit(X, y)"
        )
    if notes:
        warnings.warn("; ".join(notes), TMVAOptionWarning, stacklevel=2)
    args = dict(plan.phases[0])
    if plan.dropout and plan.dropout[0]:
        from ..layers.dropout import Dropout

        for layer, rate in zip([l for l in plan.model.layers if isinstance(l, Dropout)], plan.dropout[0]):
            layer.rate = float(rate)
    return plan.model, args
