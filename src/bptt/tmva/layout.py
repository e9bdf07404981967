"""TMVA's ``InputLayout``, ``BatchLayout`` and ``Layout`` strings: :class:`LayerSpec` per layer
token, and :func:`check_layout`, which follows the shape of an event through the layers, refuses
layers that cannot run one after the other and networks beyond bptt's size limits (the token
grammar is in :mod:`bptt.tmva`'s docstring; the limits in :mod:`bptt.tmva.options`').

TMVA's reading, from ``MethodDL`` (ParseInputLayout, ParseBatchLayout, ParseDenseLayer,
ParseRecurrentLayer), is followed; where TMVA would go on
with a wrong or undefined network (a negative size, a second width in one DENSE token, a recurrent
layer after RESHAPE|FLAT) bptt refuses with a message that names the token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._common import (
    MAX_INPUTS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_UNITS,
    TMVAOptionError,
    _int,
    _positive_int,
    _strip_prefix,
    evaluate_width,
    looks_like_width,
)

__all__ = ["LayerSpec", "parse_input_layout", "input_shape", "parse_batch_layout", "parse_layout", "check_layout",
           "count_parameters"]


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


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# ──────────────────────────────────────────────────────────────────────────── InputLayout


def input_shape(text: str) -> tuple[int, int, int]:
    """TMVA's ``InputLayout`` as its ``(depth, height, width)``.

    TMVA (MethodDL::ParseInputLayout) pads a short layout with 1s: one field ``W`` is ``1|1|W`` (a
    dense network's W input variables), two fields ``T|W`` are ``T|1|W`` (a recurrent network's T
    time steps of W features), three are ``depth|height|width`` as written.

    >>> input_shape("7"), input_shape("10|30"), input_shape("InputLayout=1|1|7")
    ((1, 1, 7), (10, 1, 30), (1, 1, 7))
    """
    value = _strip_prefix(text, "InputLayout", "parse_input_layout")
    fields = [f.strip() for f in value.split("|")]
    where = f"InputLayout {value!r}"
    if not 1 <= len(fields) <= 3:
        raise TMVAOptionError(
            f"{where}: expected 1 to 3 numbers depth|height|width: 'W' (W input variables, as 1|1|W), "
            f"'T|W' (T time steps of W features, as T|1|W) or 'D|H|W'; got {len(fields)} fields"
        )
    names = {1: ("number of input variables",), 2: ("number of time steps", "number of features"),
             3: ("depth", "height", "width")}[len(fields)]
    numbers = []
    for i, (f, name) in enumerate(zip(fields, names), start=1):
        n = _positive_int(f)
        if n is None:
            raise TMVAOptionError(f"{where}: field {i} must be a positive integer ({name}); got {f!r}")
        numbers.append(n)
    shape = {1: lambda w: (1, 1, w), 2: lambda t, w: (t, 1, w), 3: lambda d, h, w: (d, h, w)}[len(numbers)](*numbers)
    if math.prod(shape) > MAX_INPUTS:
        raise TMVAOptionError(
            f"{where}: {'×'.join(map(str, shape))} = {math.prod(shape)} values per event is above bptt's "
            f"limit of {MAX_INPUTS} (2**20) values per event"
        )
    return shape


def parse_input_layout(text: str) -> tuple[int, int]:
    """Parse ``InputLayout`` into ``(T, F)``: time steps and features per step, as TMVA feeds them.

    TMVA's InputLayout is ``depth|height|width`` (:func:`input_shape`) and its batches of a
    recurrent or dense network hold, per event, ``depth`` rows of ``height × width`` values: ``T``
    is the depth, ``F`` the height times the width. So ``10|30`` and ``10|1|30`` (the RNN
    tutorial's) are 10 time steps of 30 features; ``1|1|7`` (the Higgs tutorial's dense network)
    and ``7`` are one step of 7 input variables; ``1|10|30`` is one step of 300 values.

    >>> parse_input_layout("InputLayout=10|1|30"), parse_input_layout("10|30"), parse_input_layout("1|1|7")
    ((10, 30), (10, 30), (1, 7))
    """
    depth, height, width = input_shape(text)
    return depth, height * width


# ──────────────────────────────────────────────────────────────────────────── BatchLayout


def parse_batch_layout(text: str) -> tuple[int, int, int]:
    """``BatchLayout`` as TMVA's ``(depth, height, width)`` of a batch; missing fields are 0, TMVA's
    "not given" (MethodDL::ParseBatchLayout). bptt takes its batches from BatchSize; the value is
    checked against InputLayout and BatchSize as TMVA's TrainDeepNet checks it where the network is
    built (:func:`bptt.tmva.network.plan_from_options`).

    >>> parse_batch_layout("BatchLayout=1|128|7"), parse_batch_layout("100|10")
    ((1, 128, 7), (100, 10, 0))
    """
    value = _strip_prefix(text, "BatchLayout", "parse_batch_layout")
    fields = [f.strip() for f in value.split("|")]
    where = f"BatchLayout {value!r}"
    if not 1 <= len(fields) <= 3:
        raise TMVAOptionError(f"{where}: expected 1 to 3 numbers depth|height|width; got {len(fields)} fields")
    numbers = []
    for i, f in enumerate(fields, start=1):
        n = _int(f)
        if n is None:
            raise TMVAOptionError(f"{where}: field {i} must be an integer >= 0; got {f!r}")
        if n > MAX_INPUTS:
            raise TMVAOptionError(f"{where}: field {i} is {f}, above bptt's limit of {MAX_INPUTS}")
        numbers.append(n)
    return tuple(numbers + [0] * (3 - len(numbers)))


# ──────────────────────────────────────────────────────────────────────────────── Layout

#: TMVA activation name → bptt activation name (TMVA writes LINEAR; IDENTITY is bptt's own name).
_ACTIVATIONS = {"TANH": "tanh", "RELU": "relu", "SIGMOID": "sigmoid", "IDENTITY": "identity", "LINEAR": "identity"}
#: TMVA's other activations (ParseDenseLayer): FTANH is its fast approximation of tanh.
_UNSUPPORTED_ACTIVATIONS = ("SOFTSIGN", "GAUSS", "SYMMRELU", "FTANH")
_UNSUPPORTED_LAYERS = ("CONV", "MAXPOOL", "BNORM", "BATCHNORM")
_ACT_LIST = "TANH, RELU, SIGMOID, IDENTITY or LINEAR"
_RECURRENT_FIELDS = (
    ("state_size", "state size"),
    ("input_size", "input size: features per time step"),
    ("time_steps", "number of time steps"),
)
_RECURRENT_FLAGS = (("remember_state", "rememberState"), ("return_sequence", "returnSequence"))
_RECURRENT = ("rnn", "lstm", "gru")


class _Token:
    """A layout token with its position, for error messages."""

    def __init__(self, token: str, position: int):
        self.token = token
        self.position = position
        self.fields = [f.strip() for f in token.split("|")]
        self.n_fields = f"{len(self.fields)} field{_s(len(self.fields))}"

    def error(self, what: str) -> TMVAOptionError:
        return TMVAOptionError(f"Layout token {self.position} {self.token!r}: {what}")

    def positive_int(self, i: int, meaning: str) -> int:
        f = self.fields[i - 1]
        n = _positive_int(f)
        if n is None:
            raise self.error(f"field {i} must be a positive integer ({meaning}); got {f!r}")
        if n > MAX_UNITS:
            raise self.error(f"field {i} ({meaning}) is {f}, above bptt's limit of {MAX_UNITS} units per layer")
        return n

    def flag(self, i: int, meaning: str) -> bool:
        f = self.fields[i - 1]
        if f not in ("0", "1"):
            raise self.error(f"field {i} must be 0 or 1 ({meaning}); got {f!r}")
        return f == "1"

    def activation(self, i: int) -> str:
        """Field i, one of TMVA's activation names, as bptt's (refused if bptt lacks it)."""
        name = self.fields[i - 1].upper()
        if name in _UNSUPPORTED_ACTIVATIONS:
            raise self.error(
                f"field {i}: activation {self.fields[i - 1]!r} is a TMVA activation that bptt does not "
                f"support; use one of {_ACT_LIST}"
            )
        return _ACTIVATIONS[name]

    def width(self, i: int, n_inputs: int | None, n_outputs: int) -> int:
        """Field i as a dense width: an integer or a formula of N, truncated to an int as TMVA does;
        0 is TMVA's "the number of outputs"."""
        f = self.fields[i - 1]
        hint = "write a positive integer or a formula of N (the number of input variables), e.g. N+10 or 2*N"
        try:
            value = evaluate_width(f, n_inputs)
        except LookupError:
            raise self.error(
                f"field {i}: the width {f!r} uses N, the number of input variables, which is not known here: "
                f"give InputLayout (e.g. InputLayout=1|1|7 for 7 variables) or the number of inputs"
            ) from None
        except ValueError as exc:
            raise self.error(f"field {i}: the width {f!r} cannot be evaluated ({exc}); {hint}") from None
        with_n = f" with N = {n_inputs}" if any(c in f for c in "Nn") else ""
        if value < 0 or value >= MAX_UNITS + 1:
            what = f"above bptt's limit of {MAX_UNITS} units per layer" if value >= MAX_UNITS + 1 else "negative"
            raise self.error(f"field {i}: the width {f!r} is {value:g}{with_n}, {what}; {hint}")
        return int(value) or n_outputs  # TMVA: width = (int) value; a width of 0 is the output layer's


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


