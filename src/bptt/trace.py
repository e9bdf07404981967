"""The gradient-flow view: every gate's value and delta at every time step of a backward pass.

After BPTT through an LSTM, GRU or simple RNN, a :class:`GradientFlow` holds, batch-major:

* ``gates (B, T, G·H)`` — the post-activation gate values (LSTM [i, f, g, o], GRU [r, z, n],
  RNN: h itself, gate "a");
* ``dz (B, T, G·H)`` — δ_t = dL/dz_t, the gradient w.r.t. each step's gate pre-activations, the
  backward dict's ``dz``;
* ``dc (B, T, H)`` — the total dL/dc_t (LSTM only; the backward dict's ``dc``);
* ``dh (B, T, H)`` — the total dL/dh_t: the loss's own gradient at step t plus what flows back
  from step t + 1::

      LSTM, RNN:   dh_t = ∂L/∂h_t + δ_{t+1} Uᵀ
      GRU:         dh_t = ∂L/∂h_t + dh_{t+1} ⊙ z_{t+1} + (recurrent product's gradient at t + 1) Uᵀ
      last step:   dh_T = ∂L/∂h_T + dh_last

  and the norm tables ``gate_norms (T, G)`` (‖δ_t‖ of each gate block, Frobenius over batch and
  units), ``dc_norms (T,)`` and ``dh_norms (T,)``. A vanishing gradient shows as norms that shrink
  as t goes back from T; an exploding one as norms that grow.

Sequences of different lengths (``lengths=``, :mod:`bptt.sequences`): the steps
``t >= lengths[b]`` of sequence b are padding, where the functional backward gives no gradient;
``dz``, ``dc`` and ``dh`` are 0 there, and ``dh_last`` enters at each sequence's last real step.
A step where only ``n_t`` of the B sequences are real would show a smaller Frobenius norm for that
reason alone (fewer sequences, not a vanishing gradient), so with lengths each step's norm is
taken over the sequences real at that step and scaled to the batch,
``√(B / n_t · Σ_{b real at t} ‖·‖²)`` (the plain Frobenius norm when every sequence is real; NaN
at a step no sequence reaches). :func:`format_table` prints ``pad`` for the padded steps of the
sequence it shows and for the steps no sequence reaches, and says how many sequences are real at
each step.

Example (the published worked example: Gomez 2016, one LSTM unit, two steps)::

    >>> import numpy as np
    >>> from bptt import example
    >>> from bptt.trace import gradient_flow, format_table
    >>> ex = example.load()
    >>> args = {k: np.array(ex[k], float) for k in ("x", "W", "U", "b")}
    >>> h = example.run(ex)["h"]
    >>> flow = gradient_flow("lstm", args, dh=h - np.array(ex["y"]))
    >>> flow.gate_norms.shape, flow.gate_names
    ((2, 4), ('i', 'f', 'g', 'o'))
    >>> print(format_table(flow).splitlines()[4])        # step 0: i, f, g, o, c, h as published
       0    0.96083    0.85195    0.81775    0.81757    0.78573    0.53631
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import functional as Fn

__all__ = ["GradientFlow", "gradient_flow", "layer_flow", "format_table", "GATE_NAMES"]

#: Gate names of each cell, in the order of the gate blocks of W, U, b, ``gates`` and ``dz``.
GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("a",)}

_ARGS = {
    "lstm": ("x", "W", "U", "b", "h0", "c0"),
    "gru": ("x", "W", "U", "b", "b_u", "h0"),
    "rnn": ("x", "W", "U", "b", "h0"),
}
_REQUIRED = {"lstm": ("x", "W", "U", "b"), "gru": ("x", "W", "U", "b", "b_u"), "rnn": ("x", "W", "U", "b")}
_OPTIONS = {"lstm": ("backend",), "gru": ("reset_after", "backend"), "rnn": ("activation", "backend")}

#: ``format_table`` prints every unit of every gate up to this hidden size, norms above it.
TABLE_MAX_UNITS = 4


@dataclass(frozen=True, eq=False)
class GradientFlow:
    """The per-step values and deltas of one forward/backward pass; see the module docstring.

    Attributes:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.  gate_names: the G gate names.
        gates, dz: ``(B, T, G·H)``.  h, dh: ``(B, T, H)``.  c, dc: ``(B, T, H)`` for the LSTM, else None.
        grads: the backward dict (``dx``, ``dW``, ``dU``, ``db``, ``dh0``, …).
        lengths: ``(B,)`` real steps of each sequence, or None (every step real).
        gate_norms ``(T, G)``, dh_norms ``(T,)``, dc_norms ``(T,)`` (None unless LSTM): Frobenius
        norms over batch and units; with lengths over the sequences real at each step, scaled to
        the batch (module docstring).
    """

    cell: str
    gate_names: tuple[str, ...]
    gates: np.ndarray
    dz: np.ndarray
    h: np.ndarray
    dh: np.ndarray
    c: np.ndarray | None
    dc: np.ndarray | None
    grads: dict = field(repr=False)
    lengths: np.ndarray | None = None

    @property
    def batch_size(self) -> int:
        return self.h.shape[0]

    @property
    def steps(self) -> int:
        return self.h.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.h.shape[2]

    def gate_block(self, a: np.ndarray, gate: str) -> np.ndarray:
        """The ``(B, T, H)`` block of ``gates`` or ``dz`` that belongs to ``gate`` (a name in gate_names)."""
        if gate not in self.gate_names:
            raise ValueError(f"GradientFlow.gate_block: gate must be one of {self.gate_names}; got {gate!r}")
        k, H = self.gate_names.index(gate), self.hidden_size
        return a[:, :, k * H : (k + 1) * H]

    @property
    def real(self) -> np.ndarray:
        """``(B, T)`` bool: the real steps of each sequence (all True without lengths)."""
        if self.lengths is None:
            return np.ones((self.batch_size, self.steps), bool)
        return np.arange(self.steps)[None, :] < self.lengths[:, None]

    @property
    def real_per_step(self) -> np.ndarray:
        """``(T,)``: how many sequences are real at each step."""
        return self.real.sum(axis=0)

    def _scaled(self, squares: np.ndarray) -> np.ndarray:
        """√ of summed squares per step (first axis T), scaled to the batch by B / n_t with lengths."""
        if self.lengths is None:
            return np.sqrt(squares)
        n = self.real_per_step.astype(np.float64).reshape((-1,) + (1,) * (squares.ndim - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, np.sqrt(squares * (self.batch_size / np.where(n > 0, n, 1.0))), np.nan)

    @property
    def gate_norms(self) -> np.ndarray:
        """``(T, G)``: ‖δ_t‖ of gate block g, Frobenius norm over batch and units (with lengths: over
        the sequences real at step t, scaled to the batch)."""
        B, T, H, G = self.batch_size, self.steps, self.hidden_size, len(self.gate_names)
        blocks = self.dz.reshape(B, T, G, H)
        return self._scaled(np.einsum("btgh,btgh->tg", blocks, blocks))

    @property
    def dh_norms(self) -> np.ndarray:
        """``(T,)``: ‖dL/dh_t‖ over batch and units (with lengths as :attr:`gate_norms`)."""
        return self._scaled(np.einsum("bth,bth->t", self.dh, self.dh))

    @property
    def dc_norms(self) -> np.ndarray | None:
        """``(T,)``: ‖dL/dc_t‖ over batch and units (LSTM), else None (with lengths as :attr:`gate_norms`)."""
        return None if self.dc is None else self._scaled(np.einsum("bth,bth->t", self.dc, self.dc))


def _cell(fn: str, cell) -> str:
    name = cell.lower() if isinstance(cell, str) else cell
    if name not in GATE_NAMES:
        raise ValueError(f"{fn}: cell must be one of 'lstm', 'gru', 'rnn'; got {cell!r}")
    return name


def gradient_flow(cell: str, forward_args: dict, dh=None, dh_last=None, dc_last=None, *, lengths=None,
                  **options) -> GradientFlow:
    """Run :mod:`bptt.functional`'s forward and backward pass for ``cell`` and trace the deltas.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        forward_args: the forward function's arrays by name: ``x``, ``W``, ``U``, ``b`` (and ``b_u``
            for the GRU), optionally ``h0`` (and ``c0`` for the LSTM).
        dh: ``(B, T, H)`` ∂L/∂h_t of the loss at every step (None: no loss on the per-step outputs).
        dh_last, dc_last: ``(B, H)`` extra gradients of h_T and (LSTM) c_T (with lengths: of the
            states after each sequence's last real step).
        lengths: ``(B,)`` real steps of each sequence (:mod:`bptt.sequences`), or None.
        **options: further forward options: ``reset_after`` (GRU), ``activation`` (RNN), ``backend``.

    Returns:
        a :class:`GradientFlow`; its ``dz``/``dc`` are the backward dict's, ``dh`` the total dL/dh_t.

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> args = {"x": rng.normal(size=(2, 5, 3)), "W": rng.normal(size=(3, 4)),
        ...         "U": rng.normal(size=(4, 4)), "b": np.zeros(4)}
        >>> flow = gradient_flow("rnn", args, dh_last=np.ones((2, 4)))
        >>> flow.dz.shape, flow.gate_norms.shape, flow.dh_norms.shape
        ((2, 5, 4), (5, 1), (5,))
    """
    fn = "gradient_flow"
    cell = _cell(fn, cell)
    if not isinstance(forward_args, dict):
        raise ValueError(f"{fn}: forward_args must be a dict of the {cell}_forward arrays {_ARGS[cell]}; got {type(forward_args).__name__}")
    unknown = sorted(set(forward_args) - set(_ARGS[cell]))
    missing = [k for k in _REQUIRED[cell] if k not in forward_args]
    if unknown or missing:
        raise ValueError(
            f"{fn}: forward_args must have the keys {_REQUIRED[cell]} (optional: "
            f"{tuple(k for k in _ARGS[cell] if k not in _REQUIRED[cell])}) for cell={cell!r}; "
            f"got {sorted(forward_args)} (missing {missing}, unknown {unknown})"
        )
    bad = sorted(set(options) - set(_OPTIONS[cell]))
    if bad:
        raise ValueError(f"{fn}: options for cell={cell!r} must be among {_OPTIONS[cell]}; got {bad}")
    if dc_last is not None and cell != "lstm":
        raise ValueError(f"{fn}: dc_last is only for cell='lstm' (the only cell with a cell state); got cell={cell!r}")

    forward = getattr(Fn, f"{cell}_forward")
    h, cache = forward(**forward_args, **options, lengths=lengths)
    if cell == "lstm":
        grads = Fn.lstm_backward(dh, cache, dh_last=dh_last, dc_last=dc_last)
    else:
        grads = getattr(Fn, f"{cell}_backward")(dh, cache, dh_last=dh_last)
    dz = np.asarray(grads["dz"])
    gates = np.asarray(cache.gates)
    B, T, H = h.shape
    dh_loss = np.zeros((B, T, H), h.dtype) if dh is None else np.asarray(dh, h.dtype)
    dh_total = np.empty((B, T, H), h.dtype)
    # dh_T = ∂L/∂h_T + dh_last; then back in time, dh_t = ∂L/∂h_t + (what step t+1 sends to h_t).
    last = np.zeros((B, H), h.dtype) if dh_last is None else np.asarray(dh_last, h.dtype)
    L = None if lengths is None else np.asarray(lengths)
    flow_back = last if L is None else np.zeros((B, H), h.dtype)
    U = np.asarray(forward_args["U"], h.dtype)
    for t in range(T - 1, -1, -1):
        if L is None:
            dh_total[:, t] = dh_loss[:, t] + flow_back
        else:  # dh_last enters at each sequence's last real step; padded steps hold and pass nothing
            flow_back = np.where((t == L - 1)[:, None], last, flow_back)
            dh_total[:, t] = np.where((t < L)[:, None], dh_loss[:, t] + flow_back, 0)
        flow_back = _to_previous_state(cell, cache, U, gates[:, t], dz[:, t], dh_total[:, t])
    c = np.asarray(cache.c) if cell == "lstm" else None
    dc = np.asarray(grads["dc"]) if cell == "lstm" else None
    return GradientFlow(cell, GATE_NAMES[cell], gates, dz, np.asarray(h), dh_total, c, dc, grads,
                        None if L is None else L.astype(np.int64))


def _to_previous_state(cell, cache, U, gates_t, dz_t, dh_t):
    """dL/dh_{t-1} through step t alone (the chain rule of the cell's recurrent inputs)."""
    if cell != "gru":  # z_t = x_t W + h_{t-1} U + b
        return dz_t @ U.T
    H = U.shape[0]
    r, z = gates_t[:, :H], gates_t[:, H : 2 * H]
    out = dh_t * z  # h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    if cache.reset_after:  # a_n = … + r ⊙ (h_{t-1} U_n + bu_n)
        dhu = np.concatenate([dz_t[:, : 2 * H], dz_t[:, 2 * H :] * r], axis=1)
        return out + dhu @ U.T
    # a_n = … + (r ⊙ h_{t-1}) U_n + bu_n
    return out + dz_t[:, : 2 * H] @ U[:, : 2 * H].T + (dz_t[:, 2 * H :] @ U[:, 2 * H :].T) * r


def layer_flow(layer, x, dy, initial_state: dict | None = None, lengths=None) -> GradientFlow:
    """The gradient flow of a recurrent layer (:class:`bptt.layers.LSTM`, ``GRU`` or ``RNN``).

    Runs the functional pair with the layer's parameters and options; the layer itself (its cache,
    carried state and gradients) is not touched.

    Args:
        layer: the recurrent layer.
        x: ``(B, T, input_size)`` inputs (converted to the layer's dtype).
        dy: the gradient of the layer's output: ``(B, T, H)`` when ``return_sequences``, else
            ``(B, H)`` (it then enters as ``dh_last``).
        initial_state: ``{"h0": …, "c0": …}``; zeros when omitted.
        lengths: ``(B,)`` real steps of each sequence, or None (``dy`` of a layer without
            ``return_sequences`` then enters at each sequence's last real step).
    """
    fn = "layer_flow"
    kind = type(layer).__name__.lower()
    if kind not in GATE_NAMES or not hasattr(layer, "params"):
        raise ValueError(f"{fn}: layer must be a bptt LSTM, GRU or RNN layer; got {type(layer).__name__}")
    if getattr(layer, "bidirectional", False):
        raise ValueError(f"{fn}: a bidirectional {type(layer).__name__} has two directions; trace one direction with "
                         f"gradient_flow (the reverse one's parameters are W_reverse, U_reverse, b_reverse)")
    args = {"x": np.asarray(x, layer.dtype), **{k: layer.params[k] for k in _ARGS[kind] if k in layer.params}}
    states = ("h0", "c0") if kind == "lstm" else ("h0",)
    for k, a in (initial_state or {}).items():
        if k not in states:
            raise ValueError(f"{fn}: initial_state keys must be among {states}; got {k!r}")
        args[k] = np.asarray(a, layer.dtype)
    options = {"reset_after": layer.reset_after} if kind == "gru" else {"activation": layer.activation} if kind == "rnn" else {}
    dy = np.asarray(dy, layer.dtype)
    if layer.return_sequences:
        return gradient_flow(kind, args, dh=dy, lengths=lengths, **options)
    return gradient_flow(kind, args, dh_last=dy, lengths=lengths, **options)


def _row(t, values) -> str:
    return f"  {t:>2}  " + "  ".join(f"{v:9.5f}" if np.isfinite(v) else f"{'pad':>9}" for v in values)


def _pad_row(t, n: int) -> str:
    return f"  {t:>2}  " + "  ".join(f"{'pad':>9}" for _ in range(n))


def _header(names) -> str:
    return "   t  " + "  ".join(f"{n:>9}" for n in names)


def _norm_rows(flow: "GradientFlow", names: list) -> list[str]:
    """The norms per step, steps in reverse; with lengths a last column ``real``: the sequences
    real at each step (``pad`` in the norms where there is none)."""
    lstm = flow.cell == "lstm"
    counts = flow.real_per_step
    lines = [_header(names + (["real"] if flow.lengths is not None else []))]
    for t in reversed(range(flow.steps)):
        vals = list(flow.gate_norms[t]) + ([flow.dc_norms[t]] if lstm else []) + [flow.dh_norms[t]]
        lines.append(_row(t, vals) + (f"  {counts[t]:>9}" if flow.lengths is not None else ""))
    return lines


def format_table(flow: GradientFlow, batch: int = 0) -> str:
    """The flow as text in the style of the worked example (:func:`bptt.example.format_report`).

    For hidden sizes up to ``TABLE_MAX_UNITS`` (4): a forward table with every gate value of
    every unit per step (``i``, ``f``, … for one unit; ``i[0]``, ``i[1]``, … for several), c (LSTM)
    and h, then a backward table, steps in reverse, with every delta dz, dc (LSTM) and the total dh
    — all for sequence ``batch`` of the batch. Above that, the table of norms per step instead
    (over the whole batch): ‖dz‖ per gate, ‖dc‖ (LSTM), ‖dh‖.

    With lengths (:attr:`GradientFlow.lengths`) the padded steps of sequence ``batch`` show ``pad``
    instead of numbers, the norm tables have a column ``real`` (the sequences real at each step)
    and their norms are over those sequences, scaled to the batch (module docstring).
    """
    fn = "format_table"
    if not isinstance(flow, GradientFlow):
        raise ValueError(f"{fn}: flow must be a GradientFlow (from gradient_flow or layer_flow); got {type(flow).__name__}")
    B, T, H = flow.batch_size, flow.steps, flow.hidden_size
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 0 <= batch < B:
        raise ValueError(f"{fn}: batch must be an integer index in [0, {B}) (the batch size); got {batch!r}")
    lstm = flow.cell == "lstm"
    title = f"{flow.cell.upper()} gradient flow: B={B}, T={T}, H={H}"
    ragged = flow.lengths is not None
    scaled = (f"; with lengths, the norms of each step are over the sequences real at that step (column real), "
              f"scaled to the batch: sqrt(B/real · sum of squares)") if ragged else ""
    names = [f"|dz_{g}|" for g in flow.gate_names] + (["|dc|"] if lstm else []) + ["|dh|"]
    if H > TABLE_MAX_UNITS:
        lines = [title + f"; norms over batch and units (H > {TABLE_MAX_UNITS}: per-unit values not shown){scaled}", "",
                 "Backward, steps in reverse"]
        return "\n".join(lines + _norm_rows(flow, names))

    unit = (lambda g, k: g) if H == 1 else (lambda g, k: f"{g}[{k}]")
    gate_cols = [unit(g, k) for g in flow.gate_names for k in range(H)]
    state_cols = lambda s: [unit(s, k) for k in range(H)]  # noqa: E731
    real = flow.real[batch]
    shown = f"; sequence {batch} of the batch"
    if ragged:
        n_real = int(flow.lengths[batch])
        shown += (f": {n_real} real steps of {T}" + (f", steps {n_real}-{T - 1} are padding (pad)" if n_real < T else ""))
    lines = [title + shown, "", "Forward: gate values per step"]
    forward_cols = gate_cols + (state_cols("c") if lstm else []) + state_cols("h")
    lines.append(_header(forward_cols))
    for t in range(T):
        vals = list(flow.gates[batch, t]) + (list(flow.c[batch, t]) if lstm else []) + list(flow.h[batch, t])
        lines.append(_row(t, vals) if real[t] else _pad_row(t, len(forward_cols)))
    lines += ["", "Backward, steps in reverse: deltas dz w.r.t. the gate pre-activations"
              + (", the total cell-state gradient dc" if lstm else "") + " and the total hidden-state gradient dh"]
    backward_cols = [f"dz_{c}" for c in gate_cols] + ([f"d{c}" for c in state_cols("c")] if lstm else []) + [
        f"d{c}" for c in state_cols("h")]
    lines.append(_header(backward_cols))
    for t in reversed(range(T)):
        vals = list(flow.dz[batch, t]) + (list(flow.dc[batch, t]) if lstm else []) + list(flow.dh[batch, t])
        lines.append(_row(t, vals) if real[t] else _pad_row(t, len(backward_cols)))
    lines += ["", "Norms per step over the batch" + scaled]
    return "\n".join(lines + _norm_rows(flow, names))


def model_flow(model, X, y, lengths=None) -> GradientFlow:
    """The gradient flow through the first recurrent layer of a :class:`bptt.model.Sequential`.

    ``X`` is standardised as the model does for predictions; the model's loss on ``(X, y)`` is
    backpropagated through the layers above the recurrent one (dropout off), and
    :func:`layer_flow` traces that layer with the gradient arriving at its output. ``lengths``:
    ``(n,)`` real steps of each sequence (padded steps set to 0, never read; per-step targets
    ``y (n, T)``: the loss over the real steps, as :func:`bptt.train.fit` takes it).
    """
    from . import sequences
    from .layers.dropout import Dropout

    fn = "model_flow"
    index = next((i for i, layer in enumerate(model.layers) if hasattr(layer, "hidden_size")), None)
    if index is None:
        raise ValueError(f"{fn}: the model has no recurrent layer to trace; got layers "
                         f"{[type(layer).__name__ for layer in model.layers]}")
    x, L = model._prepare(fn, X, lengths)
    for layer in model.layers[:index]:
        x = layer.forward(x, training=False)
    x_rec = x
    outputs, L_out = [x], L
    for layer in model.layers[index:]:
        if L_out is not None and hasattr(layer, "hidden_size"):
            outputs.append(layer.forward(outputs[-1], training=True, lengths=L_out))
            L_out = L_out if layer.return_sequences else None
        else:
            outputs.append(layer.forward(outputs[-1], training=not isinstance(layer, Dropout)))
    out = outputs[-1]
    target = sequences.targets(fn, model.loss.name, y, len(out), out.shape[1:], out.dtype, L_out)
    if not (model.loss.name == "softmax_ce" and target.ndim == out.ndim - 1):
        target = target.reshape(out.shape)
    _, dy = sequences.loss_and_grad(model.loss, out, target, L_out)
    for layer in reversed(model.layers[index + 1 :]):
        dy = layer.backward(dy)
    model.layers[index].reset_states()
    return layer_flow(model.layers[index], x_rec, dy, lengths=L)
