"""TMVA's training/test split and weight renormalisation (``DataLoader::PrepareTrainingAndTestTree``).

The options string of ``PrepareTrainingAndTestTree`` (TMVA's ``DataSetFactory::InitOptions``),
read here with TMVA's names and defaults:

- ``nTrain_Signal``, ``nTrain_Background``, ``nTest_Signal``, ``nTest_Background``: events of each
  class for training and testing (0, the default: TMVA's balance, see :func:`split_sizes`);
  ``TrainTestSplit_<class>``: a fraction in (0, 1) of the class for training, the rest for testing;
- ``SplitMode`` = ``Random`` (default) | ``Alternate`` | ``Block``; ``SplitSeed`` (default 100;
  0 draws a new split each run, as TMVA's ``TRandom3(0)``);
- ``NormMode`` = ``EqualNumEvents`` (TMVA's default in ``DataSetFactory.cxx``) | ``NumEvents`` | ``None``:
  the training weights of each class are scaled so that their sum is the number of training
  events of the first class (EqualNumEvents) or of the class itself (NumEvents); test weights
  are never changed (:func:`renormalise`);
- ``MixMode``: the order of the events inside TMVA's training set. bptt keeps the events in file
  order and shuffles batches while training, so a MixMode other than ``SameAsSplitMode`` draws a
  warning;
- ``V``, ``VerboseLevel``, ``Correlations``, ``CalcCorrelations``: display only; ``V`` prints the
  event counts, asking for TMVA's correlation printout draws a warning (bptt prints none);
- ``ScaleWithPreselEff=True`` is refused (give the numbers of events after the cuts).

Anything else is an error naming the option. Names are matched without regard to case, as TMVA does.
Random mode draws with NumPy's generator seeded with ``SplitSeed``: the same meaning as TMVA (each
class shuffled, then cut), not TMVA's ``TRandom3`` sequence, so the events picked differ from ROOT's.

Example::

    >>> from bptt.data.splitting import parse_split_options, split_sizes
    >>> opts = parse_split_options("nTrain_Signal=80:nTrain_Background=80:SplitMode=Random:NormMode=NumEvents:!V")
    >>> opts.n_train, opts.split_mode, opts.norm_mode
    ({'Signal': 80, 'Background': 80}, 'RANDOM', 'NUMEVENTS')
    >>> split_sizes(0, 0, available=(0, 0, 7))   # 7 events, no numbers asked: 3 and 3, one unused
    (3, 3, 3)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SplitOptions", "parse_split_options", "split_sizes", "assign_split", "renormalise"]

CLASSES = ("Signal", "Background")
#: with TMVA's regression sample (``AddRegressionTree``; split as one class, ``nTrain_Regression``)
ALL_CLASSES = CLASSES + ("Regression",)
_INT = re.compile(r"[+]?[0-9]+")
_FLOAT = re.compile(r"[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE, _FALSE = ("T", "TRUE", "1", "KTRUE"), ("F", "FALSE", "0", "KFALSE")


@dataclass
class SplitOptions:
    """The parsed options of ``PrepareTrainingAndTestTree`` (upper-case modes, TMVA's defaults); the
    per-class numbers hold "Regression" only when the options name it (read them with ``.get``)."""

    n_train: dict = field(default_factory=lambda: {c: 0 for c in CLASSES})
    n_test: dict = field(default_factory=lambda: {c: 0 for c in CLASSES})
    train_fraction: dict = field(default_factory=lambda: {c: 0.0 for c in CLASSES})
    split_mode: str = "RANDOM"
    mix_mode: str = "RANDOM"
    split_seed: int = 100
    norm_mode: str = "EQUALNUMEVENTS"
    verbose: bool = False
    text: str = ""


def _fail(text: str, item: str, problem: str) -> ValueError:
    return ValueError(f"PrepareTrainingAndTestTree options {text!r}: {item!r}: {problem}")


def parse_split_options(text: str = "") -> SplitOptions:
    """Parse TMVA's ``PrepareTrainingAndTestTree`` option string (``Key=Value`` and ``!Flag``, joined by ``:``)."""
    if not isinstance(text, str):
        raise ValueError(f"PrepareTrainingAndTestTree: options must be a string; got {type(text).__name__} {text!r}")
    opts = SplitOptions(text=text)
    seen: dict[str, str] = {}
    mix_given = None
    display: list[str] = []
    for raw in text.split(":"):
        item = raw.strip()
        if not item:
            continue
        key, eq, value = (s.strip() for s in item.partition("="))
        negated = key.startswith("!")
        name = key.lstrip("!").strip()
        upper = name.upper()
        if upper in seen:
            raise _fail(text, item, f"{seen[upper]} is given twice; keep one")
        seen[upper] = name
        if negated and eq:
            raise _fail(text, item, f"write either !{name} or {name}=False, not both")
        flag = None
        if not eq:
            flag = not negated
        elif upper in ("V", "CORRELATIONS", "CALCCORRELATIONS", "SCALEWITHPRESELEFF"):
            if value.upper() not in _TRUE + _FALSE:
                raise _fail(text, item, f"{name} takes True or False; got {value!r}")
            flag = value.upper() in _TRUE
        m = re.fullmatch(r"(NTRAIN|NTEST|TRAINTESTSPLIT)_(.+)", upper)
        if m:
            cls = next((c for c in ALL_CLASSES if c.upper() == m.group(2)), None)
            if cls is None:
                raise _fail(text, item, f"bptt has the classes Signal and Background (and TMVA's Regression sample); "
                                        f"{name} names another")
            if not eq:
                raise _fail(text, item, f"{name} needs a value, e.g. {name}=100")
            if m.group(1) == "TRAINTESTSPLIT":
                if not _FLOAT.fullmatch(value) or not 0.0 <= float(value) <= 1.0:
                    raise _fail(text, item, f"{name} is a fraction in (0, 1]; got {value!r}")
                opts.train_fraction[cls] = float(value)
            else:
                if not _INT.fullmatch(value):
                    raise _fail(text, item, f"{name} is a number of events (0 = TMVA's balance); got {value!r}")
                (opts.n_train if m.group(1) == "NTRAIN" else opts.n_test)[cls] = int(value)
            continue
        if upper in ("SPLITMODE", "MIXMODE"):
            allowed = ("RANDOM", "ALTERNATE", "BLOCK") + (("SAMEASSPLITMODE",) if upper == "MIXMODE" else ())
            if value.upper() not in allowed:
                raise _fail(text, item, f"{name} is one of {', '.join(a.title() for a in allowed)}; got {value!r}")
            if upper == "SPLITMODE":
                opts.split_mode = value.upper()
            else:
                mix_given = value.upper()
        elif upper == "SPLITSEED":
            if not _INT.fullmatch(value):
                raise _fail(text, item, f"SplitSeed is a non-negative integer (0: a new split each run); got {value!r}")
            opts.split_seed = int(value)
        elif upper == "NORMMODE":
            if value.upper() not in ("NONE", "NUMEVENTS", "EQUALNUMEVENTS"):
                raise _fail(text, item, f"NormMode is one of None, NumEvents, EqualNumEvents; got {value!r}")
            opts.norm_mode = value.upper()
        elif upper == "V":
            opts.verbose = bool(flag)
        elif upper == "VERBOSELEVEL":
            if value.upper() not in ("DEBUG", "VERBOSE", "INFO"):
                raise _fail(text, item, f"VerboseLevel is one of Debug, Verbose, Info; got {value!r}")
            if value.upper() != "INFO":
                display.append(f"VerboseLevel={value}")
        elif upper in ("CORRELATIONS", "CALCCORRELATIONS"):
            if flag:
                display.append(name)
        elif upper == "SCALEWITHPRESELEFF":
            if flag:
                raise _fail(text, item, "bptt does not scale the requested numbers by the cut efficiency; "
                                        "give nTrain_/nTest_ as numbers of events after the cuts")
        else:
            raise _fail(
                text, item,
                "unknown option; TMVA's are nTrain_Signal, nTrain_Background, nTest_Signal, nTest_Background, "
                "TrainTestSplit_Signal, TrainTestSplit_Background, SplitMode, MixMode, SplitSeed, NormMode, "
                "ScaleWithPreselEff, V, VerboseLevel, Correlations, CalcCorrelations",
            )
    opts.mix_mode = opts.split_mode if mix_given in (None, "SAMEASSPLITMODE") else mix_given
    if mix_given not in (None, "SAMEASSPLITMODE"):
        display.append(f"MixMode={mix_given.title()} (bptt keeps events in file order and shuffles batches in training)")
    if display:
        warnings.warn(
            "PrepareTrainingAndTestTree: options with no effect in bptt, which prints no correlation matrices "
            "and keeps no TMVA event order: " + ", ".join(display), UserWarning, stacklevel=3,
        )
    return opts


def split_sizes(requested_train: int, requested_test: int, available: tuple[int, int, int], cls: str = "Signal"):
    """``(n_train, n_test, test_start)`` for one class as ``DataSetFactory::MixEvents`` decides them.

    ``available`` = (events from training trees, from test trees, undefined). With neither number
    asked, the class is balanced: half of all for each (one odd event is not used), or, when the
    trees already assign more to one part than the undefined events can balance, the undefined go
    to the smaller part. With one number asked, the other part takes the rest. With both, each gets
    at least what it asked, and what is left over of the undefined events is not used (TMVA gives
    fewer test events than asked when the class has too few; bptt refuses). ``test_start``: the
    test events are taken from the undefined events from this position on (training's from 0):
    with both numbers asked, TMVA leaves half of the unused events between the two parts.
    """
    r, s, u = available
    total = r + s + u
    R, S = requested_train, requested_test
    if R == 0 and S == 0:
        if u >= abs(r - s):
            return total // 2, total // 2, total // 2 - r
        return ((r + u, s, u) if r < s else (r, s + u, 0))
    if S == 0:
        n_train = max(R, r)
        if n_train > total:
            raise ValueError(
                f"nTrain_{cls}={R} but class {cls} has only {total} events after the cuts; ask for at most {total}"
            )
        return n_train, total - n_train, n_train - r
    if R == 0:
        n_test = max(S, s)
        if n_test > total:
            raise ValueError(
                f"nTest_{cls}={S} but class {cls} has only {total} events after the cuts; ask for at most {total}"
            )
        return total - n_test, n_test, total - n_test - r
    if max(R, r) + max(S, s) > total:
        raise ValueError(
            f"nTrain_{cls}={R} and nTest_{cls}={S} ask for {R + S} events but class {cls} has only {total} after "
            f"the cuts; lower them (0 for one of them takes the rest)"
        )
    free = max(u - max(R - r, 0) - max(S - s, 0), 0)
    return R, S, max(R, r) + free // 2 - r


def assign_split(n_undefined: int, n_train_trees: int, n_test_trees: int, n_train: int, n_test: int,
                 test_start: int, mode: str, rng: np.random.Generator):
    """Which undefined events (indices in file order) go to training and to testing, per ``mode``.

    The events of training trees (``n_train_trees``) and test trees count towards ``n_train`` and
    ``n_test``; when they alone exceed the number asked, Random mode drops events of them at random,
    Alternate and Block modes the last ones. Returns ``(train_undefined, test_undefined,
    keep_train_trees, keep_test_trees)``: index arrays into the undefined events and into the events
    of the training and test trees.
    """
    idx = np.arange(n_undefined)
    if mode == "RANDOM":
        idx = rng.permutation(n_undefined)
    need_train = max(n_train - n_train_trees, 0)
    need_test = max(n_test - n_test_trees, 0)
    if mode == "ALTERNATE":
        # TMVA: one to training (while it needs more), one to testing, in turn; then training and
        # testing are cut to the numbers asked
        train_mask = np.zeros(n_undefined, bool)
        take_train, k = 0, 0
        order = []
        while k < n_undefined:
            if take_train < need_train:
                train_mask[k] = True
                take_train += 1
                k += 1
            if k < n_undefined:
                order.append(k)
                k += 1
        test_idx = np.asarray(order[:need_test], dtype=np.int64)
        train_idx = np.flatnonzero(train_mask)
        if len(train_idx) < need_train:
            warnings.warn(
                f"SplitMode=Alternate: {n_train} training events asked but alternating over {n_undefined} events "
                f"gives {len(train_idx) + n_train_trees}, as in TMVA; use SplitMode=Random or Block for more",
                UserWarning, stacklevel=4,
            )
    else:
        train_idx = idx[:need_train]
        test_idx = idx[test_start: test_start + need_test]
    keep_train = np.arange(n_train_trees)
    keep_test = np.arange(n_test_trees)
    if n_train_trees > n_train:
        keep_train = np.sort(rng.permutation(n_train_trees)[:n_train]) if mode == "RANDOM" else keep_train[:n_train]
    if n_test_trees > n_test:
        keep_test = np.sort(rng.permutation(n_test_trees)[:n_test]) if mode == "RANDOM" else keep_test[:n_test]
    return np.sort(train_idx), np.sort(test_idx), keep_train, keep_test


def renormalise(weights: np.ndarray, is_train: np.ndarray, class_index: np.ndarray, norm_mode: str,
                class_names=CLASSES) -> np.ndarray:
    """TMVA's ``RenormEvents``: the training weights of each class times N_ref / (sum of that class's
    training weights), N_ref the number of training events of the first class (``EQUALNUMEVENTS``)
    or of the class itself (``NUMEVENTS``); ``NONE`` and the test weights are left as they are.
    ``class_index``: 0 for the first class added, 1 for the second. Returns new weights."""
    out = np.array(weights, dtype=np.float64, copy=True)
    if norm_mode == "NONE":
        return out
    n_ref = int(np.count_nonzero(is_train & (class_index == 0)))
    for k in (0, 1):
        m = is_train & (class_index == k)
        total = float(out[m].sum())
        n = n_ref if norm_mode == "EQUALNUMEVENTS" else int(m.sum())
        if not m.any():
            continue
        if not total > 0.0:
            raise ValueError(
                f"NormMode={'EqualNumEvents' if norm_mode == 'EQUALNUMEVENTS' else 'NumEvents'}: the training "
                f"weights of class {class_names[k]} sum to {total:g}, so they cannot be scaled to {n} events; "
                f"check the weight expression, or use NormMode=None"
            )
        out[m] *= n / total
    return out


def split_arrays(y, weights, spec: SplitOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TMVA's split of events held in memory (an .npz file): every event is "undefined" (no
    training or test trees), each class split by ``spec`` as :func:`split_sizes` and
    :func:`assign_split` decide and the weights renormalised by ``spec.norm_mode``, as a DataLoader
    does it for one tree per class. Returns ``(used, is_train, weights)``: the indices of the events
    used, in their order (a class's odd event, or what nTrain/nTest leave over, is not used), their
    training flags and their weights. Per-step targets (``y`` of shape ``(n, T, …)``, no class per
    event) are split as TMVA's one regression sample (``nTrain_Regression``, …)."""
    y = np.asarray(y)
    weights = np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(None if spec.split_seed == 0 else spec.split_seed)
    if y.ndim > 1:  # per-step targets: one sample
        groups = [(np.arange(len(y)), "Regression")]
    else:
        groups = [(np.flatnonzero(y == label), cls) for label, cls in ((1, "Signal"), (0, "Background"))]
    used_parts, train_parts = [], []
    for idx, cls in groups:
        R, S = spec.n_train.get(cls, 0), spec.n_test.get(cls, 0)
        if spec.train_fraction.get(cls, 0.0):
            R, S = int(spec.train_fraction[cls] * len(idx)), 0
        n_train, n_test, test_start = split_sizes(R, S, (0, 0, len(idx)), cls)
        if n_train == 0:
            raise ValueError(f"class {cls} has no training events ({len(idx)} events in all); give more events")
        tr, te, _, _ = assign_split(len(idx), 0, 0, n_train, n_test, test_start, spec.split_mode, rng)
        used_parts.append(idx[np.concatenate([tr, te])])
        train_parts.append(np.isin(idx, idx[tr]))
    used = np.sort(np.concatenate(used_parts))
    train_set = np.zeros(len(y), bool)
    for (idx, _), flags in zip(groups, train_parts):
        train_set[idx[flags]] = True
    is_train = train_set[used]
    class_index = np.zeros(len(used), int) if y.ndim > 1 else np.where(y[used] == 1, 0, 1)
    return used, is_train, renormalise(weights[used], is_train, class_index, spec.norm_mode)