def _is_activation(field: str) -> bool:
    return field.upper() in _ACTIVATIONS or field.upper() in _UNSUPPORTED_ACTIVATIONS


def _parse_dense(t: _Token, first: int, n_inputs: int | None, n_outputs: int) -> dict:
    """A dense token's fields from ``first`` on: a width and an activation in either order (TMVA's
    ``DENSE|64|TANH`` and ``DENSE|TANH|64``), each optional: TANH without an activation, the number
    of outputs without a width (TMVA: a width of 0 is the output layer's)."""
    fields = t.fields[first - 1:]
    kinds = ["act" if _is_activation(f) else "width" if looks_like_width(f) else "?" for f in fields]
    width_at = activation_at = None
    units, activation = n_outputs, "tanh"
    for i, (f, kind) in enumerate(zip(fields, kinds), start=first):
        if kind == "?":
            others = kinds[: i - first] + kinds[i - first + 1:]
            if "width" in others:
                raise t.error(f"field {i} must be an activation ({_ACT_LIST}); got {f!r}")
            if "act" in others:
                raise t.error(f"field {i} must be a positive integer (number of units); got {f!r}")
            raise t.error(f"field {i} must be a number of units or an activation ({_ACT_LIST}); got {f!r}")
        if kind == "act":
            if activation_at is not None:
                raise t.error(f"field {i}: a second activation {f!r} (field {activation_at} is one); a dense "
                              f"layer takes one width and one activation")
            activation, activation_at = t.activation(i), i
        else:
            if width_at is not None:
                raise t.error(f"field {i}: a second width {f!r} (field {width_at} is one); a dense layer takes "
                              f"one width and one activation")
            units, width_at = t.width(i, n_inputs, n_outputs), i
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


