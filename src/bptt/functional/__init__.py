"""Forward and backward through time for the LSTM, GRU and simple RNN: the public primitives.

One module per cell (:mod:`.lstm`, :mod:`.gru`, :mod:`.rnn`): each validates its inputs
(:mod:`._checks`), makes one backend call, the readable NumPy loops of bptt.kernels.reference
or the compiled loops of bptt.kernels.fast, and returns the outputs with a cache (:mod:`._cache`)
or the gradients. The fast path's choices (threads, products, tiles, thresholds) are made in
:mod:`._plan` from the one settings object, :data:`bptt.settings.settings`; its array layout
(feature-major ``(features, T, B)``, workspaces, weight-gradient products) is :mod:`._arrays`.
Each forward function takes ``lengths=`` (variable lengths, PyTorch's packed-sequence semantics)
and ``reverse=`` (each sequence read backwards from its last real step), :mod:`._lengths`;
:func:`final_state` picks each sequence's final state from ``h``.
All arrays the caller sees are batch-major (``x`` is ``(B, T, I)``); row-vector algebra
``z_t = x_t W + h_{t-1} U + b``. Inputs must be finite, and so are the results: one that
overflows (NaN or Inf from finite inputs, such as a loss gradient of 3e38 in float32) raises
:class:`NonFiniteResultError`, a ``ValueError`` that names the function, the result, the largest
input and what to do.

Example (the published worked example, B=1, T=2, I=2, H=1)::

    >>> import numpy as np
    >>> from bptt.functional import lstm_forward, lstm_backward
    >>> x = np.array([[[1.0, 2.0], [0.5, 3.0]]])
    >>> W = np.array([[0.95, 0.7, 0.45, 0.6], [0.8, 0.45, 0.25, 0.4]])
    >>> U = np.array([[0.8, 0.1, 0.15, 0.25]])
    >>> b = np.array([0.65, 0.15, 0.2, 0.1])
    >>> h, cache = lstm_forward(x, W, U, b)
    >>> np.round(h[0, :, 0], 4)
    array([0.5363, 0.772 ])
    >>> grads = lstm_backward(h - np.array([[[0.5], [1.25]]]), cache)
    >>> sorted(grads)
    ['dU', 'dW', 'db', 'dc', 'dc0', 'dh0', 'dx', 'dz']
"""

from ._backend import BACKENDS, default_backend
from ._checks import NonFiniteResultError
from .gru import GRUCache, gru_backward, gru_forward
from ._lengths import final_state
from .lstm import LSTMCache, lstm_backward, lstm_forward
from .rnn import RNNCache, rnn_backward, rnn_forward

__all__ = [
    "LSTMCache",
    "GRUCache",
    "RNNCache",
    "NonFiniteResultError",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
    "final_state",
    "default_backend",
    "BACKENDS",
]
