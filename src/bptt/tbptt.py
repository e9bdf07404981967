"""Truncated backpropagation through time: TBPTT(k1, k2), one mini-batch at a time.

TBPTT(k1, k2) (Williams & Peng 1990; Sutskever 2013, section 2.3) runs the batch's sequences
forward and, every k1 steps, makes an update whose gradient is that of the losses at the steps
since the previous update, backpropagated through at most k2 steps back from the update point.
:func:`bptt.train.fit` uses it with ``tbptt=(k1, k2)``; :func:`run_batch` does one batch.

Semantics (what :func:`run_batch` computes, precisely)
------------------------------------------------------
* **Update points.** With ``T_end`` the batch's last real step + 1 (``max(lengths)``, or the
  time axis T without lengths), the updates are at ``u_j = j·k1`` for ``j·k1 < T_end`` and at
  ``T_end`` (``u_0 = 0``; the last segment may be shorter than k1). Update j's **segment** is the
  steps ``[u_{j-1}, u_j)``; its **window** is ``[s_j, u_j)`` with ``s_j = max(0, u_{j-1} − (k2 − k1))``,
  the segment and the k2 − k1 steps before it (k2 steps back from the update point, fewer for
  the first windows and for a last segment shorter than k1; with ``k1 == k2`` the windows are the
  segments, which do not overlap): the losses at the segment's steps are backpropagated through
  the window, and the states at its start ``s_j`` are constants (no gradient flows into the
  steps before it).
* **The forward pass (the main pass)** runs once over the sequence, segment by segment, each
  segment with the parameters current when it is reached (after update j−1 for segment j), and
  carries every recurrent layer's state (h, and c for the LSTM) from segment to segment; it stores
  the states at the steps where later windows start. With ``k1 == k2`` each window is its
  segment, and the main pass is the windows themselves: each starts from the state the window
  before ended with (chaining the functional API by hand with ``h0``/``c0``). With ``k2 > k1``
  each window is recomputed, with the current parameters, from the main pass's state at its
  start; the gradient flows from the segment's losses back through the recomputed steps
  ``[s_j, u_{j-1})``, which have no loss of their own in this update (``dh`` only on the last
  segment's outputs).
* **Losses and normalisation.** Per-step targets (the network's output ``(B, T, K)``): update j's
  loss is that of the real steps in its segment. A per-sequence target (output ``(B, K)``: the
  last recurrent layer has ``return_sequences=False``): the loss is at each sequence's last real
  step, in the segment that holds it; an update whose segment holds no loss is skipped (no
  backward, no call to ``update``). Without lengths the only loss is in the last segment, so the
  model learns only from its last window (at most k2 steps). Each update's loss is the segment's
  part of the batch's loss with the batch's whole denominator ``weight_total`` (by default Σ over
  the batch's real steps of w: Σ_b w_b·length_b per step, Σ_b w_b per sequence), so the updates'
  losses add up to the batch's loss (each computed with the parameters of its update), and
  ``k1 = k2 >= T_end`` is one update equal to the ordinary full-BPTT step of
  :func:`bptt.train.fit` (the same numbers without event weights: the loss is then called as fit
  calls it).
* **Lengths** (``1 <= lengths[b] <= T``, PyTorch's packed-sequence semantics): a window runs on
  the rows that have a real step in its segment (``lengths[b] > u_{j-1}``), with their lengths
  clipped to the window (``min(lengths[b], u_j) − s_j >= 1``); a row that ends inside the segment
  contributes its losses up to its last real step (a per-sequence target: its one loss), which this
  update applies. Rows whose real steps all lie before the segment drop out.
* **States across batches.** Each batch starts from zero states, as in fit; a stateful layer
  (TMVA ``rememberState``, Keras ``stateful=True``) starts from the state it carries, row k from
  stream k, and carries afterwards each row's state after its last real step from the main pass
  (the streams beyond the batch's rows keep theirs), as :meth:`bptt.layers.LSTM.forward` does.
* **Dropout** draws its masks at every forward it takes part in: the main pass and a window that
  recomputes steps (``k2 > k1``) draw different masks for those steps; with ``k1 == k2`` every
  step is computed once.
* **Networks.** Time must pass through the network step by step up to the last recurrent layer:
  LSTM/GRU/RNN layers (not bidirectional: the reverse direction reads the steps after the window),
  ``Dense`` and ``Dropout`` (both act on each step). After the last recurrent layer: with
  ``return_sequences=True`` only ``Dense`` and ``Dropout`` (per-step outputs); with
  ``return_sequences=False`` any layer (they act on the last output). ``Flatten``/``Reshape``
  across the time axis (TMVA's ``RESHAPE|FLAT`` after a sequence) mixes all steps into one vector
  and is refused.

Interface (how fit's batch loop uses it)::

    k1, k2 = check_tbptt(model, tbptt)                       # once, before training
    ...
    def update(window_loss):                                 # per window: penalty, clip, step
        params, grads = model.parameters(), model.gradients()
        ...                                                  # (its return value is ignored)
        opt.step(params, grads)
    n_terms = ...                       # the batch's terms: its sequences, or its real steps per step
    loss = run_batch(model, Xt[idx], Yt[idx], Wt[idx], Lt[idx], k1=k1, k2=k2,
                     weight_total=n_terms, update=update)    # the batch's loss, as fit reports it

Example::

    >>> import numpy as np
    >>> from bptt.layers import LSTM, Dense
    >>> from bptt.model import Sequential
    >>> model = Sequential([LSTM(3, 4, return_sequences=True, seed=0), Dense(4, 1, seed=1)], loss="mse")
    >>> x = np.ones((2, 10, 3), np.float32); y = np.zeros((2, 10, 1), np.float32)
    >>> calls = []
    >>> loss = run_batch(model, x, y, k1=4, k2=6, update=calls.append)
    >>> len(calls), bool(np.isclose(sum(calls), loss))         # updates after steps 4, 8 and 10
    (3, True)
"""

