"""Keras 3 ``LSTM`` / ``GRU`` / ``SimpleRNN`` weights to and from bptt parameter dicts, and reading
them from Keras 3 files (``.weights.h5`` and ``.keras``) with h5py, zipfile and json only.

Keras is never imported. Keras uses row-vector algebra like bptt (``z = x kernel + h
recurrent_kernel + bias``), so kernels map one to one; only the GRU's gate order and biases differ.
``layer.get_weights()`` / ``layer.set_weights()`` use the order ``[kernel, recurrent_kernel, bias]``
(no ``bias`` when ``use_bias=False``):

==========  ==================  ====================  ================================  ===========
cell        kernel              recurrent_kernel      bias                              gate blocks
==========  ==================  ====================  ================================  ===========
LSTM        (I, 4H)             (H, 4H)               (4H,)                             i, f, c, o
GRU         (I, 3H)             (H, 3H)               (2, 3H) = [input; recurrent]      z, r, h
            (reset_after=True)
GRU         (I, 3H)             (H, 3H)               (3H,)  (no recurrent bias)        z, r, h
            (reset_after=False)
SimpleRNN   (I, H)              (H, H)                (H,)                              —
==========  ==================  ====================  ================================  ===========

The LSTM's gate order is bptt's [i, f, g, o]. The GRU's [z, r, h] (update, reset, new) becomes
bptt's [r, z, n] by swapping the first two blocks. Keras' GRU equations are bptt's:

    reset_after=True:   n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n))     b = bias[0], b_u = bias[1]
    reset_after=False:  n = tanh(x W_n + b_n + (r ⊙ h) U_n)             b = bias,    b_u = 0
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}   (both libraries)

For ``reset_after=False`` every occurrence of bptt's ``b_u`` is added to ``b``, so :func:`to_keras`
stores ``b + b_u`` (the same function; a round trip returns ``b_u = 0``).

Example::

    >>> import numpy as np
    >>> from bptt.layers import GRU
    >>> gru = GRU(3, 2, seed=0)
    >>> kernel, recurrent_kernel, bias = to_keras(gru.params, "gru", reset_after=True)
    >>> kernel.shape, recurrent_kernel.shape, bias.shape
    ((3, 6), (2, 6), (2, 6))
    >>> p = from_keras([kernel, recurrent_kernel, bias], "gru", reset_after=True)
    >>> all(np.array_equal(p[k], gru.params[k]) for k in ("W", "U", "b", "b_u"))
    True
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from .. import _validation as v
from .torch_weights import GATES, _cell, _to_numpy

__all__ = ["from_keras", "to_keras", "read_keras_weights", "layers_from_keras"]

_GRU_PERM = (1, 0, 2)  # keras [z, r, h] <-> bptt [r, z, n] (its own inverse)
_KERAS_CLASS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
_H5_KEY = re.compile(r"^(lstm|gru|simple_rnn)(_\d+)?$")
_H5_BIDIRECTIONAL = re.compile(r"^bidirectional(_\d+)?$")
_CELL_OF_GATES = {4: "lstm", 3: "gru", 1: "rnn"}  # a Bidirectional wrapper's cell, from its kernels' shapes


def _swap_gru_blocks(a: np.ndarray, H: int) -> np.ndarray:
    """Reorder the three ``H``-wide gate blocks on the last axis between keras' and bptt's order."""
    return np.concatenate([a[..., g * H:(g + 1) * H] for g in _GRU_PERM], axis=-1)


def _check_kernels(fn: str, cell: str, W: np.ndarray, U: np.ndarray, wname: str, uname: str) -> int:
    G = GATES[cell]
    if U.ndim != 2 or U.shape[1] != G * U.shape[0]:
        raise ValueError(f"{fn}: {uname} must have shape (H, {G}·H) for a {_KERAS_CLASS[cell]}; got {U.shape}")
    H = U.shape[0]
    if W.ndim != 2 or W.shape[1] != G * H:
        raise ValueError(f"{fn}: {wname} must have shape (I, {G * H}) (hidden size {H}); got {W.shape}")
    if W.dtype != U.dtype:
        raise ValueError(f"{fn}: {wname} has dtype {W.dtype} but {uname} has {U.dtype}; all weights must share one dtype")
    return H


def from_keras(weights: Sequence, cell: str, reset_after: bool = True) -> dict:
    """A bptt params dict from a Keras ``LSTM``/``GRU``/``SimpleRNN`` layer's ``get_weights()``,
    or from a ``Bidirectional`` wrapper's.

    Args:
        weights: ``[kernel, recurrent_kernel, bias]``, or ``[kernel, recurrent_kernel]`` for a
            layer with ``use_bias=False`` (zero biases). A ``Bidirectional(...)`` layer's
            ``get_weights()`` (6 arrays, or 4 without biases: the forward layer's, then the backward
            layer's) gives the params of a bptt layer with ``bidirectional=True``: the backward
            layer's arrays become ``W_reverse``, ``U_reverse``, ``b_reverse`` (``b_u_reverse``).
            Keras's ``merge_mode="concat"`` is bptt's output layout (forward units first); build
            the Keras wrapper with it.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (also ``"simple_rnn"``).
        reset_after: the Keras GRU's ``reset_after``; it must agree with the bias shape
            (``(2, 3H)`` for True, ``(3H,)`` for False). Build the bptt ``GRU`` with the same value.

    Returns:
        ``{"W", "U", "b"}`` (plus ``"b_u"`` for the GRU; plus the ``*_reverse`` names for a
        Bidirectional wrapper's weights), in the weights' dtype (float32 or float64).

    Example::

        >>> import numpy as np
        >>> k, rk, b = np.ones((2, 4)), np.zeros((1, 4)), np.arange(4.0)
        >>> from_keras([k, rk, b], "lstm")["b"]
        array([0., 1., 2., 3.])
        >>> sorted(from_keras([k, rk, b, k, rk, -b], "lstm"))  # Bidirectional(LSTM(1)).get_weights()
        ['U', 'U_reverse', 'W', 'W_reverse', 'b', 'b_reverse']
    """
    fn = "from_keras"
    cell = _cell(fn, cell)
    if isinstance(weights, Mapping) or not isinstance(weights, Sequence) or len(weights) not in (2, 3, 4, 6):
        raise ValueError(f"{fn}: weights must be the list layer.get_weights() returns, [kernel, recurrent_kernel, bias] "
                         f"(or without bias for use_bias=False; twice that, 6 or 4 arrays, for a Bidirectional "
                         f"wrapper); got {type(weights).__name__}"
                         + (f" of length {len(weights)}" if isinstance(weights, Sequence) else ""))
    if cell == "gru":
        v.choice(fn, "reset_after", reset_after, (True, False))
    if len(weights) <= 3:
        return _from_keras_one(fn, list(weights), cell, reset_after, 0)
    half = len(weights) // 2
    fwd = _from_keras_one(fn, list(weights[:half]), cell, reset_after, 0)
    bwd = _from_keras_one(fn, list(weights[half:]), cell, reset_after, half)
    if fwd["W"].shape != bwd["W"].shape or fwd["W"].dtype != bwd["W"].dtype:
        raise ValueError(f"{fn}: a Bidirectional wrapper's two layers must have the same sizes and dtype; got kernels "
                         f"weights[0] {fwd['W'].shape} {fwd['W'].dtype} and weights[{half}] {bwd['W'].shape} "
                         f"{bwd['W'].dtype}")
    return {**fwd, **{k + "_reverse": a for k, a in bwd.items()}}


def _from_keras_one(fn: str, weights: list, cell: str, reset_after: bool, offset: int) -> dict:
    """One Keras layer's ``[kernel, recurrent_kernel(, bias)]``, which are ``weights[offset:]`` of
    the caller's list (for the messages)."""
    names = [f"weights[{offset + i}] ({what})" for i, what in enumerate(("kernel", "recurrent_kernel", "bias"))]
    W = _to_numpy(fn, names[0], weights[0])
    U = _to_numpy(fn, names[1], weights[1])
    H = _check_kernels(fn, cell, W, U, names[0], names[1])
    G = GATES[cell]
    if len(weights) == 3:
        bias = _to_numpy(fn, names[2], weights[2]).astype(W.dtype)
    else:
        bias = np.zeros((2, G * H) if cell == "gru" and reset_after else (G * H,), W.dtype)
    if cell != "gru":
        v.expect_shape(fn, names[2], bias, (G * H,), f"{G}·H with hidden size {H}")
        return {"W": W.copy(), "U": U.copy(), "b": bias.copy()}
    expected = (2, 3 * H) if reset_after else (3 * H,)
    if bias.shape != expected:
        other = "(2, 3H): this is a reset_after=True layer" if bias.ndim == 2 else "(3H,): this is a reset_after=False layer"
        raise ValueError(f"{fn}: {names[2]} must have shape {expected} for a GRU with reset_after={reset_after}; "
                         f"got {bias.shape}, the shape for {other}; pass reset_after={not reset_after}")
    b, b_u = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    return {"W": _swap_gru_blocks(W, H), "U": _swap_gru_blocks(U, H), "b": _swap_gru_blocks(b, H),
            "b_u": _swap_gru_blocks(b_u, H)}


def to_keras(params: Mapping, cell: str, reset_after: bool = True, *, use_bias: bool = True) -> list[np.ndarray]:
    """Keras ``layer.set_weights()`` input from a bptt params dict: ``[kernel, recurrent_kernel, bias]``.

    Args:
        params: a bptt recurrent layer's ``params``. Those of a bidirectional layer (with
            ``W_reverse``, …) give the input of a Keras ``Bidirectional(...,
            merge_mode="concat")`` wrapper's ``set_weights()``: the forward layer's three arrays,
            then the backward layer's (made from the ``*_reverse`` parameters).
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        reset_after: the GRU form (the bptt layer's ``reset_after``; the Keras GRU must be built
            with the same value). For False the bias is ``b + b_u`` (Keras has no recurrent bias
            there, and bptt's enters the same sums).
        use_bias: False for a Keras layer with ``use_bias=False`` (no bias array; biases must be 0).

    Raises:
        ValueError: missing or mis-shaped parameters; non-zero biases with ``use_bias=False``.
    """
    fn = "to_keras"
    cell = _cell(fn, cell)
    if not isinstance(params, Mapping):
        raise ValueError(f"{fn}: params must be a bptt params dict (layer.params); got {type(params).__name__}")
    if cell == "gru":
        v.choice(fn, "reset_after", reset_after, (True, False))
    names = ("W", "U", "b", "b_u") if cell == "gru" else ("W", "U", "b")
    directions = ("", "_reverse") if "W_reverse" in params else ("",)
    out: list[np.ndarray] = []
    for sfx in directions:
        missing = [n + sfx for n in names if n + sfx not in params]
        if missing:
            raise ValueError(f"{fn}: params lacks {missing} for a {'bidirectional ' if sfx else ''}{_KERAS_CLASS[cell]} "
                             f"(expected keys {[n + d for d in directions for n in names]}); got {sorted(params)}")
        a = {n: _to_numpy(fn, f"params[{n + sfx!r}]", params[n + sfx]) for n in names}
        H = _check_kernels(fn, cell, a["W"], a["U"], f"params['W{sfx}']", f"params['U{sfx}']")
        G = GATES[cell]
        for n in names[2:]:
            v.expect_shape(fn, f"params[{n + sfx!r}]", a[n], (G * H,), f"{G}·H with hidden size {H}")
        if not use_bias:
            nonzero = [n + sfx for n in names[2:] if np.any(a[n])]
            if nonzero:
                raise ValueError(f"{fn}: use_bias=False but params has non-zero {nonzero}; use use_bias=True")
        if cell != "gru":
            one = [a["W"].copy(), a["U"].copy(), a["b"].copy()]
        else:
            bias = np.stack([a["b"], a["b_u"]]) if reset_after else a["b"] + a["b_u"]
            one = [_swap_gru_blocks(a["W"], H), _swap_gru_blocks(a["U"], H), _swap_gru_blocks(bias, H)]
        out += one if use_bias else one[:2]
    return out


# ── files


def _config_layers(node, found: dict) -> None:
    """Collect ``{layer name: {"class_name", "config"}}`` for every recurrent layer and
    ``Bidirectional`` wrapper of a config tree (not the layers inside a wrapper)."""
    if isinstance(node, dict):
        cls, cfg = node.get("class_name"), node.get("config")
        if cls in ("LSTM", "GRU", "SimpleRNN", "Bidirectional") and isinstance(cfg, dict) and "name" in cfg:
            found.setdefault(cfg["name"], {"class_name": cls, "config": cfg})
            if cls == "Bidirectional":
                return
        for value in node.values():
            _config_layers(value, found)
    elif isinstance(node, list):
        for value in node:
            _config_layers(value, found)


def _h5_vars(sub) -> list | None:
    """The arrays of ``<layer>/cell/vars`` (kernel, recurrent kernel, bias), or None."""
    if "cell" not in sub or "vars" not in sub["cell"]:
        return None
    vars_ = sub["cell"]["vars"]
    return [np.array(vars_[i]) for i in sorted(vars_, key=int)]


def _h5_name(sub, key: str) -> str:
    name = sub["vars"].attrs.get("name", key) if "vars" in sub else key
    return str(name.decode() if isinstance(name, bytes) else name)


def _h5_recurrent(group, where: str, out: list) -> None:
    """Depth-first: every ``layers/<lstm|gru|simple_rnn>[_N]/cell/vars`` group under ``group``, and
    every ``layers/bidirectional[_N]`` wrapper (``forward_layer`` and ``backward_layer``, each
    with ``cell/vars``: its entry's weights are the forward layer's, then the backward layer's)."""
    if "layers" not in group:
        return
    layers = group["layers"]
    def natural(key):  # "gru_10" after "gru_2"
        head, _, tail = key.rpartition("_")
        return (head, int(tail)) if tail.isdigit() else (key, -1)

    for key in sorted(layers, key=natural):  # HDF5 keeps no creation order here: by name
        sub = layers[key]
        m = _H5_KEY.match(key)
        if m and _h5_vars(sub) is not None:
            cell = {"lstm": "lstm", "gru": "gru", "simple_rnn": "rnn"}[m.group(1)]
            out.append((_h5_name(sub, key), cell, f"{where}layers/{key}", _h5_vars(sub)))
        elif (_H5_BIDIRECTIONAL.match(key) and all(d in sub for d in ("forward_layer", "backward_layer"))
              and _h5_vars(sub["forward_layer"]) is not None and _h5_vars(sub["backward_layer"]) is not None):
            fwd, bwd = _h5_vars(sub["forward_layer"]), _h5_vars(sub["backward_layer"])
            rk = fwd[1] if len(fwd) > 1 else np.zeros((0, 0))
            gates = rk.shape[1] // rk.shape[0] if rk.ndim == 2 and rk.shape[0] else 0
            if gates in _CELL_OF_GATES:  # others (a wrapped layer of another class) are not listed
                out.append((_h5_name(sub, key), _CELL_OF_GATES[gates], f"{where}layers/{key}", fwd + bwd))
        elif hasattr(sub, "keys"):
            _h5_recurrent(sub, f"{where}layers/{key}/", out)


def _inferred_config(cell: str, weights: list) -> dict:
    if len(weights) in (4, 6):  # a Bidirectional wrapper: the forward layer's config, flagged
        return {**_inferred_config(cell, weights[: len(weights) // 2]), "bidirectional": True}
    cfg = {"units": int(weights[1].shape[0]), "use_bias": len(weights) > 2}
    if cell == "gru":
        cfg["reset_after"] = len(weights) < 3 or weights[2].ndim == 2
    return cfg


def _wrapper_config(entry: dict, cell: str) -> dict | None:
    """The config of a ``Bidirectional`` wrapper's entry: its forward layer's config, with
    ``"bidirectional": True``, the wrapper's ``name`` and ``merge_mode`` and the backward layer's
    config under ``"backward_layer"`` (when the wrapper records one); None when the wrapped layer
    is not a ``cell``."""
    cfg = entry["config"]
    inner = cfg.get("layer") if isinstance(cfg.get("layer"), dict) else {}
    if inner.get("class_name") != _KERAS_CLASS[cell] or not isinstance(inner.get("config"), dict):
        return None
    out = {**inner["config"], "name": cfg["name"], "bidirectional": True, "merge_mode": cfg.get("merge_mode", "concat")}
    back = cfg.get("backward_layer")
    if isinstance(back, dict) and isinstance(back.get("config"), dict):
        out["backward_layer"] = {"class_name": back.get("class_name"), **back["config"]}
    return out


def read_keras_weights(path) -> list[tuple[str, str, dict, list[np.ndarray]]]:
    """The recurrent layers of a Keras 3 ``.weights.h5`` file or ``.keras`` archive.

    Returns:
        ``[(layer_name, cell, config, weights), ...]`` where ``cell`` is
        ``"lstm"``, ``"gru"`` or ``"rnn"``, ``weights`` is ``[kernel, recurrent_kernel, bias]`` as
        ``layer.get_weights()`` gives it (ready for :func:`from_keras`), and ``config`` is the
        layer's Keras configuration (from ``config.json`` in a ``.keras`` archive; for a bare
        ``.weights.h5`` only what the shapes tell: ``units``, ``use_bias`` and, for the GRU,
        ``reset_after``). A ``Bidirectional`` wrapper is one entry, named as the wrapper: its
        ``weights`` are the forward layer's three arrays, then the backward layer's (as the
        wrapper's ``get_weights()``; :func:`from_keras` makes them the params of a bptt layer
        with ``bidirectional=True``), its ``config`` the forward layer's with
        ``"bidirectional": True``, the wrapper's ``"merge_mode"`` and the backward layer's config
        under ``"backward_layer"`` (a bare ``.weights.h5`` records neither: ``units``,
        ``use_bias``, ``reset_after`` and ``"bidirectional": True`` only). The order is the
        model's (``config.json``) for a ``.keras`` archive; a
        bare ``.weights.h5`` does not record it, so its layers come sorted by HDF5 group key
        (``bidirectional``, …, ``gru``, ``gru_1``, …, ``lstm``, …, ``simple_rnn``, …): use the
        names to match them.

    The layout Keras 3 writes (checked with Keras 3.15): a ``.keras`` file is a zip archive of
    ``metadata.json``, ``config.json`` (the model's ``get_config()`` tree: ``{"class_name",
    "config": {"layers": [{"class_name": "LSTM", "config": {"name", "units", ...}}, ...]}}``) and
    ``model.weights.h5``. In the HDF5 file each layer is a group ``layers/<key>`` where ``<key>`` is
    the snake-case class name made unique in layer order (``lstm``, ``gru``, ``gru_1``,
    ``simple_rnn``; the user's layer name is the ``name`` attribute of ``layers/<key>/vars``). A
    recurrent layer keeps its arrays on its cell: ``layers/<key>/cell/vars/0`` (kernel), ``/1``
    (recurrent kernel), ``/2`` (bias). Nested models repeat the pattern
    (``layers/<model key>/layers/...``). A ``Bidirectional`` wrapper is ``layers/bidirectional[_N]``
    holding ``forward_layer/cell/vars/{0,1,2}`` and ``backward_layer/cell/vars/{0,1,2}`` (its cell
    is read from the kernels' shapes: 4, 3 or 1 gate blocks). Layers of custom classes are not
    listed.

    Raises:
        ValueError: no such file; not an HDF5 file or ``.keras`` archive; no recurrent layers.
    """
    fn = "read_keras_weights"
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{fn}: reading Keras files needs h5py; install it with pip install 'bptt[keras]'") from None

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{fn}: no such file: {path!r}; expected a Keras 3 .weights.h5 file or .keras archive")
    configs: dict = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "model.weights.h5" not in names:
                raise ValueError(f"{fn}: {path!r} is a zip archive without model.weights.h5, so not a Keras 3 .keras "
                                 f"file; it holds {names[:8]}")
            if "config.json" in names:
                try:
                    _config_layers(json.loads(z.read("config.json")), configs)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ValueError(f"{fn}: {path!r}: config.json is not valid JSON ({exc})") from None
            data = io.BytesIO(z.read("model.weights.h5"))
        source = data
    else:
        source = path
    try:
        h5 = h5py.File(source, "r")
    except OSError as exc:
        raise ValueError(f"{fn}: {path!r} is neither an HDF5 weights file nor a .keras archive ({exc})") from None
    found: list = []
    with h5:
        _h5_recurrent(h5, "", found)
    if not found:
        raise ValueError(f"{fn}: {path!r} holds no Keras LSTM, GRU or SimpleRNN layer weights (looked for "
                         f"layers/<lstm|gru|simple_rnn>[_N]/cell/vars groups, the Keras 3 layout; Keras 2 .h5 "
                         f"files are not supported)")
    if configs:  # the model's layer order, as config.json lists the layers
        order = {name: i for i, name in enumerate(configs)}
        found.sort(key=lambda entry: order.get(entry[0], len(order)))
    result = []
    for name, cell, _where, weights in found:
        entry = configs.get(name)
        cfg = None
        if entry is not None and len(weights) in (4, 6) and entry["class_name"] == "Bidirectional":
            cfg = _wrapper_config(entry, cell)
        elif entry is not None and len(weights) in (2, 3) and entry["class_name"] == _KERAS_CLASS[cell]:
            cfg = dict(entry["config"])
        if cfg is None:
            cfg = _inferred_config(cell, weights)
        result.append((name, cell, cfg, weights))
    return result


_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "linear": "identity", None: "identity"}


def layers_from_keras(path, *, dtype=np.float32) -> list:
    """bptt recurrent layers (with the file's weights) for the recurrent layers of a Keras 3 file.

    ``return_sequences``, ``stateful``, the GRU's ``reset_after`` and the SimpleRNN's ``activation``
    come from the configuration (a ``.keras`` archive; a bare ``.weights.h5`` gives
    the defaults: ``return_sequences=False``, ``activation="tanh"``). Layers whose configuration
    bptt cannot reproduce (``go_backwards``, other activations) raise ``ValueError``.
    A ``Bidirectional`` wrapper becomes a layer with ``bidirectional=True`` when its
    ``merge_mode`` is ``"concat"`` (bptt's layout; a bare ``.weights.h5`` does not record the
    mode, and Keras's default, ``"concat"``, is assumed); ``"sum"``, ``"mul"``, ``"ave"`` and
    ``None`` are refused by name, as is a backward layer configured unlike the forward one.
    Dense and other layers are not converted.
    """
    from ..layers import GRU, LSTM, RNN

    fn = "layers_from_keras"
    layers = []
    for name, cell, cfg, weights in read_keras_weights(path):
        bidirectional = bool(cfg.get("bidirectional", False))
        if bidirectional:
            _check_wrapper(fn, name, cell, cfg)
        if cfg.get("go_backwards"):
            raise ValueError(f"{fn}: layer {name!r} has go_backwards=True, which bptt layers do not support")
        if cell in ("lstm", "gru"):
            for key, want in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
                if cfg.get(key, want) != want:
                    raise ValueError(f"{fn}: layer {name!r} has {key}={cfg[key]!r}; bptt's {cell.upper()} uses {want!r}")
        reset_after = bool(cfg.get("reset_after", True))
        p = from_keras(weights, cell, reset_after=reset_after)
        I, H = p["W"].shape[0], p["U"].shape[0]
        common = {"return_sequences": bool(cfg.get("return_sequences", False)),
                  "stateful": bool(cfg.get("stateful", False)), "bidirectional": bidirectional, "dtype": dtype}
        if cell == "lstm":
            layer = LSTM(I, H, **common)
        elif cell == "gru":
            layer = GRU(I, H, reset_after=reset_after, **common)
        else:
            act = cfg.get("activation", "tanh")
            if act not in _ACTIVATIONS:
                raise ValueError(f"{fn}: layer {name!r} has activation={act!r}; expected one of "
                                 f"{sorted(k for k in _ACTIVATIONS if k)}")
            layer = RNN(I, H, activation=_ACTIVATIONS[act], **common)
        for k, target in layer.params.items():
            target[...] = p[k]
        layers.append(layer)
    return layers


#: What a Bidirectional wrapper's backward layer must share with its forward layer for bptt.
_SAME_IN_BOTH = ("units", "activation", "recurrent_activation", "use_bias", "reset_after", "return_sequences")


def _check_wrapper(fn: str, name: str, cell: str, cfg: dict) -> None:
    """Refuse a ``Bidirectional`` wrapper bptt's layer does not compute: a merge mode other than
    ``"concat"``, or a backward layer that is not the forward one's mirror."""
    mode = cfg.get("merge_mode", "concat")
    if mode != "concat":
        raise ValueError(
            f"{fn}: layer {name!r} is a Bidirectional wrapper with merge_mode={mode!r}; bptt's bidirectional layers "
            f"concatenate the two directions (merge_mode='concat'), and 'sum', 'mul', 'ave' and None have no bptt "
            f"layer; rebuild the Keras model with merge_mode='concat'"
        )
    back = cfg.get("backward_layer")
    if back is None:
        return
    if back.get("class_name") not in (None, _KERAS_CLASS[cell]):
        raise ValueError(f"{fn}: layer {name!r} is a Bidirectional wrapper of a {_KERAS_CLASS[cell]} whose backward layer "
                         f"is a {back.get('class_name')}; bptt's bidirectional layers run one cell both ways")
    differ = [k for k in _SAME_IN_BOTH if k in back and k in cfg and back[k] != cfg[k]]
    if differ or not back.get("go_backwards", True):
        what = ", ".join(f"{k}={back[k]!r} (forward {cfg[k]!r})" for k in differ) or "go_backwards=False"
        raise ValueError(f"{fn}: layer {name!r} is a Bidirectional wrapper whose backward layer differs from its "
                         f"forward layer: {what}; bptt's bidirectional layers run one configuration both ways")
