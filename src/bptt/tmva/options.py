"""TMVA's ``TrainingStrategy`` (one :class:`TrainingStrategy` per phase) and the whole ``MethodDL``
booking string (:func:`parse_options`).

Size limits: a booking string may describe a network up to these sizes; beyond them it is refused
with a :class:`~bptt.tmva.TMVAOptionError` naming the token, before anything is allocated
(:func:`bptt.tmva.check_layout`, which :func:`bptt.tmva.layers.build_layers` calls before building):

======================================  =====================  ==================================
what                                    largest accepted        constant (``bptt.tmva._common``)
======================================  =====================  ==================================
units of one layer (state size, input    65 536                 ``MAX_UNITS``
size, dense width, RESHAPE dimension)
values per event (InputLayout's          2**20 = 1 048 576      ``MAX_INPUTS``
depth × height × width, and after any
layer)
layers in a Layout                       1 024                  ``MAX_LAYERS``
trainable parameters of the network      2**24 = 16 777 216     ``MAX_PARAMETERS``
                                         (64 MiB in float32)
characters of one width formula          200                    ``MAX_FORMULA_LENGTH``
======================================  =====================  ==================================

Parsing itself allocates memory in proportion to the string (its tokens and LayerSpecs, a few
kB for a booking string), never the network; numbers of more than 18 digits are not converted
(they are above every limit). The fuzz test (``tests/tmva/test_tmva_fuzz.py``) checks both on
mutated booking strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._common import TMVAOptionError, _float, _int, _positive_int, _strip_prefix, warn
from .layout import check_layout, input_shape, parse_batch_layout, parse_layout

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
        adam_beta1, adam_beta2, adam_eps: ``ADAM_beta1`` (0.9), ``ADAM_beta2`` (0.999),
            ``ADAM_eps`` (1e-7), read by TMVA for ``Optimizer=ADAM`` only (since ROOT 6.24);
        adagrad_eps: ``ADAGRAD_eps`` (1e-8); rmsprop_rho, rmsprop_eps: ``RMSPROP_rho`` (0.9),
            ``RMSPROP_eps`` (1e-7); adadelta_rho, adadelta_eps: ``ADADELTA_rho`` (0.95),
            ``ADADELTA_eps`` (1e-8): each read for its own optimizer only. A key of another optimizer
            than the phase's is ignored, as in TMVA, with a :class:`~bptt.tmva.TMVAOptionWarning`.
            TMVA adds its epsilons where TensorFlow and Keras do (Adam: to √v without the bias
            correction; RMSprop and Adagrad: inside the square root); bptt's optimizers add them
            where PyTorch does, a difference that matters only when ε is comparable to the gradients.
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
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-7
    adagrad_eps: float = 1e-8
    rmsprop_rho: float = 0.9
    rmsprop_eps: float = 1e-7
    adadelta_rho: float = 0.95
    adadelta_eps: float = 1e-8

    def optimizer_options(self) -> dict[str, float]:
        """The phase's optimizer hyper-parameters under the names of :mod:`bptt.optim`'s classes
        (Adam's beta1, beta2, eps; Adagrad's eps; RMSprop's alpha, eps; Adadelta's rho, eps).

        >>> TrainingStrategy(optimizer="rmsprop", rmsprop_rho=0.8).optimizer_options()
        {'alpha': 0.8, 'eps': 1e-07}
        """
        return {name: getattr(self, attr) for name, attr in _OPTIMIZER_OPTIONS[self.optimizer]}


# ──────────────────────────────────────────────────────────────────────── TrainingStrategy

_OPTIMIZERS = {"SGD": "sgd", "ADAM": "adam", "ADAGRAD": "adagrad", "RMSPROP": "rmsprop", "ADADELTA": "adadelta"}
#: bptt optimizer → (its hyper-parameter, TrainingStrategy attribute) for each TMVA key it reads.
_OPTIMIZER_OPTIONS = {
    "sgd": (),
    "adam": (("beta1", "adam_beta1"), ("beta2", "adam_beta2"), ("eps", "adam_eps")),
    "adagrad": (("eps", "adagrad_eps"),),
    "rmsprop": (("alpha", "rmsprop_rho"), ("eps", "rmsprop_eps")),
    "adadelta": (("rho", "adadelta_rho"), ("eps", "adadelta_eps")),
}


def _v_positive_float(text):
    x = _float(text)
    return (x, None) if x is not None and x > 0 else (None, "a positive number")


def _v_nonneg_float(text):
    x = _float(text)
    return (x, None) if x is not None and x >= 0 else (None, "a number >= 0")


def _v_momentum(text):
    x = _float(text)
    return (x, None) if x is not None and 0 <= x < 1 else (None, "a number in [0, 1)")


def _v_unit(text):
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
    "ADAM_beta1": ("adam_beta1", _v_unit, "Adam's first-moment decay"),
    "ADAM_beta2": ("adam_beta2", _v_unit, "Adam's second-moment decay"),
    "ADAM_eps": ("adam_eps", _v_positive_float, "Adam's epsilon"),
    "ADAGRAD_eps": ("adagrad_eps", _v_positive_float, "Adagrad's epsilon"),
    "RMSPROP_rho": ("rmsprop_rho", _v_unit, "RMSprop's decay"),
    "RMSPROP_eps": ("rmsprop_eps", _v_positive_float, "RMSprop's epsilon"),
    "ADADELTA_rho": ("adadelta_rho", _v_unit, "Adadelta's decay"),
    "ADADELTA_eps": ("adadelta_eps", _v_positive_float, "Adadelta's epsilon"),
}
_STRATEGY_KEYS_UPPER = {k.upper(): k for k in _STRATEGY_KEYS}
#: A value followed by another Key=Value without the ',' between them: "20DropConfig=0.0+0.".
_GLUED = re.compile(r"(?P<number>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?P<rest>(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=.*)")


def _glued(canonical: str, value: str, parse, head: str):
    """TMVA reads ``MaxEpochs=20DropConfig=0.0`` (a ',' missing, as in TMVA_RNN_Classification's
    dense network) as MaxEpochs=20: its C++ atoi/atof stop at the first letter, and the rest is
    lost. bptt reads it the same way and says so; anything else after a number is an error."""
    m = _GLUED.fullmatch(value)
    if m is None or m.group("key").upper() not in _STRATEGY_KEYS_UPPER:
        return None
    parsed, expected = parse(m.group("number"))
    if expected is not None:
        return None
    warn(
        f"{head}: {value!r} looks like two entries without a ',' between them; TMVA reads "
        f"{canonical}={m.group('number')} and ignores {m.group('rest')!r} (its atoi/atof stop at the first "
        f"letter), and so does bptt; write '{canonical}={m.group('number')},{m.group('rest')}' to set both"
    )
    return parsed


def _parse_phase(text: str, phase: int, n_phases: int) -> TrainingStrategy:
    where = f"TrainingStrategy phase {phase}" if n_phases > 1 else "TrainingStrategy"
    if not text.strip():
        raise TMVAOptionError(f"{where}: empty phase; remove the extra '|' or write Key=Value pairs")
    values: dict[str, Any] = {}
    entries: dict[str, str] = {}
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
            parsed = _glued(canonical, value, parse, head)
            if parsed is None:
                raise TMVAOptionError(f"{head}: {canonical} must be {expected} ({meaning}); got {value!r}")
        values[name] = parsed
        entries[name] = head
    strategy = TrainingStrategy(**values)
    used = {attr for _, attr in _OPTIMIZER_OPTIONS[strategy.optimizer]}
    for key, (name, _, _) in _STRATEGY_KEYS.items():
        if "_" in key and name in values and name not in used:
            warn(
                f"{entries[name]}: {key} is read for Optimizer={key.split('_')[0]} only and this phase's optimizer "
                f"is {strategy.optimizer.upper()}; TMVA ignores it, and so does bptt"
            )
    return strategy


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
_ARCHITECTURES = ("CPU", "GPU", "STANDARD", "OPENCL", "CUDNN")
_VERBOSITY = ("DEFAULT", "DEBUG", "VERBOSE", "INFO", "WARNING", "ERROR", "FATAL")

#: Boolean flags (``H``, ``!H``, ``H=False``) → result key.
_FLAGS = {
    "H": "help",
    "V": "verbose",
    "CreateMVAPdfs": "create_mva_pdfs",
    "IgnoreNegWeightsInTraining": "ignore_neg_weights_in_training",
}
#: The options with a list of values, in TMVA's order: a bare value such as ``CPU`` sets the option
#: that has it (TMVA's "loose" option reading, Configurable::ParseOptions).
_CHOICES = {
    "ErrorStrategy": _ERROR_STRATEGIES,
    "WeightInitialization": _WEIGHT_INITS,
    "Architecture": _ARCHITECTURES,
    "VerbosityLevel": _VERBOSITY,
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


_MAX_SEED = 2**31 - 1  # TMVA's RandomSeed is a C++ int


def _random_seed(value: str):
    n = _int(value)
    if n is None:
        return None, "a non-negative integer"
    return (n, None) if n <= _MAX_SEED else (None, f"at most {_MAX_SEED} (TMVA's seed is a C++ int)")


def _free_text(value: str):
    return value, None


_VALUE_PARSERS = {
    "ErrorStrategy": lambda s: _choice(s, _ERROR_STRATEGIES),
    "VarTransform": _free_text,
    "WeightInitialization": lambda s: _choice(s, _WEIGHT_INITS),
    "ValidationSize": _validation_size,
    "RandomSeed": _random_seed,
    "Architecture": lambda s: _choice(s, _ARCHITECTURES),
    "VerbosityLevel": lambda s: _choice(s, _VERBOSITY),
}


def _split(text: str) -> list[tuple[int, str, str, str, str]]:
    """The booking string's options as (position, item, key, whether it has a value, value)."""
    items = []
    for i, raw in enumerate(text.split(":"), start=1):
        item = raw.strip()
        if not item:
            if text.strip() == "":
                break
            raise TMVAOptionError(f"option {i} {item!r}: empty option; remove the extra ':'")
        key, eq, value = item.partition("=")
        loose = [name for name, allowed in _CHOICES.items() if key.strip().upper() in allowed]
        if loose and not eq:  # (no option is called like a value)
            key, eq, value = loose[0], True, key  # TMVA: a bare 'CPU' is Architecture=CPU
        items.append((i, item, key.strip(), bool(eq), value.strip()))
    return items


