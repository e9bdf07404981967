"""PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` weights to and from bptt parameter dicts.

Works on arrays only: PyTorch is never imported. A ``state_dict`` is any mapping of names to
arrays — NumPy arrays, or torch tensors (anything with ``.detach().cpu().numpy()`` or
``__array__``). Layer ``k`` of a torch module (``num_layers`` stacked layers) holds::

    weight_ih_l{k} (G·H, I)   weight_hh_l{k} (G·H, H)   bias_ih_l{k} (G·H,)   bias_hh_l{k} (G·H,)

with ``G`` = 4 (LSTM, rows [i, f, g, o]), 3 (GRU, rows [r, z, n]) or 1 (RNN). Torch uses
column-vector algebra ``z = W_ih x + b_ih + W_hh h + b_hh``; bptt uses row vectors
``z = x W + h U + b`` with the same gate order, so

    W = weight_ih.T    U = weight_hh.T
    LSTM, RNN:  b = bias_ih + bias_hh              (the two biases always appear summed)
    GRU:        b = bias_ih,  b_u = bias_hh         (torch's GRU is bptt's ``reset_after=True``:
                n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n)), so the two biases differ)

Going back (:func:`to_torch`), the LSTM/RNN bias is put in ``bias_ih`` and ``bias_hh`` is zero.
A bptt GRU with ``reset_after=False`` has no torch module. The LSTM's ``proj_size``
(``weight_hr_l{k}``) has no bptt equivalent and is rejected. The RNN's ``nonlinearity`` is not
part of a state dict: give the bptt layer the same activation.

Bidirectional modules (``bidirectional=True``) add the reverse direction of each layer under the
same names with the suffix ``_reverse`` (``weight_ih_l{k}_reverse``, …); they map to the bptt
layer's ``W_reverse``, ``U_reverse``, ``b_reverse`` (and ``b_u_reverse``) the same way, i.e. to a
bptt layer built with ``bidirectional=True``. Torch's layer ``k > 0`` of a bidirectional stack
reads the ``2H`` outputs of layer ``k − 1`` (forward half first), as a bptt bidirectional layer
of input size ``2H`` does.

Example::

    >>> import numpy as np
    >>> from bptt.layers import LSTM
    >>> from bptt.io.torch_weights import to_torch, from_torch
    >>> lstm = LSTM(3, 2, dtype=np.float64, seed=0)
    >>> sd = to_torch([lstm.params], "lstm")
    >>> sorted(sd), sd["weight_ih_l0"].shape
    (['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0'], (8, 3))
    >>> back = from_torch(sd, "lstm")
    >>> all(np.array_equal(back[0][k], lstm.params[k]) for k in ("W", "U", "b"))
    True

With torch, ``module.load_state_dict({k: torch.from_numpy(a) for k, a in sd.items()})`` loads the
result into an ``nn.LSTM(3, 2, batch_first=True, dtype=torch.float64)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from .. import _validation as v
from ..cells import GATES

__all__ = ["from_torch", "to_torch", "load_torch_into", "torch_state_dict", "GATES"]


_CELL_ALIASES = {"lstm": "lstm", "gru": "gru", "rnn": "rnn", "simple_rnn": "rnn", "simplernn": "rnn"}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_DIRECTIONS = ("", "_reverse")


def _cell(fn: str, cell) -> str:
    """The canonical cell name ``"lstm"``, ``"gru"`` or ``"rnn"`` (case-insensitive)."""
    name = cell.lower() if isinstance(cell, str) else cell
    if name not in _CELL_ALIASES:
        raise ValueError(f"{fn}: cell must be one of 'lstm', 'gru', 'rnn'; got {cell!r}")
    return _CELL_ALIASES[name]


def _to_numpy(fn: str, name: str, value) -> np.ndarray:
    """A NumPy float32/float64 array from a NumPy array, a torch tensor or an array-like."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        t = value.detach().cpu()
        try:
            a = t.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            a = t.float().numpy()
    else:
        a = np.asarray(value)
    if a.dtype.kind == "f" and a.dtype not in v.FLOAT_DTYPES:  # float16 → float32
        a = a.astype(np.float32)
    return v.float_array(fn, name, a, a.ndim if a.ndim else 1, "(rows, columns)")


