"""TMVA-style results of a trained classifier: the figures TMVA's ``Factory::EvaluateAllMethods``
prints, its overtraining check, and its output file with ``TrainTree`` and ``TestTree``.

:func:`classifier_results` takes the classifier outputs of the training and the test events (with
their classes and event weights) and computes, with the weights:

- the **ROC integral** (TMVA's "ROC-integ": the area under background rejection 1 − ε_B against
  signal efficiency ε_S), on the test and on the training sample;
- the **signal efficiency at 1 %, 10 % and 30 % background efficiency**, test sample (training
  sample), with the test figure's binomial error √(ε(1 − ε)/N), N the effective number of signal
  events (Σw)²/Σw² (TMVA divides by Σw, the same for unit weights); read off the unbinned weighted
  curve (:func:`bptt.metrics.signal_efficiency_at`) where TMVA reads 10 000-bin histograms;
- the **Kolmogorov–Smirnov overtraining test** per class, training against test output. As TMVA:
  histograms of 40 bins (``NbinsMVAoutput``) from the test sample's smallest to largest output
  (narrowed to each class's weighted mean ± 10 RMS, the top edge raised by 1e-5), training outputs
  outside the range left out, and ROOT's ``TH1::KolmogorovTest`` without options
  (:func:`bptt.metrics.ks_test_binned`; checked against ROOT 6.40 in tests/fixtures/ks_root.json).
  TMVA's GUI passes the option "X" (1000 pseudo-experiments), a random figure close to this one.

:class:`ClassifierResults` prints them as TMVA's tables (:meth:`~ClassifierResults.table`), saves
them as JSON (:meth:`~ClassifierResults.write_json`), writes TMVA's output file
(:meth:`~ClassifierResults.write_root`: ``dataset/TrainTree`` and ``dataset/TestTree`` with
``classID`` (0 signal, 1 background, TMVA's numbering), ``className``, ``weight``, the input
variables and the classifier output in a branch named after the method) and draws the plots
(:meth:`~ClassifierResults.plot`: the classifier output train vs test per class, and the ROC curve
as background rejection against signal efficiency). ``bptt train`` does all of it.

Example::

    >>> import numpy as np
    >>> from bptt.results import classifier_results
    >>> rng = np.random.default_rng(0)
    >>> def sample(n):
    ...     y = rng.integers(0, 2, n)
    ...     return rng.normal(0.6 * y, 0.3), y, np.ones(n)
    >>> r = classifier_results("BPTT_LSTM", train=sample(2000), test=sample(2000))
    >>> round(r.metrics["roc_integral"]["test"], 3), round(r.metrics["signal_efficiency"]["0.10"]["test"], 3)
    (0.926, 0.762)
    >>> r.metrics["overtraining"]["signal"]["probability"] > 0.01  # same distribution: no overtraining
    True
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from . import metrics
from ._files import atomic_path, atomic_write

__all__ = ["EFFICIENCY_LEVELS", "NBINS_MVA_OUTPUT", "Sample", "ClassifierResults", "classifier_results",
           "evaluate_events", "output_range", "output_histograms", "overtraining_test", "classifier_output",
           "per_step_results", "format_per_step"]

#: The background efficiencies of TMVA's table ("@B=0.01 @B=0.10 @B=0.30").
EFFICIENCY_LEVELS = (0.01, 0.10, 0.30)
#: TMVA's ``fNbinsMVAoutput``: bins of the classifier-output histograms of the overtraining check.
NBINS_MVA_OUTPUT = 40
#: TMVA's classes: ``classID`` 0 is signal, 1 background (the order a DataLoader's classes are added).
CLASS_NAMES = ("Signal", "Background")

_RULE = "-" * 115


@dataclass
class Sample:
    """Classifier outputs of one sample, with each event's class (1 signal, 0 background, bptt's
    labels) and weight: ``(n,)`` each, float64 scores and weights, int8 classes."""

    scores: np.ndarray
    y: np.ndarray
    weights: np.ndarray

    @classmethod
    def checked(cls, name: str, value) -> "Sample":
        if isinstance(value, Sample):
            value = (value.scores, value.y, value.weights)
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            raise ValueError(f"classifier_results: {name} must be a tuple (scores, y, weights); got {type(value).__name__}")
        fn = f"classifier_results ({name})"
        y, s = metrics._check(fn, value[1], value[0], both_classes=True)
        w = metrics._event_weights(fn, value[2], len(y))
        return cls(scores=s, y=y.astype(np.int8), weights=w)

    def of_class(self, signal: bool) -> tuple[np.ndarray, np.ndarray]:
        m = self.y == (1 if signal else 0)
        return self.scores[m], self.weights[m]


def _mean_rms(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    total = w.sum()
    mean = float(np.sum(w * x) / total)
    return mean, math.sqrt(max(float(np.sum(w * x * x) / total) - mean * mean, 0.0))


def output_range(test: Sample) -> tuple[float, float]:
    """The range of TMVA's classifier-output histograms: the test sample's smallest and largest
    output, narrowed to the classes' weighted mean ± 10 RMS, the upper edge raised by 1e-5 (so that
    the largest output falls inside, as in MethodBase::TestClassification)."""
    (mean_s, rms_s), (mean_b, rms_b) = (_mean_rms(*test.of_class(signal)) for signal in (True, False))
    low = max(min(mean_s - 10 * rms_s, mean_b - 10 * rms_b), float(test.scores.min()))
    high = min(max(mean_s + 10 * rms_s, mean_b + 10 * rms_b), float(test.scores.max()))
    return low, high + 0.00001


def output_histograms(scores, weights, low: float, high: float, nbins: int = NBINS_MVA_OUTPUT):
    """``(contents, sumw2)`` of a weighted histogram of ``nbins`` equal bins over ``[low, high)``,
    bins found as ROOT's TAxis::FindBin does; values outside are left out (under- and overflow)."""
    x = np.asarray(scores, np.float64)
    index = np.floor(nbins * (x - low) / (high - low))
    inside = (index >= 0) & (index < nbins)
    index = index[inside].astype(np.int64)
    w = np.asarray(weights, np.float64)[inside]
    return np.bincount(index, w, nbins), np.bincount(index, w * w, nbins)