from __future__ import annotations

import math

import numpy as np

from . import _validation as v
from .layers import LSTM, Dense, Dropout
from .layers.recurrent import _Recurrent

__all__ = ["check_tbptt", "run_batch", "windows"]


def check_tbptt(model, tbptt) -> tuple[int, int]:
    """``(k1, k2)`` from ``tbptt``, checked against the network; ValueError otherwise.

    ``tbptt``: a pair of integers ``(k1, k2)`` with ``1 <= k1 <= k2`` (k1 steps forward between
    updates, k2 steps backpropagated from each update point), or one integer k for ``(k, k)``
    (PyTorch Lightning's ``truncated_bptt_steps``). The network must let time pass step by step
    up to its last recurrent layer (see the module's docstring).
    """
    fn = "fit"
    pair = (tbptt, tbptt) if _is_int(tbptt) else tbptt
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(k) for k in pair)):
        raise ValueError(
            f"{fn}: tbptt must be a pair of integers (k1, k2) with 1 <= k1 <= k2 (k1 steps forward between "
            f"updates, k2 steps backpropagated), or one integer k for (k, k); got {tbptt!r}"
        )
    k1, k2 = (int(k) for k in pair)
    if k1 < 1:
        raise ValueError(f"{fn}: tbptt=(k1, k2) needs k1 >= 1 (steps between updates); got tbptt={tbptt!r}")
    if k2 < k1:
        raise ValueError(
            f"{fn}: tbptt=(k1, k2) needs k2 >= k1; got tbptt={tbptt!r}: backpropagating k2={k2} steps from "
            f"each update would drop the losses of the first {k1 - k2} steps of every {k1}-step segment "
            f"(no gradient would reach them); use k2 >= k1"
        )
    _network(model, fn)
    return k1, k2


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


class _Network:
    """The layers split for TBPTT: ``time`` (input to the last recurrent layer, every one acting
    per step), ``head`` (after it) and whether the output is per step."""

    def __init__(self, time, head, per_step):
        self.time, self.head, self.per_step = time, head, per_step
        self.recurrent = [layer for layer in time if isinstance(layer, _Recurrent)]


