"""The recurrent layers of :mod:`bptt.io.onnx`: bptt ``LSTM`` / ``GRU`` / ``RNN`` layers to and from
ONNX's ``LSTM``, ``GRU`` and ``RNN`` operators, one direction or both, with or without
``sequence_lens``.

Parameters map onto ONNX's column-vector layout by transposing and reordering the gate blocks
(bptt's row-vector ``z = x W + h U + b`` is ONNX's ``z = X Wᵀ + H Rᵀ + Wb + Rb``):

    LSTM  bptt [i, f, g, o] → ONNX [i, o, f, c]:  W = W_bptt[:, iofc]ᵀ (4H, I),  R = U[:, iofc]ᵀ,
          B = [b[iofc], 0]                         (the recurrent-bias half is zero)
    GRU   bptt [r, z, n]    → ONNX [z, r, h]:     B = [b[zrh], b_u[zrh]],
          linear_before_reset = 1 if reset_after else 0
    RNN   W = Wᵀ, R = Uᵀ, B = [b, 0];  activations Tanh | Relu | Sigmoid, and identity as
          ``Affine`` with α = 1, β = 0 (ONNX has no Identity activation for RNN; onnxruntime's CPU
          kernel accepts Affine)

A bidirectional layer is one node with ``direction="bidirectional"``: ``W``, ``R``, ``B`` stack the
forward direction's arrays and the reverse direction's (``W_reverse``, …) on their first axis
(``num_directions`` = 2), and the RNN's activation lists name each direction's. Its outputs are
``Y (T, 2, B, H)`` and ``Y_h (2, B, H)``; bptt's ``(B, T, 2H)`` (forward units first) is
``Transpose(Y, perm=[2, 0, 1, 3]) → Reshape([0, 0, -1])``, and its ``(B, 2H)`` (forward final
state, reverse state after step 0) is ``Transpose(Y_h, perm=[1, 0, 2]) → Reshape([0, -1])``.

``sequence_lens`` (int32 ``(B,)``): ONNX's operators take each sequence's length as bptt's
``lengths=`` does (outputs zero past it, ``Y_h`` at each sequence's last real step, the reverse
direction starting from it), so a network exported with ``lengths=True`` feeds its ``"lengths"``
input to each recurrent node that :meth:`bptt.model.Sequential.forward` gives ``lengths`` to: every
one up to the first that returns no sequences.
"""

from __future__ import annotations

import numpy as np

from ..cells import GATES

#: bptt gate blocks → ONNX gate blocks, as indices into the bptt block order.
_LSTM_TO_ONNX = (0, 3, 1, 2)  # [i, f, g, o] → [i, o, f, c]
_GRU_TO_ONNX = (1, 0, 2)  # [r, z, n] → [z, r, h]
_RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "identity": "Affine"}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_DIRECTIONS = ("", "_reverse")


def _reorder(a: np.ndarray, order, H: int) -> np.ndarray:
    """Permute the gate blocks (each ``H`` wide) of the last axis of ``a`` into ``order``."""
    return np.concatenate([a[..., k * H : (k + 1) * H] for k in order], axis=-1)


def _inverse(order) -> tuple[int, ...]:
    inv = [0] * len(order)
    for pos, k in enumerate(order):
        inv[k] = pos
    return tuple(inv)


# ───────────────────────────────────────────────────────────────────────────── export


def _onnx_arrays(p: dict, kind: str, H: int, sfx: str):
    """One direction's ``W (G·H, I)``, ``R (G·H, H)``, ``B (2·G·H,)`` in ONNX's layout (float64)."""
    W, U, b = (np.asarray(p[k + sfx], np.float64) for k in ("W", "U", "b"))
    if kind == "LSTM":
        W, U = _reorder(W, _LSTM_TO_ONNX, H), _reorder(U, _LSTM_TO_ONNX, H)
        B = np.concatenate([_reorder(b, _LSTM_TO_ONNX, H), np.zeros(4 * H)])
    elif kind == "GRU":
        W, U = _reorder(W, _GRU_TO_ONNX, H), _reorder(U, _GRU_TO_ONNX, H)
        B = np.concatenate([_reorder(b, _GRU_TO_ONNX, H), _reorder(np.asarray(p["b_u" + sfx], np.float64), _GRU_TO_ONNX, H)])
    else:
        B = np.concatenate([b, np.zeros(H)])
    return W.T, U.T, B