def overtraining_test(train: Sample, test: Sample, nbins: int = NBINS_MVA_OUTPUT) -> dict:
    """TMVA's Kolmogorov–Smirnov overtraining check: per class, the test against the training
    output histogram (see the module's docstring). Returns ``{"signal": {"probability", "distance"},
    "background": {...}, "range": [low, high], "nbins": nbins}``; a class whose training outputs all
    fall outside the range gets probability 0 (they are as different as can be)."""
    low, high = output_range(test)
    out: dict = {"range": [low, high], "nbins": nbins}
    for name, signal in (("signal", True), ("background", False)):
        h_test = output_histograms(*test.of_class(signal), low, high, nbins)
        h_train = output_histograms(*train.of_class(signal), low, high, nbins)
        if not h_train[0].sum() > 0:
            out[name] = {"probability": 0.0, "distance": 1.0}
            continue
        probability, distance = metrics.ks_test_binned(h_test[0], h_train[0], h_test[1], h_train[1])
        out[name] = {"probability": probability, "distance": distance}
    return out


def _efficiency_error(efficiency: float, signal_weights: np.ndarray) -> float:
    n_eff = signal_weights.sum() ** 2 / np.sum(signal_weights**2)
    return math.sqrt(max(efficiency * (1.0 - efficiency), 0.0) / n_eff)


def _sample_figures(sample: Sample) -> dict:
    roc = metrics.roc_auc(sample.y, sample.scores, sample_weight=sample.weights)
    eff = {f"{level:.2f}": metrics.signal_efficiency_at(sample.y, sample.scores, level, sample.weights)
           for level in EFFICIENCY_LEVELS}
    return {"roc": roc, "eff": eff}


def _counts(sample: Sample) -> dict:
    sig = sample.y == 1
    return {"signal": int(sig.sum()), "background": int((~sig).sum()),
            "signal_weight": float(sample.weights[sig].sum()), "background_weight": float(sample.weights[~sig].sum())}


