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
* ``bidirectional`` — run a second set of parameters over each sequence backwards, from its last
  real step to step 0 (PyTorch's ``bidirectional=True``, Keras's ``Bidirectional`` with
  ``merge_mode="concat"``): the parameters ``W_reverse``, ``U_reverse``, ``b_reverse`` (and
  ``b_u_reverse`` for the GRU) beside ``W``, ``U``, ``b``; the output is ``(B, T, 2H)``, the
  forward direction in ``[..., :H]`` and the reverse one in ``[..., H:]``, or ``(B, 2H)`` without
  ``return_sequences``: the forward direction's final state and the reverse direction's state
  after step 0. The initial states are ``h0`` (and ``c0``) for the forward direction and
  ``h0_reverse`` (and ``c0_reverse``) for the reverse one, ``state_grads`` has the gradients of
  all four. ``stateful=True`` is refused with it: the reverse direction reads each batch from its
  end, so what it carries out of a batch (its state after step 0) is no state of the stream's
  next batch;
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
from .._threads import blas_threads, one_core, run_in_two_threads
from ..functional._arrays import _feature_major_view
from ..functional._lengths import _check_lengths
from ..functional._plan import _directions_in_parallel
from ..kernels.activations import ELEMENTWISE
from .base import Layer


def _reversed_in_time(a: np.ndarray) -> np.ndarray:
    """A copy of ``a[:, ::-1]`` (``(B, T, F)``) in the layout of ``a``: C-contiguous, or the
    batch-major view of a feature-major array when ``a`` is one (a recurrent layer's output or
    ``dx``; NumPy's C-ordered copy of that read one value per row of 4·T·B bytes)."""
    if _feature_major_view(a) is not None:
        return np.ascontiguousarray(a.T[:, ::-1]).T
    return np.ascontiguousarray(a[:, ::-1])


def _side_by_side(h: np.ndarray, h_r: np.ndarray) -> np.ndarray:
    """The two directions' outputs ``(B, T, H)`` as one ``(B, T, 2H)``, forward first: where the
    kernels returned batch-major views of feature-major arrays (the fast path), the batch-major
    view of a new feature-major ``(2H, T, B)`` array, filled by rows of T·B (or B, for a direction
    read backwards) values; else a C-contiguous one."""
    if h.strides[0] != h.itemsize or h_r.strides[0] != h_r.itemsize:  # the batch axis is not the contiguous one
        return np.concatenate((h, h_r), axis=2)
    B, T, H = h.shape
    out = np.empty((2 * H, T, B), h.dtype)
    out[:H] = h.transpose(2, 1, 0)
    out[H:] = h_r.transpose(2, 1, 0)
    return out.transpose(2, 1, 0)


def _both(here, there, parallel: bool, there_first: bool = False) -> tuple:
    """``(here(), there())``: one after the other (``there()`` first if ``there_first``), or,
    ``parallel``, ``here()`` in this thread and ``there()`` on bptt's worker thread at the same time,
    each planning for one core (bptt._threads.one_core: its loops and products on its own core,
    bptt.functional._plan rule 6), NumPy's BLAS held to one thread meanwhile. Raises what either
    raised."""
    if not parallel:
        if there_first:
            b = there()
            return here(), b
        a = here()
        return a, there()
    out = [None, None]

    def call(i, f):
        with one_core():  # not only BLAS's setting, which another thread of the user's may change
            out[i] = f()

    with blas_threads(1):
        run_in_two_threads(call, (0, here), (1, there))
    return out[0], out[1]


