"""Report plots as PNG files: ROC curves of several networks on one plot, and loss curves.

matplotlib is imported inside the functions (``import bptt`` stays light) and used through its Agg
canvas directly, without ``pyplot``: no global figure state, no GUI backend, safe in scripts and
on machines without a display. Files are written atomically: a failure while rendering or writing
leaves an existing file untouched.

Example::

    >>> import os, tempfile
    >>> from bptt.metrics import roc_auc, roc_curve
    >>> from bptt.plots import plot_loss, plot_roc
    >>> y, s = [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
    >>> fpr, tpr, _ = roc_curve(y, s)
    >>> d = tempfile.mkdtemp()
    >>> p = plot_roc({"LSTM": (fpr, tpr, roc_auc(y, s))}, os.path.join(d, "roc.png"))
    >>> open(p, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> p = plot_loss({"LSTM": {"train": [0.7, 0.5, 0.4], "val": [0.72, 0.6, 0.55]}}, os.path.join(d, "loss.png"))
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping

import numpy as np

from ._files import atomic_write

__all__ = ["plot_roc", "plot_loss"]

_DPI = 120


def _check_path(fn: str, path) -> str:
    p = os.fspath(path)
    if not isinstance(p, str) or not p.lower().endswith(".png"):
        raise ValueError(f"{fn}: path must name a .png file (the only format written); got {p!r}")
    return p


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=_DPI))


def _rate(fn: str, name: str, what: str, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: curves[{name!r}] {what} must be a 1-D array of numbers; got {type(value).__name__}") from None
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"{fn}: curves[{name!r}] {what} must be a 1-D array of at least 2 points; got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise ValueError(f"{fn}: curves[{name!r}] {what} must hold finite rates in [0, 1]; got values outside")
    return a


def _checked_curves(fn: str, curves, names: tuple[str, str, str]) -> list:
    """``[(name, x, y, area), …]`` from ``{name: (x, y, area)}``: rates in [0, 1] of equal length and a
    finite area; ``names`` are the three parts' names for the messages (e.g. fpr, tpr, auc)."""
    x_name, y_name, area_name = names
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"{fn}: curves must be a non-empty dict {{name: ({x_name}, {y_name}, {area_name})}}; got {curves!r}")
    checked = []
    for name, value in curves.items():
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            raise ValueError(
                f"{fn}: curves[{name!r}] must be a tuple ({x_name}, {y_name}, {area_name}); got {type(value).__name__}"
            )
        x, y = _rate(fn, name, x_name, value[0]), _rate(fn, name, y_name, value[1])
        if x.shape != y.shape:
            raise ValueError(
                f"{fn}: curves[{name!r}] {x_name} and {y_name} must have the same length; got {len(x)} and {len(y)}"
            )
        area = value[2]
        if isinstance(area, bool) or not isinstance(area, numbers.Real) or not math.isfinite(area):
            raise ValueError(f"{fn}: curves[{name!r}] {area_name} must be a finite number; got {area!r}")
        checked.append((str(name), x, y, float(area)))
    return checked


def plot_roc(curves: Mapping, path, title: str = "ROC curve") -> str:
    """Plot the ROC curves of several networks on one plot and write it as a PNG; return the path.

    Args:
        curves: ``{name: (fpr, tpr, auc)}``, e.g. from :func:`bptt.metrics.roc_curve` and
            :func:`bptt.metrics.roc_auc`. Each network is one line, labelled with its AUC.
        path: the ``.png`` file to create or replace.
        title: plot title.

    The diagonal (a classifier that guesses) is drawn dashed for reference.
    """
    fn = "plot_roc"
    path = _check_path(fn, path)
    checked = _checked_curves(fn, curves, ("fpr", "tpr", "auc"))

    return _curve_plot(path, checked, title, guess=([0, 1], [0, 1], "random guess (AUC = 0.5)"), area_name="AUC",
                       axes=("false positive rate (background efficiency)", "true positive rate (signal efficiency)"),
                       legend="lower right")


