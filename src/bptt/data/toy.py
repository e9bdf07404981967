"""The toy time series of ROOT's ``TMVA_RNN_Classification.C`` tutorial (``MakeTimeData``), vectorised.

Each event is a sequence of ``n_steps`` histograms. At time step ``j`` (of ``ntime = n_steps``)::

    background:  mean = 5 + 0.2 sin(π j / ntime)    sigma = 4 + 0.3 sin(π j / ntime)
    signal:      mean = 5 + 0.2 cos(π j / ntime)    sigma = 4 + 0.3 cos(π j / ntime)

and the step's ``n_features`` features are the bin contents of a histogram with ``n_features``
equal bins over ``[0, 10]``, filled with 1000 entries drawn from that Gaussian (ROOT's
``TH1::FillRandom`` with a ``TF1``: the function is integrated over each bin and the entries are
spread over the bins with those probabilities, i.e. a multinomial draw), plus Gaussian noise of
standard deviation 10 added to every bin.

Differences from the C++ macro, on purpose: NumPy's generator replaces ``gRandom`` (so the
numbers differ, the distributions do not), and every one of the ``n_features`` features is filled.

Example::

    >>> from bptt.data.toy import make_tutorial_data
    >>> sig, bkg = make_tutorial_data(n_events=5, n_steps=4, n_features=6, seed=1)
    >>> sig.shape, bkg.shape, sig.dtype
    ((5, 4, 6), (5, 4, 6), dtype('float32'))
"""

from __future__ import annotations

import math
import os
import numbers

import numpy as np

__all__ = ["make_tutorial_data", "write_tutorial_root", "tutorial_parameters", "bin_probabilities"]

#: Entries per histogram, range of the histogram and noise level of the TMVA macro.
N_ENTRIES = 1000
X_RANGE = (0.0, 10.0)
NOISE_SIGMA = 10.0


def _positive_int(fn: str, name: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer ({what}); got {value!r}")
    return int(value)


def tutorial_parameters(n_steps: int) -> dict[str, np.ndarray]:
    """Per-step Gaussian parameters of ``MakeTimeData``: ``mean_sig``, ``mean_bkg``, ``sigma_sig``, ``sigma_bkg``.

    >>> p = tutorial_parameters(10)
    >>> float(p["mean_sig"][0]), float(p["mean_bkg"][0]), float(p["sigma_sig"][0])
    (5.2, 5.0, 4.3)
    """
    n_steps = _positive_int("tutorial_parameters", "n_steps", n_steps, "number of time steps")
    phase = np.pi * np.arange(n_steps) / float(n_steps)
    return {
        "mean_sig": 5.0 + 0.2 * np.cos(phase),
        "mean_bkg": 5.0 + 0.2 * np.sin(phase),
        "sigma_sig": 4.0 + 0.3 * np.cos(phase),
        "sigma_bkg": 4.0 + 0.3 * np.sin(phase),
    }


def bin_probabilities(means, sigmas, n_bins: int, x_range=X_RANGE) -> np.ndarray:
    """Probability of each of ``n_bins`` equal bins over ``x_range`` under Gaussian(mean, sigma).

    Restricted to the histogram's range (normalised to sum to 1), as ``TH1::FillRandom`` does.
    ``means`` and ``sigmas`` are 1-D of equal length S; the result is ``(S, n_bins)``.

    >>> bin_probabilities([5.0], [4.0], 2).round(3)
    array([[0.5, 0.5]])
    """
    means = np.atleast_1d(np.asarray(means, dtype=np.float64))
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    edges = np.linspace(x_range[0], x_range[1], int(n_bins) + 1)
    cdf = np.array(
        [[0.5 * math.erf((e - m) / (s * math.sqrt(2.0))) for e in edges] for m, s in zip(means, sigmas)]
    )
    mass = np.diff(cdf, axis=1)
    return mass / mass.sum(axis=1, keepdims=True)


def _histogram_series(rng: np.random.Generator, n_events: int, means, sigmas, n_features: int) -> np.ndarray:
    p = bin_probabilities(means, sigmas, n_features)  # (T, F), one row per time step
    counts = rng.multinomial(N_ENTRIES, p, size=(n_events, p.shape[0]))  # (n, T, F)
    noise = rng.normal(0.0, NOISE_SIGMA, size=counts.shape)
    return (counts + noise).astype(np.float32)


def make_tutorial_data(n_events: int = 2000, n_steps: int = 10, n_features: int = 30, seed=0):
    """Signal and background sequences of ``TMVA_RNN_Classification.C`` (see the module docstring).

    Args:
        n_events: events per class.
        n_steps: time steps per event (``ntime`` of the macro).
        n_features: histogram bins per time step (``ndim`` of the macro).
        seed: seed of :func:`numpy.random.default_rng` (int, or None for fresh entropy).

    Returns:
        ``(signal, background)``, each float32 of shape ``(n_events, n_steps, n_features)``.
        The same seed gives the same arrays.
    """
    fn = "make_tutorial_data"
    n_events = _positive_int(fn, "n_events", n_events, "events per class")
    n_steps = _positive_int(fn, "n_steps", n_steps, "time steps per event")
    n_features = _positive_int(fn, "n_features", n_features, "histogram bins per time step")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"{fn}: seed must be a non-negative integer or None; got {seed!r}")
    rng = np.random.default_rng(seed)
    p = tutorial_parameters(n_steps)
    signal = _histogram_series(rng, n_events, p["mean_sig"], p["sigma_sig"], n_features)
    background = _histogram_series(rng, n_events, p["mean_bkg"], p["sigma_bkg"], n_features)
    return signal, background


def write_tutorial_root(
    path: str | os.PathLike = "time_data_t10_d30.root",
    n_events: int = 2000,
    n_steps: int = 10,
    n_features: int = 30,
    seed=0,
) -> str:
    """Write :func:`make_tutorial_data` as a ROOT file in the tutorial's layout; return the path.

    Trees ``sgn`` and ``bkg``, one branch ``vars_time{j}`` per time step holding the step's
    ``n_features`` floats (see :func:`bptt.data.root.write_tmva_root`). Read it back with
    :func:`bptt.data.root.read_tmva_root`. The write is atomic.
    """
    from .root import write_tmva_root

    signal, background = make_tutorial_data(n_events, n_steps, n_features, seed)
    return write_tmva_root(path, signal, background)