def _parse_token(token: str, position: int, n_inputs: int | None, n_outputs: int) -> LayerSpec:
    t = _Token(token, position)
    if not token:
        raise t.error("empty layer; remove the extra ',' or write a layer such as DENSE|64|TANH")
    kind = t.fields[0].upper()
    if kind in ("RNN", "LSTM", "GRU"):
        return LayerSpec(kind.lower(), _parse_recurrent(t, kind), token, position)
    if kind == "DENSE":
        return LayerSpec("dense", _parse_dense(t, 2, n_inputs, n_outputs), token, position)
    if kind == "RESHAPE":
        k, params = _parse_reshape(t)
        return LayerSpec(k, params, token, position)
    if _is_activation(t.fields[0]) or looks_like_width(t.fields[0]):
        # No layer type: a dense layer, as in TMVA (a legacy of its older DNN interface).
        return LayerSpec("dense", _parse_dense(t, 1, n_inputs, n_outputs), token, position)
    if kind in _UNSUPPORTED_LAYERS:
        raise t.error(
            f"layer type {t.fields[0]!r} is a TMVA layer that bptt does not support; use RNN, LSTM, GRU, "
            f"DENSE or RESHAPE"
        )
    raise t.error(
        f"unknown layer type {t.fields[0]!r}; expected RNN, LSTM, GRU, DENSE, RESHAPE, or an activation "
        f"({_ACT_LIST}) or a width for a dense layer"
    )


