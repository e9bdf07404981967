"""The simple RNN's reference loops: plain NumPy, time-major ``(T, B, ·)``, written to be read. The
fused kernels of the same names are bptt.kernels.fast.rnn.
"""

from __future__ import annotations

from ..activations import activate, activation_backward


def rnn_forward_loop(xw, U, h0, activation, h):
    """Simple RNN forward over time. ``xw (T, B, H)`` is ``x_t W + b``; writes ``h``.

        (1) a_t = x_t W + b + h_{t-1} U
        (2) h_t = act(a_t)
    """
    h_prev = h0
    for t in range(xw.shape[0]):
        activate(activation, xw[t] + h_prev @ U, out=h[t])
        h_prev = h[t]


def rnn_backward_loop(dh, dh_last, U, activation, h, dz):
    """Simple RNN backward through time. Writes ``dz (T, B, H)`` = dL/da_t; returns ``dh0``."""
    dh_next = dh_last
    for t in range(dh.shape[0] - 1, -1, -1):
        dz[t] = activation_backward(activation, dh[t] + dh_next, h[t])  # (2)
        dh_next = dz[t] @ U.T  # (1)
    return dh_next
