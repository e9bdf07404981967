"""TMVA option strings, parsed verbatim into Python objects.

ROOT TMVA books a deep-learning method (``MethodDL``) with one colon-separated option string::

    !H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:
    ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:
    Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:
    TrainingStrategy=LearningRate=1e-3,Momentum=0.0,...,Optimizer=ADAM,DropConfig=0.0+0.+0.+0.:
    Architecture=CPU

This module reads such strings (the ``Layout``, ``InputLayout`` and ``TrainingStrategy`` values on
their own, or the whole booking string) into :class:`LayerSpec` and :class:`TrainingStrategy`
objects, so that TMVA users can reuse the strings they already have.

Layout tokens (comma-separated; fields of a token are ``|``-separated, field 1 being the type):

- ``RNN|stateSize|inputSize|timeSteps[|rememberState|returnSequence]`` and the same for ``LSTM``
  and ``GRU``; the two flags are 0 or 1 (default 0). ``GRU`` takes an optional 7th field
  ``resetGateAfter`` (default 0, TMVA's CPU form ``n = tanh(x W_n + (r ⊙ h) U_n + …)``; 1 is the
  PyTorch/cuDNN form). TMVA's simple RNN uses tanh.
- ``DENSE|units[|ACTIVATION]`` with ACTIVATION one of TANH (the default, as in TMVA), RELU, SIGMOID,
  IDENTITY or LINEAR (= identity). TMVA's SOFTSIGN, GAUSS and SYMMRELU are rejected as unsupported.
- ``RESHAPE|FLAT`` (flatten each sequence to a vector) or ``RESHAPE|depth|height|width``.
- A token without a layer type is a dense layer, as in TMVA (a legacy of its older DNN interface):
  ``ACTIVATION[|units]``; units default to 1. So a bare ``LINEAR`` at the end is the network's
  output layer: 1 unit, identity activation, for binary classification (the sigmoid of TMVA's
  cross-entropy loss is applied by the loss, not by the layer).

Every error is a :class:`TMVAOptionError` (a ``ValueError``) that quotes the offending token, gives
its 1-based position and says what was expected.

Example::

    >>> from bptt.tmva import parse_input_layout, parse_layout, parse_training_strategy
    >>> parse_input_layout("10|30")
    (10, 30)
    >>> [(l.kind, l.params) for l in parse_layout("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR")][2:]
    [('dense', {'units': 64, 'activation': 'tanh'}), ('dense', {'units': 1, 'activation': 'identity'})]
    >>> s = parse_training_strategy("LearningRate=1e-3,BatchSize=100,Optimizer=ADAM,MaxEpochs=20")
    >>> s.learning_rate, s.batch_size, s.optimizer, s.max_epochs
    (0.001, 100, 'adam', 20)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TMVAOptionError",
    "LayerSpec",
    "TrainingStrategy",
    "parse_input_layout",
    "parse_layout",
    "parse_training_strategy",
    "parse_options",
    "check_layout",
]


class TMVAOptionError(ValueError):
    """A TMVA option string that cannot be parsed; the message quotes the token and its position."""


@dataclass
class LayerSpec:
    """One layer of a TMVA ``Layout`` string.

    Attributes:
        kind: ``"rnn"``, ``"lstm"``, ``"gru"``, ``"dense"``, ``"flatten"`` or ``"reshape"``.
        params: the layer's fields by name, e.g. ``{"units": 64, "activation": "tanh"}``, or for
            recurrent layers ``state_size``, ``input_size``, ``time_steps``, ``remember_state``,
            ``return_sequence`` (and ``activation`` for RNN, ``reset_after`` for GRU).
        token: the token as written (whitespace stripped).
        position: 1-based index of the token in the comma-separated layout.
    """

    kind: str
    params: dict
    token: str
    position: int


@dataclass
class TrainingStrategy:
    """One phase of a TMVA ``TrainingStrategy``; the defaults are TMVA's ``MethodDL`` defaults.

    Attributes:
        learning_rate: ``LearningRate`` (default 1e-5).
        momentum: ``Momentum`` (0.3), in [0, 1).
        convergence_steps: ``ConvergenceSteps`` (100): epochs without improvement of the
            validation loss before training stops.
        batch_size: ``BatchSize`` (30).
        test_repetitions: ``TestRepetitions`` (7): evaluate the validation loss every this many epochs.
        weight_decay: ``WeightDecay`` (0.0), the regularisation strength.
        regularization: ``Regularization``: None (TMVA's ``None``), ``"L1"`` or ``"L2"``.
        max_epochs: ``MaxEpochs`` (2000).
        optimizer: ``Optimizer``: ``"sgd"``, ``"adam"`` (default), ``"adagrad"``, ``"rmsprop"`` or
            ``"adadelta"`` (TMVA's SGD, ADAM, ADAGRAD, RMSPROP, ADADELTA).
        drop_config: ``DropConfig`` ``p0+p1+…``: dropout probability per layer, each in [0, 1).
        repetitions, drop_repetitions, multithreading: ``Repetitions``, ``DropRepetitions`` and
            ``Multithreading``, accepted because TMVA strings carry them (TMVA's MethodDL itself
            ignores the first two); they have no effect in bptt.
    """

    learning_rate: float = 1e-5
    momentum: float = 0.3
    convergence_steps: int = 100
    batch_size: int = 30
    test_repetitions: int = 7
    weight_decay: float = 0.0
    regularization: str | None = None
    max_epochs: int = 2000
    optimizer: str = "adam"
    drop_config: list[float] = field(default_factory=list)
    repetitions: int = 1
    drop_repetitions: int = 1
    multithreading: bool = True


# ──────────────────────────────────────────────────────────────────────────── small parsers

_INT = re.compile(r"\+?\d+")


def _positive_int(text: str) -> int | None:
    """``text`` as an integer >= 1, or None."""
    if _INT.fullmatch(text) and int(text) >= 1:
        return int(text)
    return None


def _float(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _strip_prefix(text: str, key: str, fn: str) -> str:
    """Remove surrounding whitespace and an optional ``Key=`` prefix (case-insensitive)."""
    if not isinstance(text, str):
        raise TMVAOptionError(f"{fn}: expected a string; got {type(text).__name__} {text!r}")
    text = text.strip()
    m = re.match(rf"{key}\s*=\s*", text, flags=re.IGNORECASE)
    return text[m.end():] if m else text


# ──────────────────────────────────────────────────────────────────────────── InputLayout


def parse_input_layout(text: str) -> tuple[int, int]:
    """Parse ``InputLayout`` into ``(T, F)``: ``time|features``, or three numbers with a 1.

    TMVA's InputLayout is ``depth|height|width``. Its RNN tutorial writes ``time|1|features``
    (``InputLayout=10|1|30``); ``1|time|features`` is accepted too.

    >>> parse_input_layout("InputLayout=10|1|30"), parse_input_layout("1|10|30"), parse_input_layout("10|30")
    ((10, 30), (10, 30), (10, 30))
    """
    value = _strip_prefix(text, "InputLayout", "parse_input_layout")
    fields = [f.strip() for f in value.split("|")]
    where = f"InputLayout {value!r}"
    if len(fields) not in (2, 3):
        raise TMVAOptionError(
            f"{where}: expected 2 numbers time|features (e.g. '10|30') or 3 numbers time|1|features "
            f"(e.g. '10|1|30'); got {len(fields)} field{'s' if len(fields) != 1 else ''}"
        )
    names = ("depth", "height", "width") if len(fields) == 3 else ("number of time steps", "number of features")
    numbers = []
    for i, (f, name) in enumerate(zip(fields, names), start=1):
        n = _positive_int(f)
        if n is None:
            raise TMVAOptionError(f"{where}: field {i} must be a positive integer ({name}); got {f!r}")
        numbers.append(n)
    if len(numbers) == 3:
        if numbers[1] == 1:  # time|1|features, as TMVA's tutorial writes it
            numbers = [numbers[0], numbers[2]]
        elif numbers[0] == 1:  # 1|time|features
            numbers = numbers[1:]
        else:
            raise TMVAOptionError(
                f"{where}: a recurrent network takes time|1|features (or 1|time|features): field 1 or "
                f"field 2 must be 1; got {value!r}; write e.g. InputLayout={numbers[0]}|1|{numbers[2]}"
            )
    return numbers[0], numbers[1]


# ──────────────────────────────────────────────────────────────────────────────── Layout

#: TMVA activation name → bptt activation name.
_ACTIVATIONS = {"TANH": "tanh", "RELU": "relu", "SIGMOID": "sigmoid", "IDENTITY": "identity", "LINEAR": "identity"}
_UNSUPPORTED_ACTIVATIONS = ("SOFTSIGN", "GAUSS", "SYMMRELU", "FTANH")
_UNSUPPORTED_LAYERS = ("CONV", "MAXPOOL", "BNORM", "BATCHNORM")
_ACT_LIST = "TANH, RELU, SIGMOID, IDENTITY or LINEAR"
_RECURRENT_FIELDS = (
    ("state_size", "state size"),
    ("input_size", "input size: features per time step"),
    ("time_steps", "number of time steps"),
)
_RECURRENT_FLAGS = (("remember_state", "rememberState"), ("return_sequence", "returnSequence"))


class _Token:
    """A layout token with its position, for error messages."""

    def __init__(self, token: str, position: int):
        self.token = token
        self.position = position
        self.fields = [f.strip() for f in token.split("|")]
        self.n_fields = f"{len(self.fields)} field{'s' if len(self.fields) != 1 else ''}"

    def error(self, what: str) -> TMVAOptionError:
        return TMVAOptionError(f"Layout token {self.position} {self.token!r}: {what}")

    def positive_int(self, i: int, meaning: str) -> int:
        n = _positive_int(self.fields[i - 1])
        if n is None:
            raise self.error(f"field {i} must be a positive integer ({meaning}); got {self.fields[i - 1]!r}")
        return n

    def flag(self, i: int, meaning: str) -> bool:
        f = self.fields[i - 1]
        if f not in ("0", "1"):
            raise self.error(f"field {i} must be 0 or 1 ({meaning}); got {f!r}")
        return f == "1"

    def activation(self, i: int) -> str:
        name = self.fields[i - 1].upper()
        if name in _ACTIVATIONS:
            return _ACTIVATIONS[name]
        if name in _UNSUPPORTED_ACTIVATIONS:
            raise self.error(
                f"field {i}: activation {self.fields[i - 1]!r} is a TMVA activation that bptt does not "
                f"support; use one of {_ACT_LIST}"
            )
        raise self.error(f"field {i} must be an activation ({_ACT_LIST}); got {self.fields[i - 1]!r}")


def _parse_recurrent(t: _Token, kind: str) -> dict:
    max_fields = 7 if kind == "GRU" else 6
    usage = f"{kind}|stateSize|inputSize|timeSteps[|rememberState|returnSequence" + (
        "[|resetGateAfter]]" if kind == "GRU" else "]"
    )
    if not 4 <= len(t.fields) <= max_fields:
        raise t.error(f"expected {usage} (4 to {max_fields} fields); got {t.n_fields}")
    params: dict[str, Any] = {}
    for i, (key, meaning) in enumerate(_RECURRENT_FIELDS, start=2):
        params[key] = t.positive_int(i, meaning)
    for i, (key, meaning) in enumerate(_RECURRENT_FLAGS, start=5):
        params[key] = t.flag(i, meaning) if len(t.fields) >= i else False
    if kind == "RNN":
        params["activation"] = "tanh"
    if kind == "GRU":
        params["reset_after"] = t.flag(7, "resetGateAfter") if len(t.fields) >= 7 else False
    return params


def _parse_dense(t: _Token) -> dict:
    if len(t.fields) not in (2, 3):
        raise t.error(f"expected DENSE|units|ACTIVATION (ACTIVATION optional, default TANH); got {t.n_fields}")
    units = t.positive_int(2, "number of units")
    activation = t.activation(3) if len(t.fields) == 3 else "tanh"
    return {"units": units, "activation": activation}


def _parse_typeless_dense(t: _Token) -> dict:
    if len(t.fields) > 2:
        raise t.error(
            f"a token without a layer type is a dense layer written ACTIVATION[|units]; got {t.n_fields}"
        )
    activation = t.activation(1)
    units = t.positive_int(2, "number of units") if len(t.fields) == 2 else 1
    return {"units": units, "activation": activation}


def _parse_reshape(t: _Token) -> tuple[str, dict]:
    if len(t.fields) == 2 and t.fields[1].upper() == "FLAT":
        return "flatten", {}
    if len(t.fields) == 4:
        names = ("depth", "height", "width")
        return "reshape", {n: t.positive_int(i, n) for i, n in enumerate(names, start=2)}
    if len(t.fields) == 2:
        raise t.error(f"field 2 must be FLAT (or write RESHAPE|depth|height|width); got {t.fields[1]!r}")
    raise t.error(f"expected RESHAPE|FLAT or RESHAPE|depth|height|width; got {t.n_fields}")


def _parse_token(token: str, position: int) -> LayerSpec:
    t = _Token(token, position)
    if not token:
        raise t.error("empty layer; remove the extra ',' or write a layer such as DENSE|64|TANH")
    kind = t.fields[0].upper()
    if kind in ("RNN", "LSTM", "GRU"):
        return LayerSpec(kind.lower(), _parse_recurrent(t, kind), token, position)
    if kind == "DENSE":
        return LayerSpec("dense", _parse_dense(t), token, position)
    if kind == "RESHAPE":
        k, params = _parse_reshape(t)
        return LayerSpec(k, params, token, position)
    if kind in _ACTIVATIONS or kind in _UNSUPPORTED_ACTIVATIONS:
        return LayerSpec("dense", _parse_typeless_dense(t), token, position)
    if kind in _UNSUPPORTED_LAYERS:
        raise t.error(
            f"layer type {t.fields[0]!r} is a TMVA layer that bptt does not support; use RNN, LSTM, GRU, "
            f"DENSE or RESHAPE"
        )
    raise t.error(
        f"unknown layer type {t.fields[0]!r}; expected RNN, LSTM, GRU, DENSE, RESHAPE, or an activation "
        f"({_ACT_LIST}) for a dense layer"
    )


def parse_layout(text: str) -> list[LayerSpec]:
    """Parse a TMVA ``Layout`` string (with or without ``Layout=``) into :class:`LayerSpec` objects.

    >>> [l.kind for l in parse_layout(" Layout=GRU|8|30|10|0|1|1, RESHAPE|FLAT, LINEAR ")]
    ['gru', 'flatten', 'dense']
    >>> parse_layout("DENSE|sixty|TANH")
    Traceback (most recent call last):
    ...
    bptt.tmva.TMVAOptionError: Layout token 1 'DENSE|sixty|TANH': field 2 must be a positive integer (number of units); got 'sixty'
    """
    value = _strip_prefix(text, "Layout", "parse_layout")
    if not value:
        raise TMVAOptionError("Layout: empty layout; expected comma-separated layers such as 'LSTM|10|30|10|0|1,LINEAR'")
    return [_parse_token(tok.strip(), i) for i, tok in enumerate(value.split(","), start=1)]


def check_layout(layers: list[LayerSpec], input_layout: tuple[int, int] | None = None) -> None:
    """Check that layer shapes fit together; raise :class:`TMVAOptionError` if they do not.

    - a recurrent first layer must have ``timeSteps|inputSize`` equal to ``InputLayout``;
    - a recurrent layer that follows a recurrent layer returning the full sequence must take the
      previous state size as input size and have the same number of time steps.
    """
    prev = None
    for layer in layers:
        if layer.kind in ("rnn", "lstm", "gru"):
            p = layer.params
            kind = layer.kind.upper()
            if prev is None and input_layout is not None:
                T, F = input_layout
                if p["input_size"] != F:
                    raise TMVAOptionError(
                        f"Layout token {layer.position} {layer.token!r}: field 3 (input size) is "
                        f"{p['input_size']} but InputLayout={T}|{F} gives {F} features per time step; "
                        f"make them equal"
                    )
                if p["time_steps"] != T:
                    raise TMVAOptionError(
                        f"Layout token {layer.position} {layer.token!r}: field 4 (time steps) is "
                        f"{p['time_steps']} but InputLayout={T}|{F} gives {T} time steps; make them equal"
                    )
            elif prev is not None and prev.kind in ("rnn", "lstm", "gru") and prev.params["return_sequence"]:
                q = prev.params
                if p["input_size"] != q["state_size"]:
                    raise TMVAOptionError(
                        f"Layout token {layer.position} {layer.token!r}: field 3 (input size) is "
                        f"{p['input_size']} but the previous {prev.kind.upper()} (token {prev.position}) has "
                        f"state size {q['state_size']}; a stacked {kind} takes the previous state as input"
                    )
                if p["time_steps"] != q["time_steps"]:
                    raise TMVAOptionError(
                        f"Layout token {layer.position} {layer.token!r}: field 4 (time steps) is "
                        f"{p['time_steps']} but the previous {prev.kind.upper()} (token {prev.position}) has "
                        f"{q['time_steps']}; make them equal"
                    )
        prev = layer


# ──────────────────────────────────────────────────────────────────────── TrainingStrategy

_OPTIMIZERS = {"SGD": "sgd", "ADAM": "adam", "ADAGRAD": "adagrad", "RMSPROP": "rmsprop", "ADADELTA": "adadelta"}


def _v_positive_float(text):
    x = _float(text)
    return (x, None) if x is not None and x > 0 else (None, "a positive number")


def _v_nonneg_float(text):
    x = _float(text)
    return (x, None) if x is not None and x >= 0 else (None, "a number >= 0")


def _v_momentum(text):
    x = _float(text)
    return (x, None) if x is not None and 0 <= x < 1 else (None, "a number in [0, 1)")


def _v_positive_int(text):
    n = _positive_int(text)
    return (n, None) if n is not None else (None, "a positive integer")


def _v_regularization(text):
    t = text.upper()
    if t == "NONE":
        return None, None
    if t in ("L1", "L2"):
        return t, None
    return None, "None, L1 or L2"


def _v_optimizer(text):
    t = text.upper()
    return (_OPTIMIZERS[t], None) if t in _OPTIMIZERS else (None, "one of SGD, ADAM, ADAGRAD, RMSPROP, ADADELTA")


def _v_drop_config(text):
    probs = [_float(p.strip()) for p in text.split("+")]
    if any(p is None or not 0 <= p < 1 for p in probs):
        return None, "dropout probabilities in [0, 1) joined by '+', e.g. 0.0+0.5+0.0"
    return probs, None


def _v_bool(text):
    t = text.upper()
    if t in ("TRUE", "T", "1"):
        return True, None
    if t in ("FALSE", "F", "0"):
        return False, None
    return None, "True or False"


#: TMVA key → (field name, value parser, meaning).
_STRATEGY_KEYS = {
    "LearningRate": ("learning_rate", _v_positive_float, "learning rate"),
    "Momentum": ("momentum", _v_momentum, "momentum"),
    "ConvergenceSteps": ("convergence_steps", _v_positive_int, "epochs without improvement before stopping"),
    "BatchSize": ("batch_size", _v_positive_int, "sequences per mini-batch"),
    "TestRepetitions": ("test_repetitions", _v_positive_int, "epochs between validation evaluations"),
    "WeightDecay": ("weight_decay", _v_nonneg_float, "regularisation strength"),
    "Regularization": ("regularization", _v_regularization, "weight regularisation"),
    "MaxEpochs": ("max_epochs", _v_positive_int, "maximum number of epochs"),
    "Optimizer": ("optimizer", _v_optimizer, "optimiser"),
    "DropConfig": ("drop_config", _v_drop_config, "dropout per layer"),
    "Repetitions": ("repetitions", _v_positive_int, "unused by bptt"),
    "DropRepetitions": ("drop_repetitions", _v_positive_int, "unused by bptt"),
    "Multithreading": ("multithreading", _v_bool, "unused by bptt"),
}
_STRATEGY_KEYS_UPPER = {k.upper(): k for k in _STRATEGY_KEYS}


def _parse_phase(text: str, phase: int, n_phases: int) -> TrainingStrategy:
    where = f"TrainingStrategy phase {phase}" if n_phases > 1 else "TrainingStrategy"
    if not text.strip():
        raise TMVAOptionError(f"{where}: empty phase; remove the extra '|' or write Key=Value pairs")
    values: dict[str, Any] = {}
    for i, entry in enumerate(text.split(","), start=1):
        entry = entry.strip()
        head = f"{where} entry {i} {entry!r}"
        key, eq, value = entry.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise TMVAOptionError(f"{head}: expected Key=Value, e.g. 'BatchSize=100'")
        canonical = _STRATEGY_KEYS_UPPER.get(key.upper())
        if canonical is None:
            raise TMVAOptionError(f"{head}: unknown key {key!r}; expected one of {', '.join(_STRATEGY_KEYS)}")
        name, parse, meaning = _STRATEGY_KEYS[canonical]
        if name in values:
            raise TMVAOptionError(f"{head}: {canonical} is given twice in this phase; keep one")
        parsed, expected = parse(value)
        if expected is not None:
            raise TMVAOptionError(f"{head}: {canonical} must be {expected} ({meaning}); got {value!r}")
        values[name] = parsed
    return TrainingStrategy(**values)


def parse_training_strategy(text: str) -> TrainingStrategy | list[TrainingStrategy]:
    """Parse a TMVA ``TrainingStrategy`` (with or without ``TrainingStrategy=``).

    One phase gives a :class:`TrainingStrategy`; several phases separated by ``|`` give a list of
    them, trained one after the other. Keys are matched case-insensitively, as TMVA does; missing
    keys take TMVA's defaults.

    >>> phases = parse_training_strategy("LearningRate=1e-2,MaxEpochs=5|LearningRate=1e-3,MaxEpochs=10")
    >>> [(p.learning_rate, p.max_epochs) for p in phases]
    [(0.01, 5), (0.001, 10)]
    """
    value = _strip_prefix(text, "TrainingStrategy", "parse_training_strategy")
    if not value:
        raise TMVAOptionError("TrainingStrategy: empty; expected Key=Value pairs such as 'LearningRate=1e-3,BatchSize=100'")
    parts = value.split("|")
    phases = [_parse_phase(p, i, len(parts)) for i, p in enumerate(parts, start=1)]
    return phases[0] if len(phases) == 1 else phases


# ──────────────────────────────────────────────────────────────────── whole booking string

_ERROR_STRATEGIES = ("CROSSENTROPY", "SUMOFSQUARES", "MUTUALEXCLUSIVE")
_WEIGHT_INITS = ("XAVIER", "XAVIERUNIFORM", "GAUSS", "UNIFORM", "IDENTITY", "ZERO")
_ARCHITECTURES = ("CPU", "GPU", "STANDARD", "OPENCL")
_VERBOSITY = ("DEFAULT", "DEBUG", "VERBOSE", "INFO", "WARNING", "ERROR", "FATAL")

#: Boolean flags (``H``, ``!H``, ``H=False``) → result key.
_FLAGS = {
    "H": "help",
    "V": "verbose",
    "CreateMVAPdfs": "create_mva_pdfs",
    "IgnoreNegWeightsInTraining": "ignore_neg_weights_in_training",
}
#: Valued options → result key.
_VALUED = {
    "ErrorStrategy": "error_strategy",
    "VarTransform": "var_transform",
    "WeightInitialization": "weight_initialization",
    "ValidationSize": "validation_size",
    "RandomSeed": "random_seed",
    "InputLayout": "input_layout",
    "BatchLayout": "batch_layout",
    "Layout": "layout",
    "TrainingStrategy": "training_strategy",
    "Architecture": "architecture",
    "VerbosityLevel": "verbosity_level",
}
_ALL_OPTIONS = {k.upper(): k for k in (*_FLAGS, *_VALUED)}


def _choice(value: str, allowed: tuple[str, ...]) -> tuple[str | None, str | None]:
    v = value.upper()
    return (v, None) if v in allowed else (None, f"one of {', '.join(allowed)}")


def _validation_size(value: str):
    """TMVA accepts a fraction (0.2), a percentage (20%) or a number of events (100)."""
    if value.endswith("%"):
        x = _float(value[:-1].strip())
        return (x / 100, None) if x is not None and 0 < x < 100 else (None, "a percentage in (0%, 100%)")
    n = _positive_int(value)
    if n is not None and n > 1:
        return n, None
    x = _float(value)
    if x is not None and 0 < x < 1:
        return x, None
    return None, "a fraction in (0, 1), a percentage such as 20%, or a number of events > 1"


def _random_seed(value: str):
    return (int(value), None) if _INT.fullmatch(value) else (None, "a non-negative integer")


def _batch_layout(value: str):
    fields = [f.strip() for f in value.split("|")]
    nums = [_positive_int(f) for f in fields]
    if not 1 <= len(fields) <= 3 or any(n is None for n in nums):
        return None, "1 to 3 positive integers separated by '|'"
    return tuple(nums), None


def _free_text(value: str):
    return value, None


_VALUE_PARSERS = {
    "ErrorStrategy": lambda s: _choice(s, _ERROR_STRATEGIES),
    "VarTransform": _free_text,
    "WeightInitialization": lambda s: _choice(s, _WEIGHT_INITS),
    "ValidationSize": _validation_size,
    "RandomSeed": _random_seed,
    "BatchLayout": _batch_layout,
    "Architecture": lambda s: _choice(s, _ARCHITECTURES),
    "VerbosityLevel": lambda s: _choice(s, _VERBOSITY),
}


def parse_options(text: str) -> dict[str, Any]:
    """Parse a whole TMVA ``MethodDL`` booking string into a dict.

    The string is split at ``:`` (``Layout`` and ``TrainingStrategy`` values contain none). Only
    the options present appear in the result, under these keys:

    - flags ``H``, ``V``, ``CreateMVAPdfs``, ``IgnoreNegWeightsInTraining`` (``!`` negates, or
      ``=True``/``=False``) → ``help``, ``verbose``, ``create_mva_pdfs``,
      ``ignore_neg_weights_in_training`` (bool);
    - ``ErrorStrategy``, ``WeightInitialization``, ``Architecture``, ``VerbosityLevel`` → the TMVA
      name in upper case, checked against TMVA's choices; ``VarTransform`` → the text as written;
    - ``ValidationSize`` → a float fraction (``0.2`` or ``20%``) or an int number of events;
    - ``RandomSeed`` → int; ``InputLayout`` → ``(T, F)``; ``BatchLayout`` → tuple of ints;
    - ``Layout`` → list of :class:`LayerSpec`; ``TrainingStrategy`` → list of
      :class:`TrainingStrategy` (one per phase).

    When both InputLayout and Layout are given, :func:`check_layout` checks that they agree.
    Option names are matched case-insensitively; an unknown or repeated option is an error.

    >>> opts = parse_options("!H:V:RandomSeed=1234:InputLayout=10|30:Layout=LSTM|10|30|10|0|1,LINEAR:"
    ...                      "TrainingStrategy=BatchSize=100,MaxEpochs=20:Architecture=CPU")
    >>> opts["help"], opts["verbose"], opts["input_layout"], len(opts["layout"]), opts["training_strategy"][0].batch_size
    (False, True, (10, 30), 2, 100)
    """
    if not isinstance(text, str):
        raise TMVAOptionError(f"parse_options: expected a string; got {type(text).__name__} {text!r}")
    result: dict[str, Any] = {}
    positions: dict[str, int] = {}
    for i, raw in enumerate(text.split(":"), start=1):
        item = raw.strip()
        head = f"option {i} {item!r}"
        if not item:
            if text.strip() == "":
                break
            raise TMVAOptionError(f"{head}: empty option; remove the extra ':'")
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        negated = key.startswith("!")
        name = _ALL_OPTIONS.get(key.lstrip("!").strip().upper())
        if name is None:
            raise TMVAOptionError(
                f"{head}: unknown option {key.lstrip('!')!r}; expected one of {', '.join((*_FLAGS, *_VALUED))}"
            )
        out_key = _FLAGS.get(name) or _VALUED[name]
        if out_key in result:
            raise TMVAOptionError(f"{head}: {name} is already given as option {positions[out_key]}; keep one")
        positions[out_key] = i
        if name in _FLAGS:
            if negated and eq:
                raise TMVAOptionError(f"{head}: write either !{name} or {name}=False, not both")
            if eq:
                flag, expected = _v_bool(value)
                if expected is not None:
                    raise TMVAOptionError(f"{head}: {name} must be {expected}; got {value!r}")
            else:
                flag = not negated
            result[out_key] = flag
            continue
        if negated:
            raise TMVAOptionError(f"{head}: '!' only negates flags such as !H; {name} takes a value")
        if not eq or not value:
            raise TMVAOptionError(f"{head}: {name} needs a value, written {name}=<value>")
        try:
            if name == "InputLayout":
                parsed = parse_input_layout(value)
            elif name == "Layout":
                parsed = parse_layout(value)
            elif name == "TrainingStrategy":
                parsed = parse_training_strategy(value)
                parsed = parsed if isinstance(parsed, list) else [parsed]
            else:
                parsed, expected = _VALUE_PARSERS[name](value)
                if expected is not None:
                    raise TMVAOptionError(f"{name} must be {expected}; got {value!r}")
        except TMVAOptionError as exc:
            nested = name in ("InputLayout", "Layout", "TrainingStrategy")
            raise TMVAOptionError(f"{f'option {i} ({name})' if nested else head}: {exc}") from None
        result[out_key] = parsed
    if "layout" in result:
        try:
            check_layout(result["layout"], result.get("input_layout"))
        except TMVAOptionError as exc:
            raise TMVAOptionError(f"option {positions['layout']} (Layout): {exc}") from None
    return result