def from_torch(state_dict: Mapping, cell: str, *, num_layers: int | None = None, prefix: str = "",
               dtype=None) -> list[dict]:
    """bptt parameter dicts, one per stacked layer, from a torch ``nn.LSTM/GRU/RNN`` state dict.

    Args:
        state_dict: mapping of names to arrays/tensors, as ``module.state_dict()`` returns.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: how many stacked layers to expect (default: as many as the keys hold; given,
            the keys must hold exactly that many).
        prefix: only keys starting with ``prefix`` are read, with it removed (e.g. ``"encoder."``
            to read the recurrent module inside a bigger model's state dict).
        dtype: dtype of the returned arrays (default: float64 if the weights are float64, else
            float32).

    Returns:
        ``[{"W", "U", "b"} per layer]`` (plus ``"b_u"`` for the GRU), layer 0 first:
        ``W = weight_ih.T``, ``U = weight_hh.T``, LSTM/RNN ``b = bias_ih + bias_hh``, GRU
        ``b = bias_ih`` and ``b_u = bias_hh``. A module built with ``bias=False`` gives zero biases.
        A bidirectional module (``*_reverse`` keys) gives the reverse direction's parameters too,
        ``W_reverse`` from ``weight_ih_l{k}_reverse`` and so on: the params of a bptt layer with
        ``bidirectional=True``.

    Raises:
        ValueError: unknown cell; ``proj_size`` (``weight_hr``) weights; other unknown keys;
        missing weights (of either direction of any layer, for a bidirectional module); shapes that
        do not fit the cell or do not chain (layer ``k > 0`` of a bidirectional module reads ``2H``).
    """
    fn = "from_torch"
    cell = _cell(fn, cell)
    G = GATES[cell]
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{fn}: state_dict must be a mapping of names to arrays (module.state_dict()); "
                         f"got {type(state_dict).__name__}")
    keys = {k[len(prefix):]: k for k in state_dict if isinstance(k, str) and k.startswith(prefix)}
    if not keys:
        raise ValueError(f"{fn}: state_dict has no keys starting with prefix {prefix!r}; "
                         f"got keys {sorted(map(str, state_dict))[:8]}")
    proj = sorted(k for k in keys if k.startswith("weight_hr"))
    if proj:
        raise ValueError(f"{fn}: LSTM projections (proj_size > 0) are not supported; got keys {proj}. "
                         f"Use a module built with proj_size=0")
    found: dict[int, dict[str, dict[str, str]]] = {}
    unknown = []
    for short, full in keys.items():
        m = _KEY.match(short)
        if m is None:
            unknown.append(full)
        else:
            found.setdefault(int(m.group(2)), {}).setdefault(m.group(3) or "", {})[m.group(1)] = full
    if unknown:
        raise ValueError(f"{fn}: unexpected keys {sorted(unknown)}; expected weight_ih_l<k>, weight_hh_l<k>, "
                         f"bias_ih_l<k>, bias_hh_l<k>, each also with the suffix _reverse for a bidirectional "
                         f"module (pass prefix= to select one module of a bigger state dict)")
    n = max(found) + 1
    if num_layers is not None:
        if not isinstance(num_layers, (int, np.integer)) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"{fn}: num_layers must be a positive integer or None; got {num_layers!r}")
        if n != num_layers:
            raise ValueError(f"{fn}: num_layers={num_layers} but the state dict holds layers 0..{n - 1}")
    bidirectional = any("_reverse" in found[k] for k in found)
    directions = _DIRECTIONS if bidirectional else ("",)
    out = []
    for k in range(n):
        p: dict[str, np.ndarray] = {}
        for sfx in directions:
            names = found.get(k, {}).get(sfx, {})
            for w in ("weight_ih", "weight_hh"):
                if w not in names:
                    why = " (the module is bidirectional: every layer has both directions)" if bidirectional else ""
                    raise ValueError(f"{fn}: missing {prefix}{w}_l{k}{sfx} (layer {k} of {n}){why}; "
                                     f"got keys {sorted(keys.values())}")
            previous = None if k == 0 else (out[-1]["U"].shape[0], len(directions))
            p.update({name + sfx: a for name, a in
                      _torch_direction(fn, state_dict, names, cell, G, k, prefix, previous, dtype).items()})
        out.append(p)
    return out


