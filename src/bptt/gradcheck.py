"""Finite-difference gradient checks (central differences, float64) for any primitive or layer.

Three levels, each returning a :class:`GradcheckReport` (maximum relative error per array):

* :func:`gradcheck` — any scalar loss of some arrays, against gradients you computed;
* :func:`check_primitive` — a ``bptt.functional`` cell (``"lstm"``, ``"gru"``, ``"rnn"``): every
  input, parameter and initial state, with the loss on all outputs and/or the final states;
* :func:`check_layer` — any :class:`bptt.layers.Layer`: its input, every parameter and, for
  recurrent layers, the initial (or carried) states.

The relative error of an array is ``max|analytic − numeric| / max(max|analytic|, max|numeric|)``
(0 when both are exactly zero): the worst element's error measured against the array's scale,
which, unlike an elementwise ratio, does not blow up on elements whose gradient is near zero.

Example::

    >>> import numpy as np
    >>> from bptt.gradcheck import check_primitive
    >>> rng = np.random.default_rng(0)
    >>> report = check_primitive("lstm", x=rng.normal(size=(2, 3, 4)), W=rng.normal(size=(4, 20)) * 0.5,
    ...                          U=rng.normal(size=(5, 20)) * 0.5, b=rng.normal(size=20) * 0.1,
    ...                          h0=rng.normal(size=(2, 5)), c0=rng.normal(size=(2, 5)))
    >>> report.passed(1e-6), sorted(report.errors)
    (True, ['U', 'W', 'b', 'c0', 'h0', 'x'])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import functional as F
from . import _validation as v

__all__ = ["GradcheckReport", "weighted_sum", "relative_error", "numerical_gradient", "gradcheck", "check_primitive", "check_layer"]

#: Default step of the central differences. It balances truncation (∝ eps²) and rounding
#: (∝ ε_mach / eps), near ε_mach^(1/3) ≈ 6e-6; over the test suite's grid of cells, shapes and losses
#: the worst error measured was 5.9e-7 at 1e-6, 1.2e-7 at 3e-6 and 1.7e-7 at 1e-5.
EPS = 3e-6


def weighted_sum(a: np.ndarray, weights: np.ndarray) -> float:
    """``Σ a ⊙ weights``, exactly rounded (``math.fsum``).

    Used for the scalar losses of the checks: a perturbation that changes a few terms then changes
    the sum by exactly their change, with no rounding noise from the terms it left alone.
    """
    return math.fsum((np.asarray(a, np.float64) * weights).ravel().tolist())


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max|a − n| / max(max|a|, max|n|)``, 0 when both are exactly zero."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: analytic has shape {a.shape} but numeric has {n.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0))
    return 0.0 if scale == 0.0 else float(np.abs(a - n).max() / scale)


def numerical_gradient(loss: Callable[[], float], array: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Central differences of the scalar ``loss()`` w.r.t. each element of ``array``.

    ``array`` is perturbed in place (and restored), so ``loss`` must read it on every call.
    """
    grad = np.zeros(array.shape, np.float64)
    flat = array.reshape(-1)  # a view: writes reach the array
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + eps
        up = loss()
        flat[k] = keep - eps
        down = loss()
        flat[k] = keep
        grad.reshape(-1)[k] = (up - down) / (2 * eps)
    return grad


@dataclass
class GradcheckReport:
    """Per-array maximum relative error of an analytic gradient against central differences."""

    errors: dict[str, float] = field(default_factory=dict)
    analytic: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    numeric: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tol: float = 1e-6) -> bool:
        return self.max_error <= tol

    def assert_ok(self, tol: float = 1e-6) -> "GradcheckReport":
        """Raise ``AssertionError`` with the table unless every error is at most ``tol``."""
        if not self.passed(tol):
            raise AssertionError(f"gradient check failed (tolerance {tol:g}):\n{self}")
        return self

    def __str__(self) -> str:
        width = max([len(k) for k in self.errors] + [len("array")])
        lines = [f"{'array':<{width}}  max relative error"]
        lines += [f"{k:<{width}}  {e:.3e}" for k, e in self.errors.items()]
        return "\n".join(lines)


def gradcheck(
    loss: Callable[[], float], arrays: dict[str, np.ndarray], analytic: dict[str, np.ndarray], eps: float = EPS
) -> GradcheckReport:
    """Compare ``analytic[name]`` with central differences of ``loss()`` w.r.t. ``arrays[name]``.

    ``arrays`` must be float64 arrays that ``loss`` reads on every call (they are perturbed in place
    and restored).
    """
    report = GradcheckReport()
    for name, array in arrays.items():
        if array.dtype != np.float64:
            raise ValueError(f"gradcheck: {name} must be float64 for finite differences; got {array.dtype}")
        if name not in analytic:
            raise ValueError(f"gradcheck: no analytic gradient for {name!r}; got keys {sorted(analytic)}")
        num = numerical_gradient(loss, array, eps)
        report.numeric[name] = num
        report.analytic[name] = np.asarray(analytic[name], np.float64)
        report.errors[name] = relative_error(report.analytic[name], num)
    return report