class _Recurrent(Layer):
    _gates: int = GATES["rnn"]
    _feature_major_input = True  # the fast path reads a recurrent layer's outputs as they are
    _states: tuple[str, ...] = ("h0",)
    _extra_biases: tuple[str, ...] = ()

    def __init__(self, input_size, hidden_size, *, return_sequences=False, stateful=False, bidirectional=False,
                 dtype=np.float32, seed=None, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros"):
        super().__init__(dtype)
        name = type(self).__name__
        for arg, n in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer; got {n!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"{name}: bidirectional must be True or False; got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        if self.bidirectional and self.stateful:
            raise ValueError(
                f"{name}: stateful=True cannot be combined with bidirectional=True: the reverse direction reads "
                "each batch from its end, so its state after step 0 does not continue into the next batch "
                "(Keras and PyTorch carry no such state either); pass stateful=False, or give initial_state= "
                "to forward for each batch"
            )
        if self.bidirectional:
            self._states = self._states + tuple(k + "_reverse" for k in self._states)
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
        params = {}
        for suffix in ("", "_reverse") if self.bidirectional else ("",):
            params["W" + suffix], params["U" + suffix] = init_W((I, G * H), rng, dt), init_U((H, G * H), rng, dt)
            params.update({k + suffix: init_b((G * H,), rng, dt) for k in ("b",) + self._extra_biases})
        self._init_params(**params)
        self.state: dict[str, np.ndarray] | None = None
        self.state_grads: dict[str, np.ndarray] = {}

    @property
    def output_size(self) -> int:
        """The width of the output's last axis: ``hidden_size``, twice that when bidirectional."""
        return 2 * self.hidden_size if self.bidirectional else self.hidden_size

    def _direction(self, direction: str) -> dict[str, np.ndarray]:
        """The parameters of ``direction`` ("" or "_reverse") under the functional names (``W``,
        ``U``, ``b``, ``b_u``)."""
        if not direction:
            return self.params
        return {k[: -len("_reverse")]: a for k, a in self.params.items() if k.endswith("_reverse")}

    # Subclasses provide the functional pair and the options passed to the forward function.
    def _forward_fn(self, x, initial, lengths, reverse=False, direction=""):  # pragma: no cover - abstract
        """The functional forward with the parameters of ``direction`` ("" or "_reverse")."""
        raise NotImplementedError

    def _backward_fn(self, dh, cache, dh_last):  # pragma: no cover - abstract
        raise NotImplementedError

    def _final_states(self, h, cache, lengths=None) -> dict[str, np.ndarray]:
        return {"h0": F.final_state(h, lengths)}

    def forward(self, x, training: bool = True, initial_state: dict | None = None, lengths=None):
        """Run the layer over ``x (B, T, input_size)``.

        ``initial_state`` (``{"h0": (B, H)}``, plus ``"c0"`` for the LSTM; bidirectional layers
        also take ``"h0_reverse"`` and ``"c0_reverse"``, the reverse direction's state before it
        reads each sequence's last real step) overrides the zero or carried initial state; keys
        left out start from zeros. ``lengths`` ``(B,)`` (``1 <= lengths[b] <= T``, or None):
        sequence b's steps ``t >= lengths[b]`` are padding (PyTorch's packed-sequence semantics,
        see :func:`bptt.functional.lstm_forward`): their outputs are 0, and the last output (with
        ``return_sequences=False``) and the carried state are those after step ``lengths[b] - 1``
        (the reverse direction's: after step 0).
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
            for k, a in initial.items():  # named by key here: the functional call knows only h0 and c0
                if np.shape(a) != (x.shape[0], self.hidden_size):
                    raise ValueError(f"{fn}: initial_state[{k!r}] must have shape (B, hidden_size) = "
                                     f"({x.shape[0]}, {self.hidden_size}); got {np.shape(a)}")
        elif self.stateful and self.state is not None:
            initial = self._carried(x.shape[0])
        else:
            initial = {}
        if self.bidirectional:
            return self._forward_both(x, training, initial, lengths)
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

    def _forward_both(self, x, training, initial, lengths):
        """The bidirectional forward: the forward direction, then the reverse one over the same
        ``lengths``, outputs side by side (forward first). Without lengths (or when every
        sequence has T real steps) the reverse direction is the forward loop over the
        time-reversed batch (one copy each way): what the functional ``reverse=True`` computes,
        in 0.7-0.8 of its time (a training step of the layer, rows medium and long)."""
        fwd = {k: a for k, a in initial.items() if not k.endswith("_reverse")}
        rev = {k[: -len("_reverse")]: a for k, a in initial.items() if k.endswith("_reverse")}
        B, T = x.shape[:2]
        L = None if lengths is None else _check_lengths(f"{type(self).__name__}.forward", lengths, B, T)
        flipped = L is None or bool(np.all(L == T))  # every step real

        def reverse():
            if flipped:
                h_r, cache_r = self._forward_fn(_reversed_in_time(x), rev, None, direction="_reverse")
                return h_r[:, ::-1], cache_r
            return self._forward_fn(x, rev, lengths, reverse=True, direction="_reverse")

        (h, cache), (h_r, cache_r) = _both(lambda: self._forward_fn(x, fwd, lengths), reverse,
                                           _directions_in_parallel(T, B, self.hidden_size, self._gates))
        self._cache = (cache, cache_r, flipped) if training else None
        if self.return_sequences:
            return _side_by_side(h, h_r)
        last = F.final_state(h, lengths) if lengths is not None else h[:, -1]
        return np.concatenate((last, h_r[:, 0]), axis=1)

    def _carried(self, batch: int) -> dict[str, np.ndarray]:
        """The initial states of a batch of ``batch`` rows: the carried state's first rows, zeros
        for rows beyond the streams the layer carries."""
        carried = self.state["h0"].shape[0]
        if batch <= carried:
            return {k: a[:batch] for k, a in self.state.items()}
        return {k: np.concatenate([a, np.zeros((batch - carried,) + a.shape[1:], a.dtype)]) for k, a in self.state.items()}

    def backward(self, dy):
        """Backpropagate ``dy`` (the shape of the last output); fills ``grads`` and ``state_grads``.
        A bidirectional layer's ``dx`` is the sum of both directions'."""
        cache = self._cache
        first = cache[0] if isinstance(cache, tuple) else cache
        T, B, H = first.dims if first is not None else (0, 0, 0)
        W = self.output_size
        dy = self._grad_input(dy, (B, T, W) if self.return_sequences else (B, W))
        if not self.bidirectional:
            g = self._direction_backward(dy, cache)
            self._cache = None  # spent by the backward (keep_cache=False): one backward per forward
            for k in self.params:
                self.grads[k][...] = g["d" + k]
            self.state_grads = {"d" + s: g["d" + s] for s in self._states}
            return g["dx"]
        cache, cache_r, flipped = cache
        # one after the other, the reverse direction first: its forward ran last, so its cache is the
        # warmer one (RNN rows medium and long: 1.5-3 % off the step, same process A/B)
        g, g_r = _both(lambda: self._direction_backward(dy[..., :H], cache),
                       lambda: self._direction_backward(_reversed_in_time(dy[..., H:]) if flipped and self.return_sequences
                                                        else dy[..., H:], cache_r),
                       _directions_in_parallel(T, B, H, self._gates), there_first=True)
        self._cache = None
        for k in self.params:
            if k.endswith("_reverse"):
                self.grads[k][...] = g_r["d" + k[: -len("_reverse")]]
            else:
                self.grads[k][...] = g["d" + k]
        self.state_grads = {"d" + s: (g_r["d" + s[: -len("_reverse")]] if s.endswith("_reverse") else g["d" + s])
                            for s in self._states}
        dx = g["dx"]
        dx = dx if dx.flags.writeable else dx.copy(order="K")  # in its layout: a feature-major view stays one
        dx += g_r["dx"][:, ::-1] if flipped else g_r["dx"]
        return dx

    def _direction_backward(self, dy, cache):
        if self.return_sequences:  # (B, T, H) as it is: the functional backward reads any layout
            return self._backward_fn(dy, cache, None)
        return self._backward_fn(None, cache, np.ascontiguousarray(dy))

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
        (default False), ``bidirectional`` (default False), ``dtype`` (float32), ``seed``.
        Parameters ``W (I, 4H)`` Glorot-uniform, ``U (H, 4H)`` orthogonal per gate, ``b (4H,)``
        zeros; bidirectional layers also ``W_reverse``, ``U_reverse``, ``b_reverse``.

    Example::

        >>> import numpy as np
        >>> lstm = LSTM(30, 10, seed=0)
        >>> y = lstm.forward(np.zeros((100, 10, 30), np.float32))
        >>> y.shape, lstm.backward(np.ones_like(y)).shape
        ((100, 10), (100, 10, 30))
        >>> both = LSTM(30, 10, bidirectional=True, return_sequences=True, seed=0)
        >>> lengths = np.full(100, 10); lengths[:50] = 4  # half the sequences have 4 real steps
        >>> both.forward(np.ones((100, 10, 30), np.float32), lengths=lengths).shape  # [forward | reverse]
        (100, 10, 20)
    """

    _gates = GATES["lstm"]
    _states = ("h0", "c0")

    def _forward_fn(self, x, initial, lengths, reverse=False, direction=""):
        p = self._direction(direction)
        return F.lstm_forward(x, p["W"], p["U"], p["b"], **initial, lengths=lengths, reverse=reverse)

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

    def _forward_fn(self, x, initial, lengths, reverse=False, direction=""):
        p = self._direction(direction)
        return F.gru_forward(x, p["W"], p["U"], p["b"], p["b_u"], reset_after=self.reset_after, **initial,
                             lengths=lengths, reverse=reverse)

    def _backward_fn(self, dh, cache, dh_last):
        return F.gru_backward(dh, cache, dh_last=dh_last, keep_cache=False)


class RNN(_Recurrent):
    """Simple RNN layer: ``h_t = act(x_t W + h_{t-1} U + b)``; ``activation`` one of
    ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ``"identity"``."""

    def __init__(self, input_size, hidden_size, *, activation="tanh", **kwargs):
        self.activation = v.choice("RNN", "activation", activation, ELEMENTWISE)
        super().__init__(input_size, hidden_size, **kwargs)

    def _forward_fn(self, x, initial, lengths, reverse=False, direction=""):
        p = self._direction(direction)
        return F.rnn_forward(x, p["W"], p["U"], p["b"], activation=self.activation, **initial, lengths=lengths,
                             reverse=reverse)

    def _backward_fn(self, dh, cache, dh_last):
        return F.rnn_backward(dh, cache, dh_last=dh_last, keep_cache=False)
