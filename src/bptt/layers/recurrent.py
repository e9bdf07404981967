"""Recurrent layers: LSTM, GRU and simple RNN over ``(B, T, I)`` batches.

Each layer calls its :mod:`bptt.functional` pair. Options shared by all three:

* ``return_sequences`` — output every step's h ``(B, T, H)`` (TMVA ``returnSequence``) or only
  the last one ``(B, H)``;
* ``stateful`` — carry the final states of one batch into the next as its initial states (TMVA
  ``rememberState``, Keras ``stateful=True``): row k of a batch continues row k of the batch before
  (the k-th *stream*). A smaller batch (the last, partial one) continues the first rows' streams and
  leaves the state of the other streams as it was; a larger batch starts its extra rows from zeros.
  Unlike TMVA, the backward pass uses the state the forward pass really started from, and returns
  the gradient with respect to it in ``state_grads`` (``dh0``, and ``dc0`` for the LSTM); gradients
  do not flow on into the previous batch (truncated BPTT: to chain segments, pass ``state_grads`` as
  ``dh_last``/``dc_last`` of the previous segment with the functional API). ``reset_states()``
  forgets the carried state; :meth:`bptt.model.Sequential.fit` and the predictions of
  :class:`bptt.model.Sequential` call it where their docstrings say;
* ``kernel_initializer`` (W, default ``"glorot_uniform"``), ``recurrent_initializer`` (U, default
  ``"orthogonal"``: one orthogonal ``(H, H)`` block per gate) and ``bias_initializer`` (default
  ``"zeros"``) — names for :func:`bptt.init.get_initializer`, kept as attributes of the same names.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .. import functional as F
from .. import init
from ..cells import GATES
from ..kernels.activations import ELEMENTWISE
from .base import Layer


class _Recurrent(Layer):
    _gates: int = GATES["rnn"]
    _states: tuple[str, ...] = ("h0",)
    _extra_biases: tuple[str, ...] = ()

    def __init__(self, input_size, hidden_size, *, return_sequences=False, stateful=False, dtype=np.float32, seed=None,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros"):
        super().__init__(dtype)
        name = type(self).__name__
        for arg, n in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer; got {n!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        # Initialiser names are kept so a model config can be saved; "orthogonal" for U means one
        # orthogonal (H, H) block per gate (init.recurrent_orthogonal).
        init_W = init._lookup(name, "kernel_initializer", kernel_initializer)
        init_U = init._lookup(name, "recurrent_initializer", recurrent_initializer)
        init_b = init._lookup(name, "bias_initializer", bias_initializer)
        if init_U is init.orthogonal:
            init_U = init.recurrent_orthogonal
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        rng = np.random.default_rng(seed)
        G, H, I = self._gates, self.hidden_size, self.input_size
        dt = self.dtype
        W, U = init_W((I, G * H), rng, dt), init_U((H, G * H), rng, dt)
        biases = {k: init_b((G * H,), rng, dt) for k in ("b",) + self._extra_biases}
        self._init_params(W=W, U=U, **biases)
        self.state: dict[str, np.ndarray] | None = None
        self.state_grads: dict[str, np.ndarray] = {}

    # Subclasses provide the functional pair and the options passed to the forward function.
    def _forward_fn(self, x, initial, lengths):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward_fn(self, dh, cache, dh_last):  # pragma: no cover - abstract
        raise NotImplementedError

    def _final_states(self, h, cache, lengths=None) -> dict[str, np.ndarray]:
        return {"h0": F.final_state(h, lengths)}

    def forward(self, x, training: bool = True, initial_state: dict | None = None, lengths=None):
        """Run the layer over ``x (B, T, input_size)``.

        ``initial_state`` (``{"h0": (B, H)}``, plus ``"c0"`` for the LSTM) overrides the zero or
        carried initial state. ``lengths`` ``(B,)`` (``1 <= lengths[b] <= T``, or None): sequence
        b's steps ``t >= lengths[b]`` are padding (PyTorch's packed-sequence semantics, see
        :func:`bptt.functional.lstm_forward`): their outputs are 0, and the last output (with
        ``return_sequences=False``) and the carried state are those after step ``lengths[b] - 1``.
        """
        fn = f"{type(self).__name__}.forward"
        x = self._input(x, 3, f"(B, T, {self.input_size})")
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{fn}: x must have shape (B, T, {self.input_size}) (input_size={self.input_size}); got {x.shape}"
            )
        if initial_state is not None:
            unknown = set(initial_state) - set(self._states)
            if unknown:
                raise ValueError(f"{fn}: initial_state keys must be among {self._states}; got {sorted(unknown)}")
            initial = dict(initial_state)
        elif self.stateful and self.state is not None:
            initial = self._carried(x.shape[0])
        else:
            initial = {}
        h, cache = self._forward_fn(x, initial, lengths)
        if self.stateful:
            final = self._final_states(h, cache, lengths)
            if self.state is not None and initial_state is None:
                # streams beyond this batch's rows keep their state
                final = {k: np.concatenate([a, self.state[k][len(a) :]]) for k, a in final.items()}
            self.state = final
        self._cache = cache if training else None
        if self.return_sequences:
            return h
        return F.final_state(h, lengths) if lengths is not None else h[:, -1]

    def _carried(self, batch: int) -> dict[str, np.ndarray]:
        """The initial states of a batch of ``batch`` rows: the carried state's first rows, zeros
        for rows beyond the streams the layer carries."""
        carried = self.state["h0"].shape[0]
        if batch <= carried:
            return {k: a[:batch] for k, a in self.state.items()}
        return {k: np.concatenate([a, np.zeros((batch - carried,) + a.shape[1:], a.dtype)]) for k, a in self.state.items()}

    def backward(self, dy):
        """Backpropagate ``dy`` (the shape of the last output); fills ``grads`` and ``state_grads``."""
        cache = self._cache
        T, B, H = cache.dims if cache is not None else (0, 0, 0)
        dy = self._grad_input(dy, (B, T, H) if self.return_sequences else (B, H))
        if self.return_sequences:
            g = self._backward_fn(dy, cache, None)
        else:
            g = self._backward_fn(None, cache, dy)
        self._cache = None  # spent by the backward (keep_cache=False): one backward per forward
        for k in self.params:
            self.grads[k][...] = g["d" + k]
        self.state_grads = {"d" + s: g["d" + s] for s in self._states}
        return g["dx"]

    def get_state(self):
        return {} if self.state is None else {k: a.copy() for k, a in self.state.items()}

    def set_state(self, state):
        self.state = {k: np.array(a, self.dtype) for k, a in state.items()} if state else None

    def reset_states(self):
        """Forget the carried state: the next batch starts from zeros."""
        self.state = None

    def astype(self, dtype):
        super().astype(dtype)
        self.set_state(self.state)
        return self


class LSTM(_Recurrent):
    """LSTM layer (TMVA ``LSTMLayer``); gate blocks [i, f, g, o].

        z_t = x_t W + h_{t-1} U + b;  i, f, o = σ(·);  g = tanh(·)
        c_t = f ⊙ c_{t-1} + i ⊙ g;    h_t = o ⊙ tanh(c_t)

    Args:
        input_size (I), hidden_size (H); ``return_sequences`` (default False), ``stateful``
        (default False), ``dtype`` (float32), ``seed``. Parameters ``W (I, 4H)`` Glorot-uniform,
        ``U (H, 4H)`` orthogonal per gate, ``b (4H,)`` zeros.

    Example::

        >>> import numpy as np
        >>> lstm = LSTM(30, 10, seed=0)
        >>> y = lstm.forward(np.zeros((100, 10, 30), np.float32))
        >>> y.shape, lstm.backward(np.ones_like(y)).shape
        ((100, 10), (100, 10, 30))
    """

    _gates = GATES["lstm"]
    _states = ("h0", "c0")

    def _forward_fn(self, x, initial, lengths):
        p = self.params
        return F.lstm_forward(x, p["W"], p["U"], p["b"], **initial, lengths=lengths)

    def _backward_fn(self, dh, cache, dh_last):
        return F.lstm_backward(dh, cache, dh_last=dh_last, keep_cache=False)

    def _final_states(self, h, cache, lengths=None):
        return {"h0": F.final_state(h, lengths), "c0": F.final_state(cache.c, lengths)}


class GRU(_Recurrent):
    """GRU layer; gate blocks [r, z, n], input bias ``b`` and recurrent bias ``b_u`` (each ``(3H,)``).

    ``reset_after=True`` (default; PyTorch, cuDNN, Keras) applies the reset gate after the
    recurrent product, ``False`` (TMVA's CPU GRU) before it; see :func:`bptt.functional.gru_forward`.
    """

    _gates = GATES["gru"]
    _extra_biases = ("b_u",)

    def __init__(self, input_size, hidden_size, *, reset_after=True, **kwargs):
        self.reset_after = v.choice("GRU", "reset_after", reset_after, (True, False))
        super().__init__(input_size, hidden_size, **kwargs)

    def _forward_fn(self, x, initial, lengths):
        p = self.params
        return F.gru_forward(x, p["W"], p["U"], p["b"], p["b_u"], reset_after=self.reset_after, **initial,
                             lengths=lengths)

    def _backward_fn(self, dh, cache, dh_last):
        return F.gru_backward(dh, cache, dh_last=dh_last, keep_cache=False)


class RNN(_Recurrent):
    """Simple RNN layer: ``h_t = act(x_t W + h_{t-1} U + b)``; ``activation`` one of
    ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ``"identity"``."""

    def __init__(self, input_size, hidden_size, *, activation="tanh", **kwargs):
        self.activation = v.choice("RNN", "activation", activation, ELEMENTWISE)
        super().__init__(input_size, hidden_size, **kwargs)

    def _forward_fn(self, x, initial, lengths):
        p = self.params
        return F.rnn_forward(x, p["W"], p["U"], p["b"], activation=self.activation, **initial, lengths=lengths)

    def _backward_fn(self, dh, cache, dh_last):
        return F.rnn_backward(dh, cache, dh_last=dh_last, keep_cache=False)