@dataclass
class ClassifierResults:
    """The evaluation of one classifier (see the module's docstring); ``metrics`` holds the numbers:

    ``roc_integral`` ``{"test", "train"}``; ``signal_efficiency`` ``{"0.01": {"test", "test_error",
    "train"}, "0.10": …, "0.30": …}``; ``overtraining`` (:func:`overtraining_test`); ``events``
    ``{"test": {"signal", "background", "signal_weight", "background_weight"}, "train": …}``;
    ``weighted``: whether any event weight differs from 1.
    """

    method: str
    train: Sample
    test: Sample
    metrics: dict
    dataset: str = "dataset"
    extra: dict = field(default_factory=dict)

    # ── printing

    def table(self) -> str:
        """TMVA's end-of-evaluation tables for this method, and the overtraining test."""
        m, name, ds = self.metrics, self.method, self.dataset
        eff = m["signal_efficiency"]
        levels = [f"{level:.2f}" for level in EFFICIENCY_LEVELS]
        ks = m["overtraining"]
        weights = (f"event weights used: signal {m['events']['test']['signal_weight']:.6g}, background "
                   f"{m['events']['test']['background_weight']:.6g} in the test sample") if m["weighted"] else \
            "event weights: none (every event counts 1)"
        lines = [
            f"Evaluation on {m['events']['test']['signal']} signal and {m['events']['test']['background']} background "
            f"test events ({m['events']['train']['signal']} + {m['events']['train']['background']} for training); {weights}",
            "",
            "Evaluation results ranked by best signal efficiency and purity (area)",
            _RULE,
            "DataSet       MVA              Signal efficiency at bkg eff.(error):",
            "Name:         Method:          @B=0.01    @B=0.10    @B=0.30    ROC-integ",
            f"{ds:<13} {name:<15}: "
            + "  ".join(f"{eff[k]['test']:#1.3f}({int(1000 * eff[k]['test_error']):02d})" for k in levels)
            + f"  {m['roc_integral']['test']:#1.3f}",
            _RULE,
            "",
            "Testing efficiency compared to training efficiency (overtraining check)",
            _RULE,
            "DataSet              MVA              Signal efficiency: from test sample (from training sample) ",
            "Name:                Method:          @B=0.01             @B=0.10            @B=0.30   ",
            _RULE,
            f"{ds:<20} {name:<15}: {eff[levels[0]]['test']:#1.3f} ({eff[levels[0]]['train']:#1.3f})       "
            f"{eff[levels[1]]['test']:#1.3f} ({eff[levels[1]]['train']:#1.3f})      "
            f"{eff[levels[2]]['test']:#1.3f} ({eff[levels[2]]['train']:#1.3f})",
            _RULE,
            "",
            f"Testing for overtraining using the Kolmogorov-Smirnov test ({ks['nbins']} bins, TH1::KolmogorovTest):",
            f"{name}: signal (background) probability = {ks['signal']['probability']:.3g} "
            f"({ks['background']['probability']:.3g})"
            + ("   [below 0.05: the training sample's output differs from the test sample's; overtrained?]"
               if min(ks["signal"]["probability"], ks["background"]["probability"]) < 0.05 else ""),
        ]
        return "\n".join(lines)

    # ── files

    def write_json(self, path, **extra) -> str:
        """``{"method", "dataset", "metrics", ...extra}`` as JSON (atomic write); returns the path."""
        data = {"method": self.method, "dataset": self.dataset, "metrics": self.metrics, **self.extra, **extra}
        return atomic_write(path, lambda f: f.write(json.dumps(data, indent=2) + "\n"), mode="w")

    def write_root(self, path, train_inputs=None, test_inputs=None, variables=None) -> str:
        """TMVA's output file: ``<dataset>/TrainTree`` and ``<dataset>/TestTree``, one entry per event
        in the order given, with ``classID`` (int: 0 signal, 1 background), ``className`` ("Signal",
        "Background"), ``weight`` (float) and the classifier output (float, branch named after the
        method). With ``variables`` (``[(name, size), …]``, :attr:`bptt.data.events.Events.variables`)
        and the inputs of each sample (``(n, T, F)`` or ``(n, size…)``), each variable is one more
        branch: a float for size 1, a float array ``[size]`` otherwise, named as given with characters
        other than letters, digits and ``_`` replaced by ``_``. Written atomically; returns the path.
        """
        import uproot

        names = _branch_names(self.method, variables or [])
        samples = (("TrainTree", self.train, train_inputs), ("TestTree", self.test, test_inputs))
        columns = {tree: self._columns(sample, inputs, variables or [], names) for tree, sample, inputs in samples}
        with atomic_path(path, suffix=".root") as tmp:
            with uproot.recreate(tmp) as f:
                for tree, cols in columns.items():
                    types = {k: ("string" if k == "className" else (v.dtype, v.shape[1:]) if v.ndim > 1 else v.dtype)
                             for k, v in cols.items()}
                    f.mktree(f"{self.dataset}/{tree}", types, title=tree)
                    f[f"{self.dataset}/{tree}"].extend(cols)
        return os.fspath(path)

    def _columns(self, sample: Sample, inputs, variables, names) -> dict:
        class_id = np.where(sample.y == 1, 0, 1).astype(np.int32)
        cols = {"classID": class_id, "className": np.asarray(CLASS_NAMES)[class_id],
                "weight": sample.weights.astype(np.float32)}
        if variables:
            flat = _flat_inputs(inputs, len(sample.y), sum(size for _, size in variables))
            start = 0
            for (var, size), branch in zip(variables, names["variables"]):
                part = flat[:, start : start + size]
                cols[branch] = np.ascontiguousarray(part[:, 0] if size == 1 else part)
                start += size
        cols[names["method"]] = sample.scores.astype(np.float32)
        return cols

    # ── plots

    def plot(self, directory, prefix: str = "") -> list[str]:
        """The classifier output train vs test per class (``<prefix>overtraining.png``) and the ROC
        curve as background rejection against signal efficiency (``<prefix>roc.png``) in
        ``directory``; returns the paths."""
        from . import plots

        ks = self.metrics["overtraining"]
        out = [
            plots.plot_overtraining(
                {"signal": self.test.of_class(True), "background": self.test.of_class(False)},
                {"signal": self.train.of_class(True), "background": self.train.of_class(False)},
                os.path.join(directory, f"{prefix}overtraining.png"), value_range=tuple(ks["range"]),
                bins=ks["nbins"], ks={k: ks[k]["probability"] for k in ("signal", "background")},
                title=f"{self.method}: classifier output, training vs test",
            )
        ]
        eff_b, eff_s, _ = metrics.efficiency_curve(self.test.y, self.test.scores, self.test.weights)
        out.append(plots.plot_rejection(
            {self.method: (eff_s, 1.0 - eff_b, self.metrics["roc_integral"]["test"])},
            os.path.join(directory, f"{prefix}roc.png"), title=f"{self.method}: background rejection vs signal efficiency",
        ))
        return out


