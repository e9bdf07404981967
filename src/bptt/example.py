"""The published worked example: A. Gomez, 'Backpropogating an LSTM: A Numerical Example' (2016).

A one-unit LSTM (I=2, H=1) over two steps with loss Σ_t ½ (h_t − y_t)². :func:`run` returns every
forward value, every per-step delta, the weight gradients and the weights after one SGD step;
:func:`format_report` prints them in the style of the published walk-through.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from .cells import GATE_ORDER
from .functional import lstm_backward, lstm_forward
from .gradcheck import gradcheck
from .optim import SGD

GATES = GATE_ORDER["lstm"]  # the published example names its gates i, f, g, o as TMVA orders them


def load() -> dict:
    """The example as published (inputs, weights, forward values), from the package's data."""
    with resources.files("bptt").joinpath("data/numerical_example.json").open() as f:
        return json.load(f)


def run(example: dict | None = None, lr: float = 0.1) -> dict:
    """Forward, backward and one SGD step on the example; all arrays float64."""
    ex = load() if example is None else example
    x, y = np.array(ex["x"], float), np.array(ex["y"], float)
    params = {k: np.array(ex[k], float) for k in ("W", "U", "b")}
    h, cache = lstm_forward(x, **params)
    loss = float(0.5 * np.sum((h - y) ** 2))
    grads = lstm_backward(h - y, cache)  # dL/dh_t = h_t − y_t
    updated = {k: p.copy() for k, p in params.items()}
    SGD(lr).step(updated, {k: grads["d" + k] for k in updated})
    # dL/dh_t in total (loss at step t plus what flows back from t+1) = dz_{t+1} U^T + (h_t − y_t).
    dh_total = (h - y) + np.concatenate([grads["dz"][:, 1:] @ params["U"].T, np.zeros_like(h[:, :1])], axis=1)
    return {
        "x": x, "y": y, "params": params, "h": h, "c": cache.c, "gates": cache.gates, "loss": loss,
        "grads": grads, "dh_total": dh_total, "updated": updated, "lr": lr,
    }


def check_example(result: dict):
    """Central differences of the example's own loss, ½ Σ_t (h_t − y_t)², against its backward pass."""
    x, y = result["x"].copy(), result["y"]
    arrays = {"x": x, **{k: p.copy() for k, p in result["params"].items()}}

    def loss() -> float:
        h, _ = lstm_forward(arrays["x"], arrays["W"], arrays["U"], arrays["b"])
        return float(0.5 * np.sum((h - y) ** 2))

    g = result["grads"]
    return gradcheck(loss, arrays, {k: g["d" + k] for k in arrays})


def format_report(result: dict, published: dict | None = None, check: bool = True) -> str:
    """The worked example as text: forward values, deltas per step, gradients, updated weights."""
    H = result["h"].shape[2]
    lines = ["LSTM worked example (Gomez 2016): B=1, T=2, I=2, H=1, loss = sum_t 1/2 (h_t - y_t)^2", ""]
    lines.append("Forward (CellForward): gate values per step" + ("   [published]" if published else ""))
    lines.append("  t       i          f          g          o          c          h")
    for t in range(result["h"].shape[1]):
        vals = [result["gates"][0, t, k * H] for k in range(4)] + [result["c"][0, t, 0], result["h"][0, t, 0]]
        lines.append(f"  {t}  " + "  ".join(f"{val:9.5f}" for val in vals))
        if published:
            pub = published["forward"][t]
            lines.append("    [" + "  ".join(f"{pub[k]:9.5f}" for k in ("i", "f", "g", "o", "c", "h")) + " ]")
    lines.append(f"  loss = {result['loss']:.6f}")
    g = result["grads"]
    lines += ["", "Backward (CellBackward), steps in reverse: deltas w.r.t. the gate pre-activations dz,",
              "the total cell-state gradient dc and the total hidden-state gradient dh"]
    lines.append("  t      dz_i       dz_f       dz_g       dz_o         dc         dh")
    for t in reversed(range(result["h"].shape[1])):
        vals = [g["dz"][0, t, k * H] for k in range(4)] + [g["dc"][0, t, 0], result["dh_total"][0, t, 0]]
        lines.append(f"  {t}  " + "  ".join(f"{val:9.5f}" for val in vals))
    lines += ["", "Gradients accumulated over the steps (columns: gates i, f, g, o)"]
    for name in ("W", "U", "b"):
        arr = np.atleast_2d(g["d" + name])
        for r, row in enumerate(arr):
            label = f"d{name}" if r == 0 else ""
            lines.append(f"  {label:<4}" + "  ".join(f"{val:9.5f}" for val in row))
    lines += ["", f"Weights after one SGD step (lr = {result['lr']:g})"]
    for name in ("W", "U", "b"):
        for r, row in enumerate(np.atleast_2d(result["updated"][name])):
            label = name if r == 0 else ""
            lines.append(f"  {label:<4}" + "  ".join(f"{val:9.5f}" for val in row))
    if check:
        report = check_example(result)
        lines += ["", "Finite-difference check of these gradients (central differences, float64):"]
        lines += ["  " + line for line in str(report).splitlines()]
    return "\n".join(lines)
