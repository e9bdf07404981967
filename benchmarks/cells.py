"""The problem of one grid row, and the calls that time it: bptt's and PyTorch's, for each cell.

Each factory returns ``(inference, train)`` closures over one problem:

* ``inference``: forward only, no cache kept (``<cell>_forward(..., keep_cache=False)`` when the
  function takes that keyword, the plain call otherwise; PyTorch's is timed under
  ``torch.inference_mode()``);
* ``train``: forward with cache + backward to ``dx`` and every parameter gradient, the cache
  spent by the backward as in a training step (``<cell>_backward(..., keep_cache=False)`` when the
  function takes that keyword; PyTorch: ``out, _ = module(x)``; ``out.backward(dout)``, which
  frees its saved tensors likewise, gradients reset to ``None`` between repeats).

PyTorch is passed in as a module by the caller, never imported here.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from grid import CELLS, DTYPE, Row, as_row

__all__ = ["bptt_calls", "first", "make_problem", "rel_diff", "torch_calls", "torch_module"]


def make_problem(cell: str, row: Row | str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 inputs of one row: ``x (B, T, I)``, parameters and ``dh (B, T, H)``.

    Weights and biases are drawn as PyTorch initialises them, uniform in ``±1/sqrt(H)``; ``x`` and
    ``dh`` are standard normal. ``b_u`` (the GRU's recurrent bias) is present for every cell; the
    LSTM and RNN do not use it (their PyTorch ``bias_hh`` is set to zero so both compute the same).
    """
    r = as_row(row)
    G = CELLS[cell]
    rng = np.random.default_rng(seed)
    k = 1.0 / math.sqrt(r.H)

    def uni(*shape):
        return rng.uniform(-k, k, size=shape).astype(DTYPE)

    return {
        "x": rng.standard_normal((r.B, r.T, r.I), dtype=DTYPE),
        "W": uni(r.I, G * r.H),
        "U": uni(r.H, G * r.H),
        "b": uni(G * r.H),
        "b_u": uni(G * r.H),
        "dh": rng.standard_normal((r.B, r.T, r.H), dtype=DTYPE),
    }


def bptt_calls(cell: str, p: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(inference, train)`` closures running bptt.functional on problem ``p``."""
    from bptt import functional as F

    fwd = getattr(F, f"{cell}_forward")
    bwd = getattr(F, f"{cell}_backward")
    args: tuple = (p["x"], p["W"], p["U"], p["b"])
    kwargs: dict[str, Any] = {}
    if cell == "gru":
        args += (p["b_u"],)
        kwargs["reset_after"] = True
    elif cell == "rnn":
        kwargs["activation"] = "tanh"
    infer_kwargs = dict(kwargs)
    if "keep_cache" in inspect.signature(fwd).parameters:
        infer_kwargs["keep_cache"] = False
    spend = {"keep_cache": False} if "keep_cache" in inspect.signature(bwd).parameters else {}
    dh = p["dh"]

    def inference():
        return fwd(*args, **infer_kwargs)

    def train():
        _, cache = fwd(*args, **kwargs)
        return bwd(dh, cache, **spend)

    return inference, train


def torch_module(torch, cell: str, p: dict[str, np.ndarray]):
    """``torch.nn.LSTM/GRU/RNN`` (batch_first, float32) holding the parameters of ``p``."""
    I, H = p["W"].shape[0], p["U"].shape[0]
    if cell == "lstm":
        m = torch.nn.LSTM(I, H, batch_first=True)
    elif cell == "gru":
        m = torch.nn.GRU(I, H, batch_first=True)
    else:
        m = torch.nn.RNN(I, H, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["W"]).T)
        m.weight_hh_l0.copy_(torch.from_numpy(p["U"]).T)
        m.bias_ih_l0.copy_(torch.from_numpy(p["b"]))
        if cell == "gru":
            m.bias_hh_l0.copy_(torch.from_numpy(p["b_u"]))
        else:
            m.bias_hh_l0.zero_()
    return m


def torch_calls(torch, cell: str, p: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(inference, train)`` closures running the PyTorch module on problem ``p``.

    The inference closure does not enter ``torch.inference_mode()`` itself: the caller times it
    inside that context (see :func:`timing.measure`), so the context switch is not part of the figure.
    """
    m = torch_module(torch, cell, p)
    params = list(m.parameters())
    x_inf = torch.from_numpy(p["x"])
    x = torch.from_numpy(p["x"].copy()).requires_grad_(True)
    dout = torch.from_numpy(p["dh"])

    def inference():
        return m(x_inf)

    def train():
        for q in params:
            q.grad = None
        x.grad = None
        out, _ = m(x)
        out.backward(dout)

    return inference, train


def first(result):
    """The hidden states ``h`` of a forward result (``(h, cache)``, ``(out, state)`` or ``h``)."""
    return result[0] if isinstance(result, tuple) else result


def rel_diff(got, want) -> float:
    """Largest absolute difference of ``got`` from ``want``, relative to the largest ``|want|``."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny))