def _parse_value(name: str, value: str, n_inputs: int | None, n_outputs: int):
    if name == "InputLayout":
        return input_shape(value)
    if name == "Layout":
        return parse_layout(value, n_inputs=n_inputs, n_outputs=n_outputs)
    if name == "TrainingStrategy":
        parsed = parse_training_strategy(value)
        return parsed if isinstance(parsed, list) else [parsed]
    if name == "BatchLayout":
        return parse_batch_layout(value)
    parsed, expected = _VALUE_PARSERS[name](value)
    if expected is not None:
        raise TMVAOptionError(f"{name} must be {expected}; got {value!r}")
    return parsed


def parse_options(text: str, *, n_inputs: int | None = None, n_outputs: int = 1) -> dict[str, Any]:
    """Parse a whole TMVA ``MethodDL`` booking string into a dict.

    The string is split at ``:`` (``Layout`` and ``TrainingStrategy`` values contain none). Only
    the options present appear in the result, under these keys:

    - flags ``H``, ``V``, ``CreateMVAPdfs``, ``IgnoreNegWeightsInTraining`` (``!`` negates, or
      ``=True``/``=False``) → ``help``, ``verbose``, ``create_mva_pdfs``,
      ``ignore_neg_weights_in_training`` (bool);
    - ``ErrorStrategy``, ``WeightInitialization``, ``Architecture``, ``VerbosityLevel`` → the TMVA
      name in upper case, checked against TMVA's choices; as in TMVA, one of these values written
      alone (``…:CPU``) sets its option (``Architecture=CPU``); ``VarTransform`` → the text as written;
    - ``ValidationSize`` → a float fraction (``0.2`` or ``20%``) or an int number of events;
    - ``RandomSeed`` → int; ``InputLayout`` → ``(T, F)`` (:func:`bptt.tmva.parse_input_layout`);
      ``BatchLayout`` → ``(depth, height, width)``, 0 where not given;
    - ``Layout`` → list of :class:`LayerSpec`; ``TrainingStrategy`` → list of
      :class:`TrainingStrategy` (one per phase).

    ``n_inputs``: the number of input variables, when known (TMVA's N in dense widths such as
    ``N+10``; without InputLayout TMVA's input is 1|1|n_inputs); with InputLayout, its depth ×
    height × width must equal it. ``n_outputs``: the width of a dense layer written with 0 or
    none (1 for a binary classifier; the number of classes or targets otherwise).

    The Layout is checked against the InputLayout (:func:`check_layout`: shapes and size limits).
    Option names are matched case-insensitively; an unknown or repeated option is an error.

    >>> opts = parse_options("!H:V:RandomSeed=1234:InputLayout=10|30:Layout=LSTM|10|30|10|0|1,LINEAR:"
    ...                      "TrainingStrategy=BatchSize=100,MaxEpochs=20:CPU")
    >>> opts["help"], opts["verbose"], opts["input_layout"], len(opts["layout"]), opts["architecture"]
    (False, True, (10, 30), 2, 'CPU')
    """
    if not isinstance(text, str):
        raise TMVAOptionError(f"parse_options: expected a string; got {type(text).__name__} {text!r}")
    items = _split(text)
    # InputLayout first, wherever it is: it gives N to the Layout's dense widths.
    items.sort(key=lambda it: it[2].upper() != "INPUTLAYOUT")
    result: dict[str, Any] = {}
    positions: dict[str, int] = {}
    shape = None
    for i, item, key, eq, value in items:
        head = f"option {i} {item!r}"
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
        inputs = n_inputs if shape is None else shape[0] * shape[1] * shape[2]
        try:
            parsed = _parse_value(name, value, inputs, n_outputs)
        except TMVAOptionError as exc:
            nested = name in ("InputLayout", "Layout", "TrainingStrategy", "BatchLayout")
            raise TMVAOptionError(f"{f'option {i} ({name})' if nested else head}: {exc}") from None
        if name == "InputLayout":
            shape, parsed = parsed, (parsed[0], parsed[1] * parsed[2])
            if n_inputs is not None and parsed[0] * parsed[1] != n_inputs:
                raise TMVAOptionError(
                    f"option {i} (InputLayout): InputLayout={value} says {parsed[0]} time step{'s' if parsed[0] != 1 else ''} "
                    f"of {parsed[1]} features, {parsed[0] * parsed[1]} values per event; the data has {n_inputs} "
                    f"input variables"
                )
        result[out_key] = parsed
    if shape is None and n_inputs is not None:
        shape = (1, 1, n_inputs)  # TMVA's default InputLayout
    if "layout" in result:
        try:
            check_layout(result["layout"], None if shape is None else (shape[0], shape[1] * shape[2]))
        except TMVAOptionError as exc:
            raise TMVAOptionError(f"option {positions['layout']} (Layout): {exc}") from None
    return result
