"""The simple RNN's reference loops: plain NumPy, time-major ``(T, B, ·)``, written to be read. The
fused kernels of the same names are bptt.kernels.fast.rnn.
"""

from __future__ import annotations

import numpy as np

from ..activations import activate, activation_backward
from .lstm import padded


def rnn_forward_loop(xw, U, h0, activation, h, lengths=None):
    """Simple RNN forward over time. ``xw (T, B, H)`` is ``x_t W + b``; writes ``h`` and returns
    the final states. ``lengths``: as for bptt.kernels.reference.lstm.lstm_forward_loop (h is 0
    at padded steps, the state carried).

        (1) a_t = x_t W + b + h_{t-1} U
        (2) h_t = act(a_t)
    """
    h_prev = h0
    for t in range(xw.shape[0]):
        activate(activation, xw[t] + h_prev @ U, out=h[t])
        pad = padded(lengths, t)
        if pad is None:
            h_prev = h[t]
        else:
            h_prev = np.where(pad, h_prev, h[t])
            h[t][pad[:, 0]] = 0
    return h_prev


def rnn_backward_loop(dh, dh_last, U, activation, h, dz, lengths=None):
    """Simple RNN backward through time. Writes ``dz (T, B, H)`` = dL/da_t; returns ``dh0``.
    ``lengths``: padded steps have dz 0 and pass the carried state's gradient through."""
    dh_next = dh_last
    for t in range(dh.shape[0] - 1, -1, -1):
        dz[t] = activation_backward(activation, dh[t] + dh_next, h[t])  # (2)
        pad = padded(lengths, t)
        if pad is None:
            dh_next = dz[t] @ U.T  # (1)
        else:
            dz[t][pad[:, 0]] = 0
            dh_next = np.where(pad, dh_next, dz[t] @ U.T)
    return dh_next