def _curve_plot(path: str, checked: list, title: str, *, guess, area_name: str, axes: tuple[str, str], legend: str) -> str:
    """One line per checked ``(name, x, y, area)`` curve over the unit square, the guessing
    classifier's line ``guess = (xs, ys, label)`` dashed; written to ``path``."""
    fig = _new_figure()
    ax = fig.add_subplot()
    gx, gy, glabel = guess
    ax.plot(gx, gy, linestyle="--", color="0.6", linewidth=1, label=glabel)
    for name, x, y, area in checked:
        ax.plot(x, y, linewidth=1.8, label=f"{name} ({area_name} = {area:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend)
    return _save(fig, path)


def _series(fn: str, name: str, key: str, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: histories[{name!r}][{key!r}] must be a list of numbers; got {type(value).__name__}") from None
    if a.ndim != 1:
        raise ValueError(f"{fn}: histories[{name!r}][{key!r}] must be a 1-D list of losses, one per epoch; got shape {a.shape}")
    return a


def plot_loss(histories: Mapping, path, title: str = "Loss per epoch") -> str:
    """Plot training (solid) and validation (dashed) loss per epoch of several networks; return the path.

    Args:
        histories: ``{name: {"train": [...], "val": [...]}}``, one loss per epoch; either list may
            be missing or empty, other keys are ignored. Non-finite losses (a diverged run) show as
            gaps.
        path: the ``.png`` file to create or replace.
        title: plot title.
    """
    fn = "plot_loss"
    path = _check_path(fn, path)
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError(f"{fn}: histories must be a non-empty dict {{name: {{'train': [...], 'val': [...]}}}}; got {histories!r}")
    checked = []
    for name, h in histories.items():
        if not isinstance(h, Mapping) or not ({"train", "val"} & set(h)):
            got = sorted(map(str, h)) if isinstance(h, Mapping) else type(h).__name__
            raise ValueError(f"{fn}: histories[{name!r}] must be a dict with 'train' and/or 'val' lists; got {got}")
        series = {k: _series(fn, name, k, h[k]) for k in ("train", "val") if k in h}
        checked.append((str(name), series))
    if not any(len(a) for _, series in checked for a in series.values()):
        raise ValueError(f"{fn}: every loss list in histories is empty; there is nothing to plot")

    fig = _new_figure()
    ax = fig.add_subplot()
    for i, (name, series) in enumerate(checked):
        color = f"C{i % 10}"  # one colour per network, shared by its two curves
        for key, style in (("train", "-"), ("val", "--")):
            a = series.get(key)
            if a is not None and len(a):
                label = f"{name} {'training' if key == 'train' else 'validation'}"
                ax.plot(np.arange(1, len(a) + 1), a, linestyle=style, color=color, linewidth=1.6, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


# ───────────────────────────────────────────────────────────────────────── gradient flow

__all__ += ["plot_gradient_flow"]


def plot_gradient_flow(flow, path, title: str | None = None) -> str:
    """Plot a :class:`bptt.trace.GradientFlow` as one PNG; return the path.

    Top: a heat map of |δ_t| = |dL/dz_t| averaged over the batch, time steps across, one row per
    (gate, unit) — the gates' blocks separated by lines and labelled with the gate names. Bottom:
    the norm over batch and units of the total state gradient per step, ‖dL/dc_t‖ for the LSTM
    (with ‖dL/dh_t‖ dashed) or ‖dL/dh_t‖ for the GRU and simple RNN, on a log scale when it spans
    more than two decades. Vanishing gradients show as a fading heat map and a falling line
    towards t = 0.

    Example::

        >>> import os, tempfile
        >>> import numpy as np
        >>> from bptt.trace import gradient_flow
        >>> rng = np.random.default_rng(0)
        >>> args = {"x": rng.normal(size=(4, 12, 3)), "W": rng.normal(size=(3, 20)) * 0.5,
        ...         "U": rng.normal(size=(5, 20)) * 0.5, "b": np.zeros(20)}
        >>> flow = gradient_flow("lstm", args, dh_last=np.ones((4, 5)))
        >>> p = plot_gradient_flow(flow, os.path.join(tempfile.mkdtemp(), "flow.png"))
        >>> open(p, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
        True
    """
    fn = "plot_gradient_flow"
    path = _check_path(fn, path)
    from .trace import GradientFlow

    if not isinstance(flow, GradientFlow):
        raise ValueError(f"{fn}: flow must be a bptt.trace.GradientFlow (from gradient_flow or layer_flow); got {type(flow).__name__}")
    T, H, G = flow.steps, flow.hidden_size, len(flow.gate_names)
    heat = np.abs(np.asarray(flow.dz, np.float64)).mean(axis=0).T  # (G·H, T): rows gate-major
    if flow.cell == "lstm":
        lines = [("‖dL/dc_t‖", flow.dc_norms, "-"), ("‖dL/dh_t‖", flow.dh_norms, "--")]
    else:
        lines = [("‖dL/dh_t‖", flow.dh_norms, "-")]

    fig = _new_figure()
    fig.set_size_inches(7.2, 6.4)
    ax_heat, ax_line = fig.subplots(2, 1, height_ratios=[3, 2], sharex=True)
    image = ax_heat.imshow(heat, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
                           extent=(-0.5, T - 0.5, G * H - 0.5, -0.5))
    fig.colorbar(image, ax=ax_heat, label="|dL/dz| (mean over batch)")
    for k in range(1, G):
        ax_heat.axhline(k * H - 0.5, color="white", linewidth=1.0)
    ax_heat.set_yticks([k * H + (H - 1) / 2 for k in range(G)], [f"{g}" for g in flow.gate_names])
    ax_heat.set_ylabel(f"gate (H = {H} units each)")
    ax_heat.set_title(title or f"{flow.cell.upper()} gradient flow (B = {flow.batch_size}, T = {T}, H = {H})")

    steps = np.arange(T)
    for label, values, style in lines:
        ax_line.plot(steps, values, linestyle=style, marker="o", markersize=3, linewidth=1.6, label=label)
    positive = np.concatenate([v[v > 0] for _, v, _ in lines])
    if positive.size and positive.max() / positive.min() > 100:
        ax_line.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax_line.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_line.set_xlabel("time step t")
    ax_line.set_ylabel("norm over batch and units")
    ax_line.grid(True, alpha=0.3)
    ax_line.legend()
    return _save(fig, path)


# ──────────────────────────────────────────────── TMVA's evaluation plots: rejection, overtraining

__all__ += ["plot_rejection", "plot_overtraining"]


def plot_rejection(curves: Mapping, path, title: str = "Background rejection versus signal efficiency") -> str:
    """TMVA's ROC plot: background rejection 1 − ε_B against signal efficiency ε_S, one line per
    network (the best classifiers reach the top right corner); write it as a PNG, return the path.

    Args:
        curves: ``{name: (eff_s, rejection, roc_integral)}``, e.g. from
            :func:`bptt.metrics.efficiency_curve` (``eff_s``, ``1 - eff_b``) and the ROC integral
            (:func:`bptt.metrics.roc_auc`). Each line is labelled with its ROC integral.
        path: the ``.png`` file to create or replace.
        title: plot title.

    The diagonal 1 − ε_S (a classifier that guesses) is drawn dashed for reference.
    """
    fn = "plot_rejection"
    path = _check_path(fn, path)
    checked = _checked_curves(fn, curves, ("eff_s", "rejection", "roc_integral"))

    return _curve_plot(path, checked, title, guess=([0, 1], [1, 0], "random guess (0.5)"), area_name="ROC integral",
                       axes=("signal efficiency ε_S", "background rejection 1 − ε_B"), legend="lower left")


def _weighted_values(fn: str, where: str, value) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{fn}: {where} must be a tuple (scores, weights); got {type(value).__name__}")
    try:
        s, w = np.asarray(value[0], np.float64), np.asarray(value[1], np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {where} must hold numbers (scores, weights)") from None
    if s.ndim != 1 or s.shape != w.shape or len(s) == 0 or not (np.isfinite(s).all() and np.isfinite(w).all()):
        raise ValueError(
            f"{fn}: {where} must be two finite 1-D arrays of the same non-zero length; got shapes {s.shape} and {w.shape}"
        )
    return s, w


def plot_overtraining(test: Mapping, train: Mapping, path, *, value_range, bins: int = 40, ks: Mapping | None = None,
                      title: str = "Classifier output: training vs test") -> str:
    """TMVA's overtraining plot: the classifier output per class, the test sample as filled
    histograms (signal blue, background red hatched) and the training sample as points with error
    bars, each normalised to unit area; the Kolmogorov–Smirnov probabilities in the title. Returns
    the path.

    Args:
        test, train: ``{"signal": (scores, weights), "background": (scores, weights)}``.
        path: the ``.png`` file to create or replace.
        value_range: ``(low, high)`` of the ``bins`` equal bins (:func:`bptt.results.output_range`).
        ks: ``{"signal": p, "background": p}``, the overtraining test's probabilities, or None.
        title: plot title.
    """
    fn = "plot_overtraining"
    path = _check_path(fn, path)
    classes = ("signal", "background")
    data = {}
    for where, group in (("test", test), ("train", train)):
        if not isinstance(group, Mapping) or set(group) != set(classes):
            got = sorted(map(str, group)) if isinstance(group, Mapping) else type(group).__name__
            raise ValueError(f"{fn}: {where} must be a dict with 'signal' and 'background' (scores, weights); got {got}")
        for c in classes:
            data[where, c] = _weighted_values(fn, f"{where}[{c!r}]", group[c])
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: value_range must be (low, high); got {value_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{fn}: value_range must be two finite numbers, low < high; got {value_range!r}")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"{fn}: bins must be a positive integer; got {bins!r}")

    edges = np.linspace(low, high, int(bins) + 1)
    width = (high - low) / bins
    colours = {"signal": "#3b6fb6", "background": "#d7301f"}
    fig = _new_figure()
    ax = fig.add_subplot()
    for c in classes:
        s, w = data["test", c]
        counts, _ = np.histogram(s, edges, weights=w)
        total = counts.sum() * width
        ax.hist(edges[:-1], edges, weights=counts / total if total > 0 else counts, histtype="stepfilled",
                alpha=0.35 if c == "signal" else 0.25, color=colours[c], hatch=None if c == "signal" else "//",
                edgecolor=colours[c], linewidth=1.2, label=f"{c.capitalize()} (test sample)")
    centres = (edges[:-1] + edges[1:]) / 2
    for c in classes:
        s, w = data["train", c]
        counts, _ = np.histogram(s, edges, weights=w)
        sumw2, _ = np.histogram(s, edges, weights=w * w)
        total = counts.sum() * width
        scale = 1.0 / total if total > 0 else 1.0
        ax.errorbar(centres, counts * scale, yerr=np.sqrt(sumw2) * scale, fmt="o", markersize=3.5, color=colours[c],
                    elinewidth=1, capsize=0, label=f"{c.capitalize()} (training sample)")
    ax.set_xlim(low, high)
    ax.set_xlabel("classifier output")
    ax.set_ylabel("(1/N) dN/dx")
    if ks is not None:
        title = f"{title}\nKolmogorov-Smirnov test: signal (background) probability = {ks['signal']:.3g} ({ks['background']:.3g})"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", fontsize=8, ncols=2)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the legend
    return _save(fig, path)
