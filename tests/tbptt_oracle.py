"""The hand-written truncated BPTT that tests/train/test_tbptt.py and test_mutants_tbptt.py compare
bptt.tbptt with (see test_tbptt.py's docstring), and the small networks and data they use."""

import numpy as np

import bptt.functional as F
from bptt.layers import GRU, LSTM, RNN, Dense, Dropout
from bptt.model import Sequential

LR = 0.3
CELLS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}


# ── the hand-written oracle


def _fwd(kind, p, x, h0, c0):
    """(h, c or None, cache) of one call of the functional forward over x (1, n, I)."""
    if kind == "LSTM":
        h, cache = F.lstm_forward(x, p["W"], p["U"], p["b"], h0, c0)
        return h, cache.c, cache
    if kind == "GRU":
        h, cache = F.gru_forward(x, p["W"], p["U"], p["b"], p["b_u"], h0)
    else:
        h, cache = F.rnn_forward(x, p["W"], p["U"], p["b"], h0)
    return h, None, cache


def _bwd(kind, dh, cache, dh_last, dc_last):
    if kind == "LSTM":
        return F.lstm_backward(dh, cache, dh_last=dh_last, dc_last=dc_last)
    backward = F.gru_backward if kind == "GRU" else F.rnn_backward
    return backward(dh, cache, dh_last=dh_last)


def _loss_grad(loss, o, t, factor):
    """Value and gradient of a row's loss (the mean over its K outputs) times ``factor``."""
    K = o.shape[-1]
    if loss == "mse":
        return float(np.sum((o - t) ** 2)) * factor / K, 2 * (o - t) * factor / K
    sig = 1 / (1 + np.exp(-o))
    value = np.sum(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))
    return float(value) * factor / K, (sig - t) * factor / K


