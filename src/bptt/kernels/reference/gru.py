"""The GRU's reference loops: plain NumPy, time-major ``(T, B, ·)``, written to be read. The fused
kernels of the same names are bptt.kernels.fast.gru.
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid
from .lstm import padded


def gru_forward_loop(xw, U, b_u, h0, reset_after, gates, aux, h, lengths=None):
    """GRU forward over time; returns the final states. ``lengths``: as for
    bptt.kernels.reference.lstm.lstm_forward_loop (zeros at padded steps, the state carried).

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
        pad = padded(lengths, t)
        if pad is None:
            h_prev = h[t]
        else:
            h_prev = np.where(pad, h_prev, h[t])
            for a in (gates[t], aux[t], h[t]):
                a[pad[:, 0]] = 0
    return h_prev


def gru_backward_loop(dh, dh_last, U, h0, reset_after, gates, aux, h, dz, dhu, lengths=None):
    """GRU backward through time: the stages of :func:`gru_forward_loop` in reverse.

    Writes ``dz (T, B, 3H)``, the gradient w.r.t. the pre-activations ``[a_r, a_z, a_n]`` (which
    is also the gradient of ``x W + b``), and, when ``reset_after``, ``dhu (T, B, 3H)``, the
    gradient of ``h_{t-1} U + b_u`` (it differs from ``dz`` in the n block by the factor r).
    Returns ``dh0``. ``lengths``: padded steps have dz (and dhu) 0 and pass the carried state's
    gradient through.
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
        pad = padded(lengths, t)
        if pad is None:
            dh_next = dh_prev
        else:
            dh_next = np.where(pad, dh_next, dh_prev)
            dz[t][pad[:, 0]] = 0
            if reset_after:
                dhu[t][pad[:, 0]] = 0
    return dh_next