def _branch_names(method: str, variables) -> dict:
    taken = {"classID", "className", "weight"}
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", method) or method in taken:
        raise ValueError(
            f"write_root: the method name {method!r} must be a branch name (letters, digits, _; not starting with a "
            f"digit) other than classID, className and weight, e.g. BPTT_LSTM"
        )
    taken.add(method)
    out = []
    for name, _ in variables:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "var"
        branch, k = base, 1
        while branch in taken:
            branch, k = f"{base}_{k}", k + 1
        taken.add(branch)
        out.append(branch)
    return {"method": method, "variables": out}


def _flat_inputs(inputs, n: int, size: int) -> np.ndarray:
    if inputs is None:
        raise ValueError("write_root: variables given without the inputs of both samples (train_inputs, test_inputs)")
    a = np.asarray(inputs)
    if len(a) != n or a.size != n * size:
        raise ValueError(
            f"write_root: the inputs must hold {size} values per event for {n} events, as the variables say; got shape {a.shape}"
        )
    return a.reshape(n, size).astype(np.float32, copy=False)


def classifier_results(method: str, train, test, dataset: str = "dataset") -> ClassifierResults:
    """Evaluate a classifier from its outputs: ``train`` and ``test`` are ``(scores, y, weights)``
    (scores larger for more signal-like events, y 1 signal / 0 background, weights ``(n,)`` or None
    for ones). See the module's docstring for what is computed."""
    tr, te = Sample.checked("train", train), Sample.checked("test", test)
    f_tr, f_te = _sample_figures(tr), _sample_figures(te)
    signal_w = te.of_class(True)[1]
    efficiency = {
        k: {"test": f_te["eff"][k], "test_error": _efficiency_error(f_te["eff"][k], signal_w), "train": f_tr["eff"][k]}
        for k in f_te["eff"]
    }
    figures = {
        "roc_integral": {"test": f_te["roc"], "train": f_tr["roc"]},
        "signal_efficiency": efficiency,
        "overtraining": overtraining_test(tr, te),
        "events": {"test": _counts(te), "train": _counts(tr)},
        "weighted": bool(np.any(tr.weights != 1) or np.any(te.weights != 1)),
    }
    return ClassifierResults(method=method, train=tr, test=te, metrics=figures, dataset=dataset)