def export_recurrent(g, layer, x: str, kind: str, lengths: str | None) -> str:
    """Add ``Transpose → LSTM|GRU|RNN → …`` for ``layer`` to the graph builder ``g`` (see the
    module docstring); ``lengths``: the graph input to give the node as ``sequence_lens``, or None.
    Returns the batch-major output tensor."""
    H = layer.hidden_size
    both = bool(getattr(layer, "bidirectional", False))
    dirs = _DIRECTIONS if both else ("",)
    attrs: dict = {"hidden_size": H, "direction": "bidirectional" if both else "forward", "layout": 0}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1 if layer.reset_after else 0
    elif kind == "RNN":
        act = _RNN_ACTIVATIONS.get(layer.activation)
        if act is None:  # pragma: no cover - RNN validates its activation
            raise ValueError(
                f"export_onnx: RNN activation must be one of {', '.join(map(repr, _RNN_ACTIVATIONS))}; "
                f"got {layer.activation!r}"
            )
        attrs["activations"] = [act] * len(dirs)
        if act == "Affine":
            attrs.update(activation_alpha=[1.0] * len(dirs), activation_beta=[0.0] * len(dirs))
    arrays = [_onnx_arrays(layer.params, kind, H, sfx) for sfx in dirs]
    w = g.const(f"{kind.lower()}_W", np.stack([a[0] for a in arrays]))  # (D, G·H, I)
    r = g.const(f"{kind.lower()}_R", np.stack([a[1] for a in arrays]))  # (D, G·H, H)
    b = g.const(f"{kind.lower()}_B", np.stack([a[2] for a in arrays]))  # (D, 2·G·H)
    (xt,) = g.node("Transpose", [x], "time_major", perm=[1, 0, 2])
    y, y_h = g.node(kind, [xt, w, r, b] + ([lengths] if lengths else []), kind.lower(), n_outputs=2, **attrs)
    if not both:
        if layer.return_sequences:
            (seq,) = g.node("Squeeze", [y, g.const("axes", [1], np.int64)], "squeeze")  # (T, B, H)
            return g.node("Transpose", [seq], "batch_major", perm=[1, 0, 2])[0]
        return g.node("Squeeze", [y_h, g.const("axes", [0], np.int64)], "squeeze")[0]  # (B, H)
    if layer.return_sequences:  # (T, 2, B, H) → (B, T, 2, H) → (B, T, 2H)
        (seq,) = g.node("Transpose", [y], "batch_major", perm=[2, 0, 1, 3])
        return g.node("Reshape", [seq, g.const("both_directions", [0, 0, -1], np.int64)], "concat")[0]
    (last,) = g.node("Transpose", [y_h], "batch_major", perm=[1, 0, 2])  # (2, B, H) → (B, 2, H) → (B, 2H)
    return g.node("Reshape", [last, g.const("both_directions", [0, -1], np.int64)], "concat")[0]


# ───────────────────────────────────────────────────────────────────────────── import


def import_recurrent(r, node, attrs: dict, kind: str, lengths: str | None):
    """The bptt layer of an ``LSTM`` / ``GRU`` / ``RNN`` node (``r``: the reader of
    :func:`bptt.io.onnx.read_onnx`); ``lengths``: the graph input the node may take as
    ``sequence_lens`` (None: the graph has none). Returns ``(layer, uses_lengths)``."""
    from ..layers import GRU, LSTM, RNN

    G = GATES[kind.lower()]
    inputs = list(node.input) + [""] * 8
    if inputs[4] and inputs[4] != lengths:
        raise r.error(node, f"its sequence_lens {inputs[4]!r} must be the graph's int32 (batch,) lengths input "
                            "(bptt's lengths= are given per call, not stored in the network)")
    if any(inputs[5:8]) or any(n for n in inputs[8:]):
        raise r.error(node, "initial states and peepholes are not supported (bptt starts from zeros)")
    direction = attrs.get("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "bidirectional"):
        raise r.error(node, f"attribute direction={direction!r} is not supported; expected 'forward' or 'bidirectional' "
                            "(a layer running in reverse alone has no bptt layer)")
    for key, ok in (("layout", (0,)), ("input_forget", (0,))):
        if key in attrs and attrs[key] not in ok:
            raise r.error(node, f"attribute {key}={attrs[key]!r} is not supported; expected {ok[-1]!r}")
    if "clip" in attrs:
        raise r.error(node, "attribute clip is not supported (bptt does not clip cell inputs)")
    D = 2 if direction == "bidirectional" else 1
    W = r.const(node, inputs[1], "W").astype(np.float64)
    R = r.const(node, inputs[2], "R").astype(np.float64)
    if W.ndim != 3 or W.shape[0] != D or W.shape[1] % G:
        raise r.error(node, f"W must have shape ({D}, {G}·H, I) for a {direction} {kind}; got {W.shape}")
    H = W.shape[1] // G
    if int(attrs.get("hidden_size", H)) != H or R.shape != (D, G * H, H):
        raise r.error(node, f"R must have shape ({D}, {G * H}, {H}) and hidden_size {H}; got R {R.shape}, "
                            f"hidden_size {attrs.get('hidden_size')}")
    B = r.const(node, inputs[3], "B").astype(np.float64) if inputs[3] else np.zeros((D, 2 * G * H))
    if B.shape != (D, 2 * G * H):
        raise r.error(node, f"B must have shape ({D}, {2 * G * H}); got {B.shape}")
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    options = _options(r, node, attrs, kind, acts, D)
    I = W.shape[2]
    cls = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}[kind]
    layer = cls(I, H, dtype=np.float32, bidirectional=D == 2, **options)
    for d, sfx in enumerate(_DIRECTIONS[:D]):
        Wd, Ud, Wb, Rb = W[d].T, R[d].T, B[d, : G * H], B[d, G * H :]
        if kind == "LSTM":
            inv = _inverse(_LSTM_TO_ONNX)
            params = {"W": _reorder(Wd, inv, H), "U": _reorder(Ud, inv, H), "b": _reorder(Wb + Rb, inv, H)}
        elif kind == "GRU":
            inv = _inverse(_GRU_TO_ONNX)
            params = {"W": _reorder(Wd, inv, H), "U": _reorder(Ud, inv, H), "b": _reorder(Wb, inv, H),
                      "b_u": _reorder(Rb, inv, H)}
        else:
            params = {"W": Wd, "U": Ud, "b": Wb + Rb}
        for k, a in params.items():
            layer.params[k + sfx][...] = a
    return layer, bool(inputs[4])