def hand_tbptt(rec, dense, loss, per_step, x, y, w, L, k1, k2, W_total, init=None):
    """TBPTT(k1, k2) with SGD(LR) on one batch, row by row; updates ``rec`` and ``dense`` in place.
    Returns (the batch's loss, the number of updates, each row's final states)."""
    B, T, _ = x.shape
    T_end = int(max(L))
    ups, u = [], k1
    while u < T_end:
        ups.append(u)
        u += k1
    ups.append(T_end)
    # the main pass: hm[l][b, t] is layer l's state before step t (t = 0: the initial state)
    hm = [np.zeros((B, T + 1, p["U"].shape[0])) for _, p in rec]
    cm = [np.zeros((B, T + 1, p["U"].shape[0])) for _, p in rec]
    for l in range(len(rec)):
        if init is not None:
            hm[l][:, 0] = init[l]["h0"]
            if "c0" in init[l]:
                cm[l][:, 0] = init[l]["c0"]
    total, n_updates, prev = 0.0, 0, 0
    for u in ups:
        s = max(0, prev - (k2 - k1))  # the segment and the k2 - k1 steps before it
        for b in range(B):  # the segment [prev, u) of the main pass, with the current weights
            e = min(L[b], u)
            if e <= prev:
                continue
            inp = x[b : b + 1, prev:e]
            for l, (kind, p) in enumerate(rec):
                h, c, _ = _fwd(kind, p, inp, hm[l][b : b + 1, prev], cm[l][b : b + 1, prev])
                hm[l][b, prev + 1 : e + 1] = h[0]
                if c is not None:
                    cm[l][b, prev + 1 : e + 1] = c[0]
                inp = h
        grads = [{k: np.zeros_like(a) for k, a in p.items()} for _, p in rec]
        dW, db = np.zeros_like(dense[0]), np.zeros_like(dense[1])
        value, any_loss = 0.0, False
        for b in range(B):
            e = min(L[b], u)
            if e <= prev or (not per_step and L[b] > u):
                continue  # no loss of this row in this segment
            any_loss = True
            inA, inB, caches = x[b : b + 1, s:prev], x[b : b + 1, prev:e], []
            for l, (kind, p) in enumerate(rec):
                h0, c0 = hm[l][b : b + 1, s], cm[l][b : b + 1, s]  # constants: no gradient into them
                cacheA = None
                if prev > s:  # the window's recomputed steps, then its segment, chained by h0/c0
                    hA, cA, cacheA = _fwd(kind, p, inA, h0, c0)
                    h0, c0 = hA[:, -1], None if cA is None else cA[:, -1]
                    inA = hA
                hB, _, cacheB = _fwd(kind, p, inB, h0, c0)
                caches.append((cacheA, cacheB))
                inB = hB
            Wd, bd = dense
            if per_step:
                o = inB[0] @ Wd + bd
                v, dO = _loss_grad(loss, o, y[b, prev:e], w[b] / W_total)
                dW += inB[0].T @ dO
                db += dO.sum(axis=0)
                dhB, dh_last = (dO @ Wd.T)[None], None
            else:
                o = inB[0, -1] @ Wd + bd
                v, dO = _loss_grad(loss, o, y[b], w[b] / W_total)
                dW += np.outer(inB[0, -1], dO)
                db += dO
                dhB, dh_last = np.zeros_like(inB), (dO @ Wd.T)[None]  # the loss enters at the row's end
            value += v
            dhA = None
            for l in reversed(range(len(rec))):
                kind = rec[l][0]
                cacheA, cacheB = caches[l]
                gB = _bwd(kind, dhB, cacheB, dh_last, None)
                for k in grads[l]:
                    grads[l][k] += gB["d" + k]
                if cacheA is not None:
                    if dhA is None:
                        dhA = np.zeros((1, prev - s, rec[l][1]["U"].shape[0]))
                    gA = _bwd(kind, dhA, cacheA, gB["dh0"], gB.get("dc0"))  # the segment's gradient, chained
                    for k in grads[l]:
                        grads[l][k] += gA["d" + k]
                    dhA = gA["dx"]
                dhB, dh_last = gB["dx"], None
        if any_loss:
            for (_, p), g in zip(rec, grads):
                for k in p:
                    p[k] -= LR * g[k]
            dense[0] -= LR * dW
            dense[1] -= LR * db
            total += value
            n_updates += 1
        prev = u
    finals = [{"h0": np.array([hm[l][b, L[b]] for b in range(B)]),
               **({"c0": np.array([cm[l][b, L[b]] for b in range(B)])} if rec[l][0] == "LSTM" else {})}
              for l in range(len(rec))]
    return total, n_updates, finals


# ── the networks compared


def _model(kinds, per_step, loss, K=1, I=3, H=4, stateful=False, dropout=None):
    layers, n_in = [], I
    for i, kind in enumerate(kinds):
        last = i == len(kinds) - 1
        layers.append(CELLS[kind](n_in, H, return_sequences=per_step or not last, dtype=np.float64, seed=10 + i,
                                  bias_initializer="glorot_uniform", stateful=stateful))
        if dropout is not None and not last:
            layers.append(Dropout(dropout, seed=5))
        n_in = H
    layers.append(Dense(H, K, dtype=np.float64, seed=20, bias_initializer="glorot_uniform"))
    return Sequential(layers, loss=loss)


def _oracle_params(model):
    rec = [(type(l).__name__, {k: a.copy() for k, a in l.params.items()}) for l in model.layers
           if type(l).__name__ in CELLS]
    d = model.layers[-1].params
    return rec, [d["W"].copy(), d["b"].copy()]


def _sgd(model, log=None):
    def update(window_loss):
        if log is not None:
            log.append(window_loss)
        grads = model.gradients()
        for k, p in model.parameters().items():
            p -= LR * grads[k]
    return update


def _data(B, T, I, K, per_step, loss, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, I))
    shape = (B, T, K) if per_step else (B, K)
    y = rng.normal(size=shape) if loss == "mse" else (rng.random(shape) < 0.5).astype(np.float64)
    return x, y


def _compare(model, rec, dense):
    got = _oracle_params(model)
    for (_, p), (_, q) in zip(got[0], rec):
        for k in p:
            np.testing.assert_allclose(p[k], q[k], rtol=0, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(got[1][0], dense[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1][1], dense[1], rtol=0, atol=1e-12)