def _network(model, fn: str) -> _Network:
    layers = list(model.layers)
    rec = [i for i, layer in enumerate(layers) if isinstance(layer, _Recurrent)]
    if not rec:
        raise ValueError(
            f"{fn}: tbptt needs a recurrent layer (LSTM, GRU or RNN) whose steps it truncates; the network has "
            f"{', '.join(type(layer).__name__ for layer in layers)}: train it without tbptt"
        )
    last = rec[-1]
    for i, layer in enumerate(layers):
        name = f"{type(layer).__name__} (layer {i})"
        if isinstance(layer, _Recurrent) and getattr(layer, "bidirectional", False):
            raise ValueError(
                f"{fn}: tbptt cannot truncate a bidirectional layer, {name}: its reverse direction reads the "
                f"steps after each window; use a one-directional layer or train without tbptt"
            )
        if isinstance(layer, _Recurrent) and i < last and not layer.return_sequences:
            raise ValueError(
                f"{fn}: tbptt needs every recurrent layer before the last one to return sequences; {name} has "
                f"return_sequences=False, so the layers after it see no time axis"
            )
        per_step_region = i < last or layers[last].return_sequences
        if per_step_region and not isinstance(layer, (_Recurrent, Dense, Dropout)):
            where = "before the last recurrent layer" if i < last else "after a recurrent layer returning sequences"
            raise ValueError(
                f"{fn}: tbptt needs time to pass through the network step by step, but {name} comes {where}: "
                f"it does not act on each step alone (a Flatten or Reshape across time, as TMVA's RESHAPE|FLAT, "
                f"mixes all steps into one vector, so no window of steps has its own loss); use per-step Dense "
                f"layers or return_sequences=False at the last recurrent layer, or train without tbptt"
            )
    return _Network(layers[: last + 1], layers[last + 1 :], layers[last].return_sequences)


def windows(T_end: int, k1: int, k2: int) -> list[tuple[int, int, int]]:
    """The updates of a batch whose last real step is ``T_end − 1``: ``(s_j, u_{j−1}, u_j)`` for
    each, the window ``[s_j, u_j)`` and its segment ``[u_{j−1}, u_j)`` (see the module's docstring).

    Example::

        >>> windows(10, 4, 6)
        [(0, 0, 4), (2, 4, 8), (6, 8, 10)]
    """
    ends = list(range(k1, T_end, k1)) + [T_end]
    return [(max(0, prev - (k2 - k1)), prev, u) for prev, u in zip([0] + ends[:-1], ends)]


