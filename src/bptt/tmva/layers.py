"""The layers a TMVA ``Layout`` / ``InputLayout`` pair describes (what
:meth:`bptt.model.Sequential.from_tmva` is made of).

Recurrent tokens become LSTM/GRU/RNN layers (``rememberState`` → ``stateful``,
``returnSequence`` → ``return_sequences``), ``RESHAPE|FLAT`` → Flatten, ``DENSE|n|ACT`` → Dense,
and a bare ``LINEAR`` → the output Dense layer with one unit. ``dropout``: TMVA's DropConfig, one
dropout probability per layer, applied to that layer's input (TMVA's MethodDL turns each value p
into a keep-probability 1 − p; 0 means no dropout).

``weight_initialization``: TMVA's ``WeightInitialization`` (XAVIER, XAVIERUNIFORM, GAUSS, UNIFORM,
IDENTITY, ZERO) as TMVA applies it: every weight matrix — a dense layer's ``W``, and each gate's
input block of ``W`` and state block of ``U`` of a recurrent layer, each on its own ``(in, H)`` /
``(H, H)`` shape — drawn from that initialiser, every bias 0 (``VGeneralLayer::Initialize``).
None keeps bptt's own defaults (Glorot-uniform ``W``, orthogonal ``U`` blocks, zero biases).
"""

from __future__ import annotations

import numpy as np

from .. import init
from ..layers import GRU, LSTM, RNN, Dense, Flatten, Layer, Reshape
from ..layers.dropout import Dropout
from .layout import LayerSpec, check_layout, parse_input_layout, parse_layout

__all__ = ["build_layers"]

_RECURRENT = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
_KINDS = ("lstm", "gru", "rnn", "flatten", "reshape", "dense")


def _tmva_initialize(layer: Layer, name: str, seed: int) -> None:
    """Re-draw ``layer``'s parameters as TMVA's ``WeightInitialization=name`` does (module docstring)."""
    fn = init.get_initializer(name)
    rng = np.random.default_rng(seed)
    gates = layer.params["W"].shape[1] // layer.hidden_size if hasattr(layer, "hidden_size") else 1
    for key, p in layer.params.items():
        if p.ndim == 2:
            p[...] = init.initialize_blocks(fn, p.shape, gates, rng, p.dtype)
        else:
            p[...] = 0.0


def build_layers(layout: str | list[LayerSpec], input_layout: str | tuple[int, int], *, seed=0, dtype=np.float32,
                 dropout=None, weight_initialization: str | None = None) -> list[Layer]:
    """The layers of a ``Layout`` (a string, or the :class:`LayerSpec` list that
    :func:`bptt.tmva.parse_layout` or :func:`bptt.tmva.parse_options` gives: no second parse) on
    inputs of ``InputLayout`` ``(T, F)``, with seeds drawn from ``seed`` in layer order, and
    weights as TMVA's ``weight_initialization`` draws them (None: bptt's defaults).
    """
    if weight_initialization is not None:
        init.get_initializer(weight_initialization)  # an unknown name is refused before any work
        names = {"kernel_initializer": weight_initialization}
    else:
        names = {}
    T, F = input_layout if isinstance(input_layout, tuple) else parse_input_layout(input_layout)
    specs = layout if isinstance(layout, list) else parse_layout(layout, n_inputs=T * F)
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
                    **({"recurrent_initializer": weight_initialization, **names} if names else {}),
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
            layers.append(Dense(shape[-1], p["units"], activation=p["activation"], dtype=dtype, seed=sub_seed, **names))
            shape = shape[:-1] + (p["units"],)
        else:  # parse_layout yields only the kinds above; a LayerSpec list written by hand may not
            raise ValueError(
                f"build_layers: layer {spec.position} {spec.token!r} has kind {spec.kind!r}; bptt builds "
                f"{', '.join(_KINDS)}"
            )
    if weight_initialization is not None:
        for layer in layers:
            if layer.params:
                _tmva_initialize(layer, weight_initialization, int(rng.integers(2**31)))
    return layers
