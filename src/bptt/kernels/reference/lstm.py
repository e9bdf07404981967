"""The LSTM's reference loops: plain NumPy, time-major ``(T, B, ·)``, written to be read. The fused
kernels of the same names are bptt.kernels.fast.lstm.
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid


def lstm_forward_loop(gates, U, h0, c0, c, tanh_c, h, lengths=None):
    """LSTM forward over time.

    ``gates (T, B, 4H)`` holds ``x_t W + b`` on entry and the gate values ``[i, f, g, o]`` on exit.
    Writes ``c``, ``tanh_c`` and ``h`` (each ``(T, B, H)``). ``lengths (B,)``: sequence b has
    ``lengths[b]`` real steps; at its padded steps (t ≥ lengths[b]) every array written holds 0
    and its states h, c are carried unchanged (:func:`padded`), so that the states after the
    loop are each sequence's final states.

        (1) z_t = x_t W + b + h_{t-1} U
        (2) i, f, o = σ(z_i, z_f, z_o)      g = tanh(z_g)
        (3) c_t = f ⊙ c_{t-1} + i ⊙ g
        (4) h_t = o ⊙ tanh(c_t)
    """
    H = h0.shape[1]
    h_prev, c_prev = h0, c0
    for t in range(gates.shape[0]):
        z = gates[t]
        z += h_prev @ U  # (1)
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])  # (2) i, f
        np.tanh(g, out=g)  # (2) g
        sigmoid(o, out=o)  # (2) o
        c[t] = f * c_prev + i * g  # (3)
        np.tanh(c[t], out=tanh_c[t])  # (4)
        np.multiply(o, tanh_c[t], out=h[t])  # (4)
        pad = padded(lengths, t)
        if pad is None:
            h_prev, c_prev = h[t], c[t]
        else:  # padded steps: zeros out, the states carried
            h_prev, c_prev = np.where(pad, h_prev, h[t]), np.where(pad, c_prev, c[t])
            for a in (z, c[t], tanh_c[t], h[t]):
                a[pad[:, 0]] = 0
    return h_prev, c_prev


def lstm_backward_loop(dh, dh_last, dc_last, U, c0, gates, c, tanh_c, dz, dc, lengths=None):
    """LSTM backward through time: the stages of :func:`lstm_forward_loop` in reverse.

    ``dh (T, B, H)`` is dL/dh_t from outside the recurrence; ``dh_last``/``dc_last (B, H)`` add to
    the gradients of the final states. Writes ``dz (T, B, 4H)`` (dL/dz_t) and ``dc (T, B, H)``
    (the total dL/dc_t) and returns ``(dh0, dc0)``. ``lengths``: as for the forward loop; a padded
    step passes the gradients of the states it carried through unchanged, ignores its ``dh`` and
    has ``dz`` and ``dc`` 0.
    """
    H = c0.shape[1]
    dh_next, dc_next = dh_last, dc_last  # gradients flowing in from step t + 1
    for t in range(dh.shape[0] - 1, -1, -1):
        c_prev = c[t - 1] if t > 0 else c0
        g_t = gates[t]
        i, f, g, o = g_t[:, :H], g_t[:, H : 2 * H], g_t[:, 2 * H : 3 * H], g_t[:, 3 * H :]
        dh_t = dh[t] + dh_next
        dc_next_in = dc_next
        # (4) h_t = o ⊙ tanh(c_t)
        do = dh_t * tanh_c[t]
        dc[t] = dc_next + dh_t * o * (1.0 - tanh_c[t] * tanh_c[t])
        # (3) c_t = f ⊙ c_{t-1} + i ⊙ g
        di = dc[t] * g
        df = dc[t] * c_prev
        dg = dc[t] * i
        dc_next = dc[t] * f
        # (2) i, f, o = σ(·), g = tanh(·)
        dz[t, :, :H] = di * i * (1.0 - i)
        dz[t, :, H : 2 * H] = df * f * (1.0 - f)
        dz[t, :, 2 * H : 3 * H] = dg * (1.0 - g * g)
        dz[t, :, 3 * H :] = do * o * (1.0 - o)
        # (1) z_t = x_t W + b + h_{t-1} U   (the W and U parts are summed by the caller)
        pad = padded(lengths, t)
        if pad is None:
            dh_next = dz[t] @ U.T
        else:  # padded steps: the carried states' gradients pass through
            dh_next = np.where(pad, dh_next, dz[t] @ U.T)
            dc_next = np.where(pad, dc_next_in, dc_next)
            dz[t][pad[:, 0]] = 0
            dc[t][pad[:, 0]] = 0
    return dh_next, dc_next


def padded(lengths, t):
    """``(B, 1)`` booleans: whether step t of each sequence is padding (``t ≥ lengths[b]``), or
    None without lengths."""
    return None if lengths is None else (t >= lengths)[:, None]