def _torch_direction(fn, state_dict, names, cell, G, k, prefix, previous, dtype) -> dict:
    """One direction of layer ``k``: ``{"W", "U", "b"(, "b_u")}`` from the keys ``names``
    (``weight_ih`` → its full key, …); ``previous``: layer ``k − 1``'s ``(hidden size, number of
    directions)``, whose product is this layer's input size (None for k = 0)."""
    has_bias = [b in names for b in ("bias_ih", "bias_hh")]
    if any(has_bias) and not all(has_bias):
        have, missing = ("bias_ih", "bias_hh") if has_bias[0] else ("bias_hh", "bias_ih")
        raise ValueError(f"{fn}: missing {prefix}{names[have][len(prefix):].replace(have, missing, 1)}; "
                         f"a layer has both biases or neither (bias=False)")
    a = {w: _to_numpy(fn, names[w], state_dict[names[w]]) for w in names}
    w_ih, w_hh = a["weight_ih"], a["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[0] % G or w_hh.shape[0] // G != w_hh.shape[1]:
        raise ValueError(f"{fn}: {names['weight_hh']} must have shape ({G}·H, H) for a {cell.upper()} "
                         f"({G} gate block{'s' if G > 1 else ''}); got {w_hh.shape}")
    H = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != G * H:
        raise ValueError(f"{fn}: {names['weight_ih']} must have shape ({G * H}, I) (hidden size {H}); got {w_ih.shape}")
    for b in ("bias_ih", "bias_hh"):
        if b in a:
            v.expect_shape(fn, names[b], a[b], (G * H,), f"{G}·H with hidden size {H}")
    if previous is not None and w_ih.shape[1] != previous[0] * previous[1]:
        H_prev, n_dir = previous
        gives = f"hidden size {H_prev}" + (f" and two directions ({2 * H_prev} outputs)" if n_dir == 2 else "")
        raise ValueError(f"{fn}: {names['weight_ih']} has input size {w_ih.shape[1]} but layer {k - 1} has {gives}")
    dt = np.dtype(dtype) if dtype is not None else (
        np.dtype(np.float64) if w_ih.dtype == np.float64 else np.dtype(np.float32))
    v.choice(fn, "dtype", dt, v.FLOAT_DTYPES)
    zeros = np.zeros(G * H, dt)
    b_ih = a.get("bias_ih", zeros).astype(dt)
    b_hh = a.get("bias_hh", zeros).astype(dt)
    p = {"W": np.array(w_ih.T, dt, order="C"), "U": np.array(w_hh.T, dt, order="C")}
    if cell == "gru":
        p["b"], p["b_u"] = b_ih.copy(), b_hh.copy()
    else:
        p["b"] = b_ih + b_hh
    return p


def to_torch(params_list: Sequence[Mapping], cell: str, *, bias: bool = True,
             reset_after: bool = True) -> dict[str, np.ndarray]:
    """A torch state dict (NumPy arrays) for ``nn.LSTM/GRU/RNN(..., num_layers=len(params_list))``.

    The inverse of :func:`from_torch`: ``weight_ih_l{k} = W.T``, ``weight_hh_l{k} = U.T``;
    LSTM/RNN ``bias_ih_l{k} = b`` and ``bias_hh_l{k} = 0``; GRU ``bias_ih_l{k} = b``,
    ``bias_hh_l{k} = b_u``; params of bidirectional layers (``W_reverse``, …) also give the
    ``*_reverse`` keys of a module built with ``bidirectional=True``. Load it with
    ``module.load_state_dict({k: torch.from_numpy(a) for k, a in sd.items()})``.

    Args:
        params_list: one bptt params dict per stacked layer (``layer.params``), input first; all
            bidirectional (with ``W_reverse``, …) or none.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        bias: False for a module built with ``bias=False`` (no bias keys; every bias must be 0).
        reset_after: the GRU form of the parameters; only ``True`` exists in torch.

    Raises:
        ValueError: a GRU with ``reset_after=False``; missing or mis-shaped parameters; non-zero
        biases with ``bias=False``; layers whose sizes do not chain.
    """
    fn = "to_torch"
    cell = _cell(fn, cell)
    G = GATES[cell]
    if cell == "gru" and reset_after is not True:
        raise ValueError(f"{fn}: a GRU with reset_after=False (TMVA's form, n = tanh(x W_n + b_n + (r ⊙ h) U_n + bu_n)) "
                         f"has no torch equivalent; torch.nn.GRU applies the reset gate after the recurrent "
                         f"product (reset_after=True); got reset_after={reset_after!r}")
    if isinstance(params_list, Mapping):
        raise ValueError(f"{fn}: params_list must be a list of params dicts, one per layer; got a single dict "
                         f"(wrap it: [layer.params])")
    if not isinstance(params_list, Sequence) or len(params_list) == 0:
        raise ValueError(f"{fn}: params_list must be a non-empty list of params dicts; got {params_list!r}")
    names = ("W", "U", "b", "b_u") if cell == "gru" else ("W", "U", "b")
    both = [isinstance(p, Mapping) and "W_reverse" in p for p in params_list]
    bidirectional = any(both)
    if bidirectional and not all(both):
        raise ValueError(f"{fn}: params_list mixes bidirectional layers (with W_reverse) and unidirectional ones "
                         f"(layers {[k for k, b in enumerate(both) if not b]} have no W_reverse); a torch module's "
                         f"layers are all bidirectional or none")
    directions = _DIRECTIONS if bidirectional else ("",)
    sd: dict[str, np.ndarray] = {}
    previous = None
    for k, p in enumerate(params_list):
        if not isinstance(p, Mapping):
            raise ValueError(f"{fn}: params_list[{k}] must be a params dict (layer.params); got {type(p).__name__}")
        wanted = [n + sfx for sfx in directions for n in names]
        missing = [n for n in wanted if n not in p]
        if missing:
            raise ValueError(f"{fn}: params_list[{k}] lacks {missing} for a {'bidirectional ' * bidirectional}"
                             f"{cell.upper()} (expected keys {wanted}); got {sorted(p)}")
        for sfx in directions:
            H = _torch_from_direction(fn, p, names, cell, G, k, sfx, previous, bias, sd)
        previous = (H, len(directions))
    return sd


def _torch_from_direction(fn, p, names, cell, G, k, sfx, previous, bias, sd) -> int:
    """Write direction ``sfx`` of ``params_list[k]`` (``p``) into ``sd``; return its hidden size."""
    a = {n: _to_numpy(fn, f"params_list[{k}][{n + sfx!r}]", p[n + sfx]) for n in names}
    U = a["U"]
    if U.ndim != 2 or U.shape[1] != G * U.shape[0]:
        raise ValueError(f"{fn}: params_list[{k}]['U{sfx}'] must have shape (H, {G}·H); got {U.shape}")
    H = U.shape[0]
    if a["W"].ndim != 2 or a["W"].shape[1] != G * H:
        raise ValueError(f"{fn}: params_list[{k}]['W{sfx}'] must have shape (I, {G * H}); got {a['W'].shape}")
    if previous is not None and a["W"].shape[0] != previous[0] * previous[1]:
        H_prev, n_dir = previous
        gives = f"hidden size {H_prev}" + (f" and two directions ({2 * H_prev} outputs)" if n_dir == 2 else "")
        raise ValueError(f"{fn}: params_list[{k}]['W{sfx}'] has input size {a['W'].shape[0]} but layer {k - 1} has {gives}")
    for n in names[2:]:
        v.expect_shape(fn, f"params_list[{k}][{n + sfx!r}]", a[n], (G * H,), f"{G}·H with hidden size {H}")
    sd[f"weight_ih_l{k}{sfx}"] = np.array(a["W"].T, order="C")
    sd[f"weight_hh_l{k}{sfx}"] = np.array(U.T, order="C")
    if bias:
        sd[f"bias_ih_l{k}{sfx}"] = a["b"].copy()
        sd[f"bias_hh_l{k}{sfx}"] = a["b_u"].copy() if cell == "gru" else np.zeros_like(a["b"])
    else:
        nonzero = [n + sfx for n in names[2:] if np.any(a[n])]
        if nonzero:
            raise ValueError(f"{fn}: bias=False but params_list[{k}] has non-zero {nonzero}; a module built "
                             f"with bias=False cannot hold them (use bias=True)")
    return H


def _layer_cell(fn: str, layer) -> tuple[str, bool]:
    kind = type(layer).__name__
    if kind not in ("LSTM", "GRU", "RNN") or not hasattr(layer, "params"):
        raise ValueError(f"{fn}: layers must be bptt LSTM, GRU or RNN layers; got {kind}")
    return kind.lower(), getattr(layer, "reset_after", True)


def _stack_cell(fn: str, layers) -> tuple[list, str, bool]:
    layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    if not layers:
        raise ValueError(f"{fn}: layers must be a non-empty list of bptt recurrent layers; got []")
    cells = [_layer_cell(fn, layer) for layer in layers]
    if len(set(cells)) != 1:
        raise ValueError(f"{fn}: all layers must be of one kind (a torch module stacks one cell type); got "
                         f"{[type(layer).__name__ for layer in layers]}")
    return layers, cells[0][0], cells[0][1]


def torch_state_dict(layers, *, bias: bool = True) -> dict[str, np.ndarray]:
    """The torch state dict of a stack of bptt recurrent layers (one layer or a list of them, all of
    one kind; the list is torch's ``num_layers``; all bidirectional, giving the ``*_reverse`` keys
    of ``bidirectional=True``, or none). See :func:`to_torch`.

    Example::

        >>> import numpy as np
        >>> from bptt.layers import GRU
        >>> sd = torch_state_dict([GRU(3, 4, seed=0), GRU(4, 4, seed=1)])
        >>> sd["weight_ih_l1"].shape, sd["bias_hh_l0"].shape
        ((12, 4), (12,))
    """
    fn = "torch_state_dict"
    layers, cell, reset_after = _stack_cell(fn, layers)
    if cell == "gru" and any(not layer.reset_after for layer in layers):
        reset_after = False
    try:
        return to_torch([layer.params for layer in layers], cell, bias=bias, reset_after=reset_after)
    except ValueError as exc:
        raise ValueError(f"{fn}: {exc}") from None


def load_torch_into(layers, state_dict: Mapping, *, prefix: str = ""):
    """Copy a torch ``nn.LSTM/GRU/RNN`` state dict into bptt recurrent layers, in place.

    ``layers`` is one layer or a list (torch's ``num_layers``), all of one kind, whose sizes match
    the module's; each layer keeps its dtype. A GRU layer must have ``reset_after=True`` (torch's
    form). A bidirectional module fills layers built with ``bidirectional=True`` (layer ``k > 0``
    with ``input_size = 2 · hidden_size`` of layer ``k − 1``). Returns ``layers``.

    Example::

        >>> import numpy as np
        >>> from bptt.layers import RNN
        >>> src, dst = RNN(3, 2, seed=0), RNN(3, 2, seed=1)
        >>> _ = load_torch_into(dst, torch_state_dict(src))
        >>> np.allclose(dst.params["U"], src.params["U"])
        True
    """
    fn = "load_torch_into"
    stack, cell, _ = _stack_cell(fn, layers)
    for k, layer in enumerate(stack):
        if cell == "gru" and not layer.reset_after:
            raise ValueError(f"{fn}: layer {k} is a GRU with reset_after=False, which torch's GRU (reset_after=True) "
                             f"cannot fill; build it with GRU(..., reset_after=True)")
    try:
        params = from_torch(state_dict, cell, prefix=prefix)
    except ValueError as exc:
        raise ValueError(f"{fn}: {exc}") from None
    if len(params) != len(stack):
        raise ValueError(f"{fn}: the state dict holds {len(params)} layer(s) (num_layers) but {len(stack)} bptt "
                         f"layer(s) were given")
    for k, (layer, p) in enumerate(zip(stack, params)):
        if ("W_reverse" in p) != bool(getattr(layer, "bidirectional", False)):
            module = "a bidirectional module (*_reverse keys)" if "W_reverse" in p else "a unidirectional module"
            raise ValueError(f"{fn}: the state dict is {module} but layer {k} has bidirectional="
                             f"{bool(getattr(layer, 'bidirectional', False))}; build the bptt layers with "
                             f"bidirectional={'W_reverse' in p}")
        for name, target in layer.params.items():
            v.expect_shape(fn, f"layer {k} {name}", p[name], target.shape,
                           f"the bptt layer's input_size={layer.input_size}, hidden_size={layer.hidden_size}")
    for layer, p in zip(stack, params):
        for name, target in layer.params.items():
            target[...] = p[name]
    return layers
