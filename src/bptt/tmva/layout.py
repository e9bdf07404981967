"""TMVA's ``InputLayout`` and ``Layout`` strings: :class:`LayerSpec` per layer token, and
:func:`check_layout`, which checks that the layers fit together (the token grammar is in
:mod:`bptt.tmva`'s docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import TMVAOptionError, _positive_int, _strip_prefix

__all__ = ["LayerSpec", "parse_input_layout", "parse_layout", "check_layout"]


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