def parse_layout(text: str, n_inputs: int | None = None, n_outputs: int = 1) -> list[LayerSpec]:
    """Parse a TMVA ``Layout`` string (with or without ``Layout=``) into :class:`LayerSpec` objects.

    ``n_inputs`` is TMVA's N, the number of input variables (InputLayout's depth × height ×
    width), for widths written as formulas (``DENSE|N+10|TANH``); ``n_outputs`` the width of a
    dense layer written without one or with 0 (TMVA's output layer: 1 for a binary classifier, the
    number of classes or regression targets otherwise).

    >>> [l.kind for l in parse_layout(" Layout=GRU|8|30|10|0|1|1, RESHAPE|FLAT, LINEAR ")]
    ['gru', 'flatten', 'dense']
    >>> [l.params["units"] for l in parse_layout("DENSE|TANH|64,DENSE|(N+100)*2|RELU,N/2,DENSE|0|LINEAR", n_inputs=7)]
    [64, 214, 3, 1]
    >>> parse_layout("DENSE|sixty|TANH")
    Traceback (most recent call last):
    ...
    bptt.tmva.TMVAOptionError: Layout token 1 'DENSE|sixty|TANH': field 2 must be a positive integer (number of units); got 'sixty'
    """
    value = _strip_prefix(text, "Layout", "parse_layout")
    if not value:
        raise TMVAOptionError("Layout: empty layout; expected comma-separated layers such as 'LSTM|10|30|10|0|1,LINEAR'")
    tokens = value.split(",")
    if len(tokens) > MAX_LAYERS:
        raise TMVAOptionError(f"Layout: {len(tokens)} layers, above bptt's limit of {MAX_LAYERS} layers")
    return [_parse_token(tok.strip(), i, n_inputs, n_outputs) for i, tok in enumerate(tokens, start=1)]


# ───────────────────────────────────────────────────────────────────────── checking shapes


def _describe(layer: LayerSpec) -> str:
    return f"token {layer.position} {layer.token!r}"


def _check_recurrent(layer: LayerSpec, prev: LayerSpec | None, shape, input_layout) -> None:
    p, kind = layer.params, layer.kind.upper()
    a_kind = {"LSTM": "an LSTM", "RNN": "an RNN"}.get(kind, f"a {kind}")
    head = f"Layout token {layer.position} {layer.token!r}"
    if len(shape) != 2:
        if prev is not None and prev.kind in _RECURRENT:
            why = (f"{_describe(prev)} returns only its last state (returnSequence=0): set its field 6 to 1 to "
                   f"feed a stacked {kind}")
        else:
            why = (f"{_describe(prev)} gives one vector of {shape[0]} values per event, not a sequence; put "
                   f"RESHAPE|FLAT after the last recurrent layer")
        raise TMVAOptionError(f"{head}: {a_kind} needs a sequence (time steps × features), but {why}")
    T, F = shape
    if prev is None:
        source = f"InputLayout={input_layout[0]}|{input_layout[1]} gives"
        features, steps = f"{F} features per time step; make them equal", f"{T} time steps; make them equal"
    elif prev.kind in _RECURRENT:
        q = prev.params
        if p["input_size"] != F:
            raise TMVAOptionError(
                f"{head}: field 3 (input size) is {p['input_size']} but the previous {prev.kind.upper()} (token "
                f"{prev.position}) has state size {q['state_size']}; a stacked {kind} takes the previous state as input"
            )
        source = f"the previous {prev.kind.upper()} (token {prev.position}) has"
        steps = f"{T}; make them equal"
    else:
        source = f"{_describe(prev)} gives"
        features, steps = f"{F} features per time step; make them equal", f"{T} time steps; make them equal"
    if p["input_size"] != F:
        raise TMVAOptionError(f"{head}: field 3 (input size) is {p['input_size']} but {source} {features}")
    if p["time_steps"] != T:
        raise TMVAOptionError(f"{head}: field 4 (time steps) is {p['time_steps']} but {source} {steps}")