def _options(r, node, attrs: dict, kind: str, acts: list, D: int) -> dict:
    """The layer options of the node's activations (the same in both directions)."""
    if kind in _DEFAULT_ACTIVATIONS:
        default = _DEFAULT_ACTIVATIONS[kind]
        if acts and acts != default * D:
            raise r.error(node, f"{kind} activations must be the default {', '.join(default)} (per direction); got {acts}")
        return {"reset_after": bool(attrs.get("linear_before_reset", 0))} if kind == "GRU" else {}
    names = {v: k for k, v in _RNN_ACTIVATIONS.items()}
    acts = acts or ["Tanh"] * D
    if len(acts) != D or len(set(acts)) != 1 or acts[0] not in names:
        raise r.error(node, f"RNN activation must be one of Tanh, Relu, Sigmoid, Affine(1, 0), the same in every "
                            f"direction; got {acts}")
    if acts[0] == "Affine" and (list(attrs.get("activation_alpha", [1.0] * D)) != [1.0] * D
                                or list(attrs.get("activation_beta", [0.0] * D)) != [0.0] * D):
        raise r.error(node, "an Affine RNN activation must have alpha 1 and beta 0 (the identity)")
    return {"activation": names[acts[0]]}


def follow_outputs(r, node, op: str, attrs: dict, pending: tuple) -> tuple[str | None, tuple | None]:
    """The node after a recurrent node (``pending``: ``(layer, Y, Y_h, stage)``) decides the
    layer's ``return_sequences``. Returns ``(state, pending)``: the chain's state once the layer's
    output is complete (``"batch"``: batch-major; ``"time"``: time-major ``(T, B, ·)``) and None,
    or None and the pending tuple of the next stage (a bidirectional layer's Reshape)."""
    layer, y, y_h, stage = pending
    src = node.input[0]
    if stage is None and not layer.bidirectional:
        axes = r.const(node, node.input[1], "axes").tolist() if op == "Squeeze" and len(node.input) > 1 else None
        if op == "Squeeze" and "axes" in attrs:
            axes = list(attrs["axes"])
        if op == "Squeeze" and src == y and axes == [1]:
            layer.return_sequences = True
            return "time", None
        if op == "Squeeze" and src == y_h and axes == [0]:
            layer.return_sequences = False
            return "batch", None
        raise r.error(node, "a recurrent node's output must go to Squeeze(axes=[1]) of Y or Squeeze(axes=[0]) of Y_h")
    if stage is None:  # bidirectional: Transpose first
        perm = list(attrs.get("perm", [])) if op == "Transpose" else None
        for out, want, then in ((y, [2, 0, 1, 3], "batch"), (y, [0, 2, 1, 3], "time"), (y_h, [1, 0, 2], "last")):
            if src == out and perm == want:
                return None, (layer, node.output[0], None, then)
        raise r.error(node, "a bidirectional node's output must go to Transpose(perm=[2, 0, 1, 3]) or "
                            "(perm=[0, 2, 1, 3]) of Y, or Transpose(perm=[1, 0, 2]) of Y_h, then Reshape to "
                            "[0, 0, -1] or [0, -1] (the two directions side by side)")
    H2 = 2 * layer.hidden_size
    shape = [int(s) for s in r.const(node, node.input[1], "shape")] if op == "Reshape" and len(node.input) > 1 else None
    allowed = ([[0, -1], [0, H2]] if stage == "last" else [[0, 0, -1], [0, 0, H2]])
    if op != "Reshape" or src != y or shape not in allowed or attrs.get("allowzero", 0):
        raise r.error(node, f"after the Transpose of a bidirectional node's output, Reshape to {allowed[0]} must "
                            f"put the two directions side by side; got {op} {shape}")
    layer.return_sequences = stage != "last"
    return ("time" if stage == "time" else "batch"), None
