"""From a TMVA ``MethodDL`` booking string to a network and the arguments of :func:`bptt.train.fit`:
one path from the parsed options (:func:`bptt.tmva.parse_options`), parsed once.

:func:`network_from_options` builds the layers (:func:`bptt.tmva.layers.build_layers`) from the
parsed ``Layout`` and ``InputLayout``, the loss from ``ErrorStrategy``, and :func:`fit_arguments`
translates a ``TrainingStrategy`` phase into fit's keywords.
"""

from __future__ import annotations

import numpy as np

from ..model import Sequential
from ._common import TMVAOptionError
from .layers import build_layers
from .options import TrainingStrategy, parse_options

__all__ = ["network_from_options", "fit_arguments", "validation_split"]

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
    ``n_events`` (see :func:`validation_split`).
    """
    reg = strategy.regularization
    weight_decay = 0.0 if reg is None else (2.0 * strategy.weight_decay if reg == "L2" else strategy.weight_decay)
    return {
        "epochs": strategy.max_epochs,
        "batch_size": strategy.batch_size,
        "optimizer": strategy.optimizer,
        "learning_rate": strategy.learning_rate,
        "momentum": strategy.momentum,
        "early_stopping": strategy.convergence_steps,
        "weight_decay": weight_decay,
        "regularization": reg,
        "validation_split": validation_split(validation_size, n_events),
    }


def network_from_options(
    options: str | dict, *, seed: int | None = None, dtype=np.float32, n_events: int | None = None
) -> tuple[Sequential, dict]:
    """``(model, fit arguments)`` from a TMVA booking string (or its :func:`bptt.parse_options`).

    Needs ``InputLayout`` and ``Layout``; ``TrainingStrategy`` (first phase), ``ErrorStrategy``,
    ``ValidationSize`` and ``RandomSeed`` are used when present. A ValidationSize given as a number
    of events needs ``n_events``, the number of events that will be given to fit.
    """
    opts = parse_options(options) if isinstance(options, str) else options
    for key, name in (("input_layout", "InputLayout"), ("layout", "Layout")):
        if key not in opts:
            raise TMVAOptionError(f"the options need {name}=...; got only {sorted(opts)}")
    loss = _LOSSES.get(opts.get("error_strategy", "CROSSENTROPY"))
    if loss is None:
        raise TMVAOptionError(
            f"ErrorStrategy={opts['error_strategy']} is not supported; use one of {', '.join(_LOSSES)}"
        )
    strategies = opts.get("training_strategy") or [TrainingStrategy()]
    strategy = strategies[0]
    seed = opts.get("random_seed", 0) if seed is None else seed
    layers = build_layers(opts["layout"], opts["input_layout"], seed=seed, dtype=dtype, dropout=strategy.drop_config)
    model = Sequential(layers, loss=loss)
    args = fit_arguments(strategy, opts.get("validation_size", 0.2), n_events)
    args["seed"] = seed
    return model, args