def _recurrent_parameters(kind: str, n_in: int, h: int) -> int:
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    return gates * h * (n_in + h + 1) + (gates * h if kind == "gru" else 0)  # the GRU's recurrent bias b_u


def count_parameters(layers: list[LayerSpec], input_layout: tuple[int, int] | None = None) -> int | None:
    """The number of trainable parameters of the network (None when a dense layer's input size is
    unknown: no InputLayout and no recurrent layer before it). Calls :func:`check_layout`."""
    return check_layout(layers, input_layout)


def check_layout(layers: list[LayerSpec], input_layout: tuple[int, int] | None = None) -> int | None:
    """Check that the layers can run one after the other on events of ``input_layout`` ``(T, F)``
    and that the network is within bptt's size limits; raise :class:`TMVAOptionError` if not.
    Returns the number of trainable parameters (None when it cannot be known without InputLayout).

    The shape of one event is followed through the layers (as :func:`bptt.tmva.layers.build_layers`
    builds them): a recurrent layer needs a sequence whose time steps and features are its fields 4
    and 3 (the InputLayout's, or the previous layer's); RESHAPE|FLAT makes one vector of the
    sequence, after which no recurrent layer can follow; RESHAPE|d|h|w needs d·h·w values; a dense
    layer acts on the last axis. Without ``input_layout`` the shape is known from the first
    recurrent layer on.
    """
    if len(layers) > MAX_LAYERS:
        raise TMVAOptionError(f"Layout: {len(layers)} layers, above bptt's limit of {MAX_LAYERS} layers")
    shape = tuple(input_layout) if input_layout is not None else None
    total: int | None = 0
    prev = None
    for layer in layers:
        p = layer.params
        if layer.kind in _RECURRENT:
            if shape is not None:  # (without InputLayout the first layer says what it takes)
                _check_recurrent(layer, prev, shape, input_layout)
            if total is not None:  # its input size is the one checked against the shape
                total += _recurrent_parameters(layer.kind, p["input_size"], p["state_size"])
            shape = (p["time_steps"], p["state_size"]) if p["return_sequence"] else (p["state_size"],)
        elif layer.kind == "dense":
            if shape is None:
                total = None
            else:
                if total is not None:
                    total += (shape[-1] + 1) * p["units"]
                shape = shape[:-1] + (p["units"],)
        elif layer.kind == "flatten":
            shape = None if shape is None else (math.prod(shape),)
        elif layer.kind == "reshape":
            target = (p["depth"], p["height"], p["width"])
            if shape is not None and math.prod(shape) != math.prod(target):
                raise TMVAOptionError(
                    f"Layout token {layer.position} {layer.token!r}: RESHAPE to {'|'.join(map(str, target))} needs "
                    f"{math.prod(target)} values per event, but {_describe(prev) if prev else 'InputLayout'} gives "
                    f"{math.prod(shape)} ({'×'.join(map(str, shape))})"
                )
            shape = tuple(s for s in target if s != 1) or (1,)
        if total is not None and total > MAX_PARAMETERS:
            raise TMVAOptionError(
                f"Layout token {layer.position} {layer.token!r}: the network has {total} trainable parameters up to "
                f"this layer, above bptt's limit of {MAX_PARAMETERS} (2**24; 64 MiB in float32); use fewer units"
            )
        if shape is not None and math.prod(shape) > MAX_INPUTS:
            raise TMVAOptionError(
                f"Layout token {layer.position} {layer.token!r}: it gives {math.prod(shape)} values per event, above "
                f"bptt's limit of {MAX_INPUTS} (2**20)"
            )
        prev = layer
    return total
