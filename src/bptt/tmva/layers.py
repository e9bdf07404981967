"""The layers a TMVA ``Layout`` / ``InputLayout`` pair describes (what
:meth:`bptt.model.Sequential.from_tmva` is made of).

Recurrent tokens become LSTM/GRU/RNN layers (``rememberState`` → ``stateful``,
``returnSequence`` → ``return_sequences``), ``RESHAPE|FLAT`` → Flatten, ``DENSE|n|ACT`` → Dense,
and a bare ``LINEAR`` → the output Dense layer with one unit. ``dropout``: TMVA's DropConfig, one
dropout probability per layer, applied to that layer's input (TMVA's MethodDL turns each value p
into a keep-probability 1 − p; 0 means no dropout).
"""

from __future__ import annotations

import numpy as np

from ..layers import GRU, LSTM, RNN, Dense, Flatten, Layer, Reshape
from ..layers.dropout import Dropout
from .layout import LayerSpec, check_layout, parse_input_layout, parse_layout

__all__ = ["build_layers"]

_RECURRENT = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
_KINDS = ("lstm", "gru", "rnn", "flatten", "reshape", "dense")


def build_layers(layout: str | list[LayerSpec], input_layout: str | tuple[int, int], *, seed=0, dtype=np.float32,
                 dropout=None) -> list[Layer]:
    """The layers of a ``Layout`` (a string, or the :class:`LayerSpec` list that
    :func:`bptt.tmva.parse_layout` or :func:`bptt.tmva.parse_options` gives: no second parse) on
    inputs of ``InputLayout`` ``(T, F)``, with seeds drawn from ``seed`` in layer order.
    """
    specs = layout if isinstance(layout, list) else parse_layout(layout)
    T, F = input_layout if isinstance(input_layout, tuple) else parse_input_layout(input_layout)
    check_layout(specs, (T, F))
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    shape: tuple[int, ...] = (T, F)  # per-sample shape flowing through the network
    rates = list(dropout or [])
    for k, spec in enumerate(specs):
        if k < len(rates) and rates[k] > 0.0:
            layers.append(Dropout(rates[k], seed=int(rng.integers(2**31))))
        p = spec.params
        sub_seed = int(rng.integers(2**31))
        if spec.kind in ("lstm", "gru", "rnn"):
            options = {"reset_after": p["reset_after"]} if spec.kind == "gru" else {}
            if spec.kind == "rnn":
                options["activation"] = p.get("activation", "tanh")
            layers.append(
                _RECURRENT[spec.kind.upper()](
                    shape[-1], p["state_size"], return_sequences=p["return_sequence"], stateful=p["remember_state"],
                    dtype=dtype, seed=sub_seed, **options,
                )
            )
            shape = (shape[0], p["state_size"]) if p["return_sequence"] else (p["state_size"],)
        elif spec.kind == "flatten":
            layers.append(Flatten(dtype=dtype))
            shape = (int(np.prod(shape)),)
        elif spec.kind == "reshape":
            target = (p["depth"], p["height"], p["width"])
            target = tuple(s for s in target if s != 1) or (1,)
            layers.append(Reshape(target, dtype=dtype))
            shape = target
        elif spec.kind == "dense":
            layers.append(Dense(shape[-1], p["units"], activation=p["activation"], dtype=dtype, seed=sub_seed))
            shape = shape[:-1] + (p["units"],)
        else:  # parse_layout yields only the kinds above; a LayerSpec list written by hand may not
            raise ValueError(
                f"build_layers: layer {spec.position} {spec.token!r} has kind {spec.kind!r}; bptt builds "
                f"{', '.join(_KINDS)}"
            )
    return layers
