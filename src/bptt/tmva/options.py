"""TMVA's ``TrainingStrategy`` (one :class:`TrainingStrategy` per phase) and the whole ``MethodDL``
booking string (:func:`parse_options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._common import _INT, TMVAOptionError, _float, _positive_int, _strip_prefix
from .layout import check_layout, parse_input_layout, parse_layout

__all__ = ["TrainingStrategy", "parse_training_strategy", "parse_options"]


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