def classifier_output(model, X, lengths=None) -> np.ndarray:
    """The classifier output TMVA's MethodDL gives for a two-class network, ``(n,)``: the signal
    probability (sigmoid) for the cross-entropy loss, the network's output for sum of squares, and
    the second (signal, label 1) class's probability for a two-unit softmax. ``lengths``: the real
    steps of ragged sequences (:meth:`bptt.model.Sequential.decision_function`)."""
    name = model.loss.name
    kw = {} if lengths is None else {"lengths": lengths}
    if name == "bce":
        return np.asarray(model.predict_proba(X, **kw), np.float64).reshape(len(X))
    out = model.predict_proba(X, **kw) if name == "softmax_ce" else model.decision_function(X, **kw)
    out = np.asarray(out, np.float64)
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        return out.reshape(len(X))
    if name == "softmax_ce" and out.ndim == 2 and out.shape[1] == 2:
        return out[:, 1]
    raise ValueError(
        f"classifier_output: a {name} network with output shape {out.shape[1:]} gives no one-number classifier "
        f"output; evaluate a network with one output unit (or two softmax units)"
    )


def evaluate_events(model, events, method: str) -> ClassifierResults:
    """:func:`classifier_results` of a model trained on ``events.train()``
    (:class:`bptt.data.events.Events`): its classifier output (:func:`classifier_output`) on the
    training and the test events, with their classes and weights (and the lengths of ragged
    sequences)."""
    if events.n_test == 0:
        raise ValueError(
            f"evaluate_events: the events of {events.source or 'the data'} have no test part (all {events.n_train} "
            f"are for training); keep some for testing (TMVA's nTest_Signal / nTest_Background)"
        )
    samples = {}
    for part, (X, y, w), L in (("train", events.train(), _lengths(events, "train")),
                               ("test", events.test(), _lengths(events, "test"))):
        samples[part] = (classifier_output(model, X, L), y, w)
    return classifier_results(method, train=samples["train"], test=samples["test"])


def _lengths(events, part: str):
    """The lengths of the events' training or test part (None for fixed-length sequences)."""
    if getattr(events, "lengths", None) is None:
        return None
    return events.train_lengths() if part == "train" else events.test_lengths()


# ── per-step targets (sequence labelling, per-step regression)


def per_step_results(model, events) -> dict:
    """The figures of a network with per-step targets (``events.y (n, T)``) on the training and
    the test events: :meth:`bptt.model.Sequential.evaluate`'s (the loss; for ``bce`` the ROC AUC
    and the accuracy; for ``softmax_ce`` the accuracy), each pooling the real steps of all the
    part's events with their event weights, and the part's numbers of events and real steps.

    TMVA's figures (:func:`classifier_results`: ROC integral, efficiencies, the overtraining test)
    are those of one classifier output per event and have no per-step meaning; these take their
    place (``bptt train`` prints them with :func:`format_per_step`)."""
    figures = {}
    for part, (X, y, w) in (("train", events.train()), ("test", events.test())):
        L = _lengths(events, part)
        if len(X) == 0:
            raise ValueError(f"per_step_results: the {part} part of {events.source or 'the data'} has no events")
        result = model.evaluate(X, y, sample_weight=None if np.all(w == 1) else w, lengths=L)
        result["events"] = int(len(X))
        result["steps"] = int(np.sum(L)) if L is not None else int(len(X) * np.shape(X)[1])
        figures[part] = result
    return figures


def format_per_step(method: str, figures: dict) -> str:
    """:func:`per_step_results` as a table: one row per figure, test and training columns."""
    names = [k for k in figures["test"] if k not in ("events", "steps")]
    lines = [f"Per-step evaluation of {method}: every real step of every event one prediction, weighted by its "
             f"event's weight",
             f"{'':<10}{'test':>12}{'train':>12}"]
    for k in names:
        lines.append(f"{k:<10}{figures['test'][k]:>12.4f}{figures['train'][k]:>12.4f}")
    for k in ("events", "steps"):
        lines.append(f"{k:<10}{figures['test'][k]:>12d}{figures['train'][k]:>12d}")
    return "\n".join(lines)