def run_batch(model, xb, yb, wb=None, lengths=None, *, k1, k2, weight_total=None, update) -> float:
    """One mini-batch of TBPTT(k1, k2) (semantics: the module's docstring); returns the batch's
    loss, the sum of the updates' losses (each computed before its update).

    Args:
        model: a :class:`bptt.model.Sequential` (:func:`check_tbptt` says which networks).
        xb: ``(B, T, F)`` inputs in the model's dtype (standardised, as fit prepares them).
        yb: the targets as the loss takes them: per step ``(B, T, K)`` (or ``(B, T)``: class
            indices for ``softmax_ce``, one output for the others), per sequence ``(B, K)`` / ``(B,)``.
        wb: event weights ``(B,)`` or None (all 1); a sequence's weight counts at each of its steps.
        lengths: ``(B,)`` integers, ``1 <= lengths[b] <= T``, or None (every step real).
        k1, k2: as checked by :func:`check_tbptt`.
        weight_total: the divisor of every update's ``Σ w·loss`` (fit: the batch's share of the
            training set's weight); None: Σ over the batch's real steps of w.
        update: called after each window's backward as ``update(window_loss)`` with the model's
            gradients filled (:meth:`bptt.model.Sequential.gradients`, overwritten by each
            backward); it applies them (fit: penalty, clipping, ``opt.step``). Not called for a
            window without loss.
    """
    fn = "tbptt"
    k1, k2 = check_tbptt(model, (k1, k2))
    net = _network(model, fn)
    xb = v.float_array(fn, "xb", xb, 3, "(B, T, F)")
    B, T = xb.shape[:2]
    L = _lengths(fn, lengths, B, T)
    w = np.ones(B) if wb is None else v.sample_weight(fn, wb, B)
    yb = np.asarray(yb)
    if yb.shape[: 2 if net.per_step else 1] != ((B, T) if net.per_step else (B,)):
        lead = "(B, T, ...) = " + str((B, T)) if net.per_step else f"(B, ...) with B = {B}"
        raise ValueError(f"{fn}: yb must have the leading axes {lead} of the network's outputs; got shape {yb.shape}")
    if weight_total is None:
        weight_total = float(np.sum(w * L)) if net.per_step else float(np.sum(w))
        if not weight_total > 0:  # event weights may be negative (TMVA's), their sum may not
            raise ValueError(
                f"{fn}: the event weights wb sum to {weight_total!r} over the batch's "
                f"{'real steps' if net.per_step else 'sequences'}, the divisor of Σ w·loss; it must be positive: "
                f"pass weight_total (fit passes the batch's share of the training set's weight)"
            )
    elif not (_is_number(weight_total) and math.isfinite(weight_total) and weight_total > 0):
        raise ValueError(
            f"{fn}: weight_total must be a finite positive number (it divides Σ w·loss); got {weight_total!r}"
        )
    if not callable(update):
        raise ValueError(f"{fn}: update must be a callable update(window_loss); got {update!r}")

    run = _Batch(model, net, xb, yb, w, L, float(weight_total), unweighted=wb is None)
    flags = [layer.stateful for layer in net.recurrent]
    held = [layer.get_state() for layer in net.recurrent]
    try:
        for layer in net.recurrent:  # each forward leaves its final states in layer.state
            layer.stateful = True
        total = run.all(windows(int(L.max()), k1, k2), update, any(flags))
    finally:
        for layer, flag, state in zip(net.recurrent, flags, held):
            layer.stateful = flag
            layer.set_state(state)
    for k, (layer, flag, state) in enumerate(zip(net.recurrent, flags, held)):
        if flag:  # the rows' final states; streams beyond the batch keep theirs
            final = run.cursor[k]
            layer.set_state({n: np.concatenate([a, state[n][B:]]) if state else a for n, a in final.items()})
    return total


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _lengths(fn, lengths, B, T) -> np.ndarray:
    if lengths is None:
        return np.full(B, T, np.int64)
    a = np.asarray(lengths)
    if a.shape != (B,) or a.dtype.kind not in "iu":
        raise ValueError(
            f"{fn}: lengths must be an integer array of shape (B,) = ({B},); got {a.dtype} of shape {a.shape}"
        )
    if a.size and (a.min() < 1 or a.max() > T):
        raise ValueError(f"{fn}: lengths must lie in [1, T] = [1, {T}]; got values from {a.min()} to {a.max()}")
    return a.astype(np.int64)