_PRIMITIVES = {
    "lstm": (F.lstm_forward, F.lstm_backward, ("x", "W", "U", "b"), ("h0", "c0")),
    "gru": (F.gru_forward, F.gru_backward, ("x", "W", "U", "b", "b_u"), ("h0",)),
    "rnn": (F.rnn_forward, F.rnn_backward, ("x", "W", "U", "b"), ("h0",)),
}
_LOSSES = ("all", "outputs", "final")


def check_primitive(cell: str, *, loss: str = "all", seed: int = 0, eps: float = EPS, **arrays_and_options) -> GradcheckReport:
    """Gradient check of a ``bptt.functional`` cell on every array passed.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        loss: ``"outputs"`` — L = Σ_t h_t·R_t; ``"final"`` — L = h_T·R_h (+ c_T·R_c for the LSTM);
            ``"all"`` (default) — the sum of both. R are fixed random weights from ``seed``.
        **arrays_and_options: the forward function's arrays (``x, W, U, b``, ``b_u`` for the GRU,
            optional initial states) and options (``reset_after``, ``activation``, ``lengths``,
            ``reverse``: the final states are then those of bptt.functional.final_state). Arrays are
            copied to float64; initial states that are passed are checked as well.
    """
    fn = "check_primitive"
    v.choice(fn, "cell", cell, tuple(_PRIMITIVES))
    v.choice(fn, "loss", loss, _LOSSES)
    forward, backward, required, states = _PRIMITIVES[cell]
    missing = [k for k in required if k not in arrays_and_options]
    if missing:
        raise ValueError(f"{fn}: {cell} needs arrays {required}; missing {missing}")
    names = [k for k in required + states if k in arrays_and_options]
    arrays = {k: np.array(arrays_and_options.pop(k), np.float64) for k in names}
    options = arrays_and_options

    h, cache = forward(**arrays, **options)
    rng = np.random.default_rng(seed)
    B, T, H = h.shape
    R = rng.standard_normal((B, T, H)) if loss != "final" else None
    finals = {"dh_last": rng.standard_normal((B, H))} if loss != "outputs" else {}
    if cell == "lstm" and loss != "outputs":
        finals["dc_last"] = rng.standard_normal((B, H))

    def scalar() -> float:
        h_, cache_ = forward(**arrays, **options)
        terms = [] if R is None else [weighted_sum(h_, R)]
        # the final states: after each sequence's last real step with lengths= (after step 0 with reverse=)
        sequences = {k: options[k] for k in ("lengths", "reverse") if k in options}
        if "dh_last" in finals:
            terms.append(weighted_sum(F.final_state(h_, **sequences), finals["dh_last"]))
        if "dc_last" in finals:
            terms.append(weighted_sum(F.final_state(cache_.c, **sequences), finals["dc_last"]))
        return math.fsum(terms)

    grads = backward(R, cache, **finals)
    return gradcheck(scalar, arrays, {k: grads["d" + k] for k in names}, eps)


def check_layer(layer, x, *, initial_state: dict | None = None, seed: int = 0, eps: float = EPS) -> GradcheckReport:
    """Gradient check of a layer: input ``x``, every parameter, and the initial states.

    The layer is copied and converted to float64 first (the original is untouched). For a
    recurrent layer the initial states checked are ``initial_state`` if given, else the state the
    layer carries (``stateful=True`` after a batch), else zeros. Report keys: ``x``, the parameter
    names, and ``h0``/``c0``.
    """
    layer = copy.deepcopy(layer).astype(np.float64)
    x = np.array(x, np.float64)
    carried = layer.get_state()
    states = {k: np.array(a, np.float64) for k, a in (initial_state or carried).items()}
    state_names = getattr(layer, "_states", ())
    if state_names and not states and initial_state is None:
        # Check the gradient w.r.t. the (zero) initial state as well.
        B, H = x.shape[0], layer.hidden_size
        states = {k: np.zeros((B, H)) for k in state_names}

    def run(training: bool):
        layer.set_state(carried)
        if state_names:
            return layer.forward(x, training=training, initial_state=states)
        return layer.forward(x, training=training)

    y = run(True)
    R = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(R)
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    analytic.update({k: layer.state_grads["d" + k] for k in states})
    arrays = {"x": x, **layer.params, **states}
    return gradcheck(lambda: weighted_sum(run(False), R), arrays, analytic, eps)
