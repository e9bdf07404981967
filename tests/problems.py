"""Shared helpers for the test suite: random problems for every cell."""

from __future__ import annotations

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}

#: (cell, options) for every cell variant the package implements.
CELLS = [
    ("lstm", {}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("rnn", {"activation": "tanh"}),
    ("rnn", {"activation": "relu"}),
    ("rnn", {"activation": "sigmoid"}),
    ("rnn", {"activation": "identity"}),
]


def cell_id(case) -> str:
    cell, options = case
    return cell + "".join(f"-{k}={v}" for k, v in options.items())


def make_problem(
    cell: str, B: int, T: int, I: int, H: int, seed: int = 0, dtype=np.float64, states=True, memory=False, activation="tanh"
):
    """Random inputs, parameters and (non-zero) initial states for ``cell``, as keyword arguments.

    ``memory=True`` chooses parameters that carry information over long sequences, so that the
    gradient reaching the first steps stays measurable: LSTM forget gates and GRU update gates
    biased open; for the simple RNN, the regime in which its ``activation`` passes the gradient on
    unchanged (near-linear tanh with an orthogonal U; ReLU with U = I and a positive bias, as in
    IRNN; sigmoid at its fixed point 0.5 with U = 4I, b = −2, where σ′·4 = 1; identity with an
    orthogonal U).
    """
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    arrays = {
        "x": rng.normal(size=(B, T, I)),
        "W": rng.normal(size=(I, G * H)) * 0.6 / np.sqrt(I),
        "U": rng.normal(size=(H, G * H)) * 0.6 / np.sqrt(H),
        "b": rng.normal(size=G * H) * 0.2,
    }
    if cell == "gru":
        arrays["b_u"] = rng.normal(size=G * H) * 0.2
    if memory and cell in ("lstm", "gru"):
        arrays["W"] *= 0.3
        arrays["b"][H : 2 * H] += 4.0  # f (LSTM) / z (GRU) ≈ 0.98: the state is mostly carried
    elif memory:
        arrays["W"] *= 0.05
        q, _ = np.linalg.qr(rng.normal(size=(H, H)))
        U, b = {"tanh": (q, 0.0), "identity": (q, 0.0), "relu": (np.eye(H), 0.5), "sigmoid": (4 * np.eye(H), -2.0)}[activation]
        arrays["U"], arrays["b"] = U, arrays["b"] * 0.05 + b
    if states:
        arrays["h0"] = rng.normal(size=(B, H)) * (0.1 if memory else 0.5)
        if memory and cell == "rnn" and activation in ("relu", "sigmoid"):
            arrays["h0"] = np.abs(arrays["h0"]) + (0.5 if activation == "sigmoid" else 0.0)
        if cell == "lstm":
            arrays["c0"] = rng.normal(size=(B, H)) * 0.5
    return {k: a.astype(dtype) for k, a in arrays.items()}


def rel(a, b) -> float:
    """Normwise relative error max|a − b| / max|b| (0 when both are zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max(initial=0.0), np.abs(a).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)



def frozen_optimizer(lr: float = 0.1):
    """An optimizer that takes no step: every loss fit reports is the untrained network's (the
    oracle of the tests that write fit's losses out from the network's predictions)."""
    from bptt.optim import Optimizer

    class Frozen(Optimizer):
        name = "frozen"

        def step(self, params, grads):
            self.iterations += 1

        def _hyper(self):
            return {"lr": self.lr}

    return Frozen(lr)
