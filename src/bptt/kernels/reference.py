"""Plain NumPy loops over time for the LSTM, GRU and simple RNN: the reference kernels.

These are the kernels every faster implementation is tested against, so they are written to be
read. Arrays are **time-major** here (``(T, B, ·)``), so that each step's slice is contiguous;
``bptt.functional`` transposes at its boundary. Nothing is validated: arrays in, arrays out.

Layout of every cell (the TMVA ``CellForward`` / ``CellBackward`` pair):

* the input projection of all steps, ``xw = x W + b`` (one GEMM), is done by the caller before
  the forward loop; the weight gradients ``dW = xᵀ dz``, ``dU = h_prevᵀ dz`` (one GEMM each) by the
  caller after the backward loop;
* the forward loop does, per step, the recurrent product and the gate arithmetic, and stores what
  the backward loop needs;
* the backward loop walks the steps in reverse and undoes the forward stages in the opposite
  order. Each backward stage carries the label of the forward stage it differentiates, so the
  two can be read against each other.
"""

from __future__ import annotations

import numpy as np

from .activations import activate, activation_backward, sigmoid

# ─────────────────────────────────────────────────────────────────────────────────────── LSTM


def lstm_forward_loop(gates, U, h0, c0, c, tanh_c, h):
    """LSTM forward over time.

    ``gates (T, B, 4H)`` holds ``x_t W + b`` on entry and the gate values ``[i, f, g, o]`` on exit.
    Writes ``c``, ``tanh_c`` and ``h`` (each ``(T, B, H)``).

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
        h_prev, c_prev = h[t], c[t]


def lstm_backward_loop(dh, dh_last, dc_last, U, c0, gates, c, tanh_c, dz, dc):
    """LSTM backward through time: the stages of :func:`lstm_forward_loop` in reverse.

    ``dh (T, B, H)`` is dL/dh_t from outside the recurrence; ``dh_last``/``dc_last (B, H)`` add to
    the gradients of the final states. Writes ``dz (T, B, 4H)`` (dL/dz_t) and ``dc (T, B, H)``
    (the total dL/dc_t) and returns ``(dh0, dc0)``.
    """
    H = c0.shape[1]
    dh_next, dc_next = dh_last, dc_last  # gradients flowing in from step t + 1
    for t in range(dh.shape[0] - 1, -1, -1):
        c_prev = c[t - 1] if t > 0 else c0
        g_t = gates[t]
        i, f, g, o = g_t[:, :H], g_t[:, H : 2 * H], g_t[:, 2 * H : 3 * H], g_t[:, 3 * H :]
        dh_t = dh[t] + dh_next
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
        dh_next = dz[t] @ U.T
    return dh_next, dc_next


# ──────────────────────────────────────────────────────────────────────────────────────── GRU


def gru_forward_loop(xw, U, b_u, h0, reset_after, gates, aux, h):
    """GRU forward over time.

    ``xw (T, B, 3H)`` is ``x_t W + b``. Writes the gate values ``[r, z, n]`` into ``gates``, ``h``,
    and into ``aux (T, B, H)`` what the backward pass needs beyond them: ``h_{t-1} U_n + bu_n``
    when ``reset_after``, else ``r ⊙ h_{t-1}``.

        (1) r = σ(x W_r + b_r + h U_r + bu_r)        z = σ(x W_z + b_z + h U_z + bu_z)
        (2) reset_after:  n = tanh(x W_n + b_n + r ⊙ (h U_n + bu_n))
            otherwise:    n = tanh(x W_n + b_n + (r ⊙ h) U_n + bu_n)
        (3) h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    """
    H = h0.shape[1]
    h_prev = h0
    for t in range(xw.shape[0]):
        r, z, n = gates[t, :, :H], gates[t, :, H : 2 * H], gates[t, :, 2 * H :]
        if reset_after:
            hu = h_prev @ U + b_u
            sigmoid(xw[t, :, : 2 * H] + hu[:, : 2 * H], out=gates[t, :, : 2 * H])  # (1)
            aux[t] = hu[:, 2 * H :]
            np.tanh(xw[t, :, 2 * H :] + r * aux[t], out=n)  # (2)
        else:
            hu_rz = h_prev @ U[:, : 2 * H] + b_u[: 2 * H]
            sigmoid(xw[t, :, : 2 * H] + hu_rz, out=gates[t, :, : 2 * H])  # (1)
            np.multiply(r, h_prev, out=aux[t])
            np.tanh(xw[t, :, 2 * H :] + aux[t] @ U[:, 2 * H :] + b_u[2 * H :], out=n)  # (2)
        h[t] = n + z * (h_prev - n)  # (3)
        h_prev = h[t]


def gru_backward_loop(dh, dh_last, U, h0, reset_after, gates, aux, h, dz, dhu):
    """GRU backward through time: the stages of :func:`gru_forward_loop` in reverse.

    Writes ``dz (T, B, 3H)``, the gradient w.r.t. the pre-activations ``[a_r, a_z, a_n]`` (which
    is also the gradient of ``x W + b``), and, when ``reset_after``, ``dhu (T, B, 3H)``, the
    gradient of ``h_{t-1} U + b_u`` (it differs from ``dz`` in the n block by the factor r).
    Returns ``dh0``.
    """
    H = h0.shape[1]
    dh_next = dh_last
    for t in range(dh.shape[0] - 1, -1, -1):
        h_prev = h[t - 1] if t > 0 else h0
        r, z, n = gates[t, :, :H], gates[t, :, H : 2 * H], gates[t, :, 2 * H :]
        dh_t = dh[t] + dh_next
        # (3) h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
        dn = dh_t * (1.0 - z)
        dzg = dh_t * (h_prev - n)
        dh_prev = dh_t * z
        # (2) n = tanh(a_n)
        da_n = dn * (1.0 - n * n)
        if reset_after:  # a_n = x W_n + b_n + r ⊙ (h U_n + bu_n)
            dr = da_n * aux[t]
        else:  # a_n = x W_n + b_n + (r ⊙ h) U_n + bu_n
            drh = da_n @ U[:, 2 * H :].T
            dr = drh * h_prev
            dh_prev += drh * r
        # (1) r = σ(a_r), z = σ(a_z)
        dz[t, :, :H] = dr * r * (1.0 - r)
        dz[t, :, H : 2 * H] = dzg * z * (1.0 - z)
        dz[t, :, 2 * H :] = da_n
        if reset_after:
            dhu[t, :, : 2 * H] = dz[t, :, : 2 * H]
            dhu[t, :, 2 * H :] = da_n * r
            dh_prev += dhu[t] @ U.T
        else:
            dh_prev += dz[t, :, : 2 * H] @ U[:, : 2 * H].T
        dh_next = dh_prev
    return dh_next


# ──────────────────────────────────────────────────────────────────────────────── simple RNN


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