class _Batch:
    """One batch's TBPTT: the main pass's states, the windows' forward and backward passes."""

    def __init__(self, model, net, xb, yb, w, L, weight_total, unweighted):
        self.model, self.net, self.xb, self.yb, self.w, self.L = model, net, xb, yb, w, L
        self.weight_total, self.unweighted = weight_total, unweighted
        B = xb.shape[0]
        # the main pass's states, (B, H) per state per recurrent layer: a row's entries are its state
        # at the main pass's position, or after its last real step once it has ended
        self.cursor = [self._initial(layer, B) for layer in net.recurrent]
        self.stored = {0: self._copy()}  # the main pass's states where windows start

    @staticmethod
    def _initial(layer, B):
        names = ("h0", "c0") if isinstance(layer, LSTM) else ("h0",)
        carried = layer.get_state() if layer.stateful else {}
        out = {}
        for n in names:
            a = np.zeros((B, layer.hidden_size), layer.dtype)
            if carried:  # row k continues stream k; rows beyond the streams start from zeros
                m = min(B, len(carried[n]))
                a[:m] = carried[n][:m]
            out[n] = a
        return out

    def all(self, plan, update, stateful) -> float:
        total = 0.0
        starts = [s for s, _, _ in plan]
        for j, (s, a, b) in enumerate(plan):
            cuts = sorted({q for q in starts[j + 1 :] if a < q < b}) + [b]
            has_loss = self.net.per_step or bool(np.any((self.L > a) & (self.L <= b)))
            reuse = s == a and cuts == [b]  # the window is the segment: it is the main pass
            last = j == len(plan) - 1
            if not (reuse and has_loss) and not (last and not stateful):
                self._advance(a, cuts)
            if has_loss:
                loss = self._window(s, a, b, advance=reuse)
                total += loss
                update(loss)
            for q in [q for q in self.stored if q < starts[min(j + 1, len(plan) - 1)]]:
                del self.stored[q]
        return total

    def _advance(self, a, cuts):
        """The main pass over the segment starting at ``a``, cut at ``cuts`` (its end last), storing
        the states at the cuts."""
        pos = a
        for q in cuts:
            rows = np.flatnonzero(self.L > pos)
            if rows.size == 0:
                break
            lens = np.minimum(self.L[rows], q) - pos
            _, ends = self._forward_time(rows, pos, q, self._rows(self.cursor, rows), lens)
            self._put(rows, ends)
            self.stored[q] = self._copy()
            pos = q

    def _copy(self):
        return [{n: x.copy() for n, x in d.items()} for d in self.cursor]

    def _put(self, rows, ends):
        for d, e in zip(self.cursor, ends):
            for n in d:
                d[n][rows] = e[n]

    @staticmethod
    def _rows(states, rows):
        return [{n: x[rows] for n, x in d.items()} for d in states]

    def _forward_time(self, rows, s, u, initial, lens):
        """The layers up to the last recurrent one over ``xb[rows, s:u]``: (their output, each
        recurrent layer's final states)."""
        x = self.xb[rows, s:u]
        lens = None if (lens == u - s).all() else lens
        ends, k = [], 0
        for layer in self.net.time:
            if isinstance(layer, _Recurrent):
                x = layer.forward(x, training=True, initial_state=initial[k], lengths=lens)
                ends.append(layer.get_state())
                k += 1
            else:
                x = layer.forward(x, training=True)
        return x, ends

    def _window(self, s, a, b, advance) -> float:
        """Update's window ``[s, b)`` for the segment ``[a, b)``: forward, loss, backward; the
        window's loss. ``advance``: the window is the main pass's segment (its final states kept)."""
        net, loss_fn = self.net, self.model.loss
        rows = np.flatnonzero(self.L > a)
        lens = np.minimum(self.L[rows], b) - s
        out, ends = self._forward_time(rows, s, b, self._rows(self.stored[s], rows), lens)
        if advance:
            self._put(rows, ends)
            self.stored[b] = self._copy()
        w = self.w[rows]
        if net.per_step:
            o = _forward(net.head, out)
            t = np.arange(b - s)[None, :]
            mask = (t >= a - s) & (t < lens[:, None])
            y = self.yb[rows, s:b][mask]
            o_rows = o[mask]
            if o_rows.ndim == 2 and y.ndim == 1 and loss_fn.name != "softmax_ce" and o_rows.shape[1] == 1:
                y = y[:, None]
            value, g = self._loss(o_rows, y, np.broadcast_to(w[:, None], mask.shape)[mask])
            do = np.zeros_like(o)
            do[mask] = g
            d_out = _backward(net.head, do)
        else:
            ending = self.L[rows] <= b
            o = _forward(net.head, out[ending])
            y = self.yb[rows][ending]
            value, g = self._loss(o, y, w[ending])
            d_out = np.zeros_like(out)
            d_out[ending] = _backward(net.head, g)
        _backward(net.time, d_out)
        return float(value)

    def _loss(self, o, y, w):
        """The loss's value and gradient on the rows ``o``: ``Σ w ℓ / weight_total``; without event
        weights, when the rows are all the batch's terms, the plain mean (fit's ordinary call)."""
        if self.unweighted and len(o) == self.weight_total:
            return self.model.loss.value_and_grad(o, y)
        return self.model.loss.value_and_grad(o, y, w, weight_total=self.weight_total)


def _forward(layers, x):
    for layer in layers:
        x = layer.forward(x, training=True)
    return x


def _backward(layers, dy):
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return dy
