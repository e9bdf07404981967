"""TMVA's ``DataLoader`` in Python: trees, variables, weights and cuts → :class:`bptt.data.events.Events`.

The methods and their meanings are TMVA's (``tmva/tmva/src/DataLoader.cxx``, ``DataSetFactory.cxx``),
named in snake_case with TMVA's CamelCase names as aliases, so a TMVA macro reads almost unchanged::

    loader = DataLoader("dataset")
    for i in range(10):
        loader.AddVariablesArray(f"vars_time{i}", 30)       # one array per time step → X (n, 10, 30)
    loader.AddSignalTree(("time_data.root", "sgn"), 1.0)
    loader.AddBackgroundTree(("time_data.root", "bkg"), 1.0)
    events = loader.PrepareTrainingAndTestTree("", "nTrain_Signal=800:nTrain_Background=800:SplitMode=Random:!V")

- Trees: an uproot tree, ``(file, tree name)``, ``"file.root:tree"`` or a PyROOT ``TTree`` read
  from a file. Several trees per class, each with a global weight; ``add_tree(tree, "Signal", 1.0,
  cut)`` keeps the entries of ``tree`` that pass ``cut`` (one tree with a class branch: add it
  twice with ``"label==1"`` and ``"label==0"``); ``tree_type`` "Training" / "Test" assigns a tree's
  events to one part, as TMVA's ``AddSignalTree(tree, w, "Training")``.
- Variables: ``add_variable(expr)`` (a branch or a TTreeFormula expression, ``label := expr``
  accepted; one number per event), ``add_variables_array(name, n)`` (the first ``n`` values of a
  fixed-size array or ``std::vector`` branch, TMVA's ``name[0] … name[n-1]``).
- Ragged sequences (bptt's own: TMVA has no ragged inputs): ``add_sequence(["track_pt",
  "track_eta"], max_length=None)`` reads jagged branches of the same per-event length
  (``std::vector<float>``, or a counter and counted arrays ``float pt[ntrk]``) as one event's steps:
  X ``(n, T, F)`` padded with zeros, ``Events.lengths`` the counts (:mod:`bptt.data.sequences`).
  ``set_step_target(branch)``: a jagged branch of the same length with one label or value per step
  gives ``y (n, T)`` (sequence labelling, per-step regression); with it, trees may be added as
  TMVA's regression trees (``add_regression_tree``: one sample, split as one class).
- Weights: global tree weight × the class's weight expression (``set_weight_expression``);
  negative weights are kept (training decides what to do with them: IgnoreNegWeightsInTraining).
- Cuts: the tree's cut (an entry passes when the cut is not 0, as ``TTree::CopyTree``), then the
  class cut of ``prepare_training_and_test_tree`` and ``add_cut`` (passes when ≥ 0.5, as
  DataSetFactory).
- A value that is NaN or infinite in an event that passes the cuts is an error naming the
  expression, the tree and the entry (TMVA: "How am I supposed to train a NaN or +-inf?!").
- Files are read in chunks (``step_size``); the size of the result is checked against
  ``max_bytes`` before anything is read.

The split options and the weight renormalisation are in :mod:`bptt.data.splitting`.
"""

from __future__ import annotations

import re

import numpy as np

from .events import Events
from .expressions import parse
from .inputs import MAX_ARRAY_SIZE
from .ragged import default_max_bytes
from .reading import _resolve, _tree_type, _TreeInput, read_events
from .splitting import ALL_CLASSES, CLASSES, parse_split_options

__all__ = ["DataLoader", "default_max_bytes"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


# ───────────────────────────────────────────────────────────────────────────── trees


class DataLoader:
    """TMVA's ``DataLoader`` for two classes, Signal and Background; see the module docstring.

    Args:
        name: the data set's name (TMVA's ``DataLoader("dataset")``), used in reports.
        step_size: entries (int) or bytes (str like ``"100 MB"``) read per chunk.
        max_bytes: the largest X to build (default: half of the physical memory).
        input_layout: ``(T, F)``, ``(F,)`` or TMVA's ``"T|F"``: the shape of one event's inputs.
            Default: T arrays of the same size F (one AddVariablesArray per time step) give
            ``(n, T, F)``; otherwise ``(n, number of inputs)``.
    """

    def __init__(self, name: str = "dataset", *, step_size="100 MB", max_bytes: int | None = None, input_layout=None):
        self.name = name
        self.step_size = step_size
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self.input_layout = input_layout
        self.variables: list[tuple[str, int]] = []  # (expression or branch, size)
        self.labels: list[str] = []
        self.trees: list[_TreeInput] = []
        self.weight_expressions = {c: "" for c in ALL_CLASSES}
        self.cuts = {c: "" for c in ALL_CLASSES}
        self.class_order: list[str] = []
        self.exact_arrays = False  # True: an array branch must hold exactly its size (the tutorial layout's rule)
        self.sequence: list[str] = []  # jagged per-step branches (add_sequence)
        self.max_length: int | None = None
        self.step_target: str = ""

    # ── variables
    def add_variable(self, expression: str, title: str = "", unit: str = "", type: str = "F", min: float = 0.0,
                     max: float = 0.0) -> None:
        """TMVA's ``AddVariable``: one number per event from a branch or expression (``label := expr``
        names it ``label``). ``title``, ``unit``, ``type``, ``min``, ``max`` are TMVA's labels (kept,
        not used: bptt reads every variable as a float)."""
        if not isinstance(expression, str):
            raise ValueError(f"AddVariable: expression must be a string; got {expression!r}")
        label, _, expr = expression.partition(":=") if ":=" in expression else ("", "", expression)
        expr = expr.strip()
        parse(expr)  # an error here names the position
        self._add(expr, 1, label.strip() or title or expr)

    def add_variables_array(self, expression: str, size: int, title: str = "", unit: str = "", type: str = "F",
                            min: float = 0.0, max: float = 0.0) -> None:
        """TMVA's ``AddVariablesArray``: the values ``name[0] … name[size-1]`` of an array branch
        (``float[N]`` or ``std::vector<float>``), one block of ``size`` inputs."""
        if not isinstance(expression, str) or not _NAME.fullmatch(expression.strip()):
            raise ValueError(f"AddVariablesArray: expression must be a branch name; got {expression!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_ARRAY_SIZE:
            raise ValueError(f"AddVariablesArray({expression!r}, size): size must be an integer in 1…{MAX_ARRAY_SIZE}; "
                             f"got {size!r}")
        name = expression.strip()
        if size == 1:
            self._add(f"{name}[0]", 1, title or f"{name}[0]")
        else:
            self._add(name, int(size), title or name)

    def add_sequence(self, branches, max_length: int | None = None) -> None:
        """Ragged sequences (bptt's own; TMVA has no ragged inputs): each event's steps are the values
        of the jagged ``branches`` (one name or a list, the features in order; repeatable), which
        must have the same length in every entry (the number of tracks, hits, …): X ``(n, T, F)``
        padded with zeros and ``Events.lengths`` = the lengths. ``max_length``: the padded T; longer
        sequences keep their first ``max_length`` steps (a warning says how many were cut). An
        empty event is refused (leave it out with the cut ``Length$(branch)>0``). Per-event
        variables (add_variable, add_variables_array) cannot be mixed with a sequence."""
        names = [branches] if isinstance(branches, str) else list(branches) if isinstance(branches, (list, tuple)) else None
        if not names or not all(isinstance(b, str) and _NAME.fullmatch(b.strip()) for b in names):
            raise ValueError(f"add_sequence: branches must be a branch name or a list of branch names; got {branches!r}")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer))
                                       or max_length < 1):
            raise ValueError(f"add_sequence: max_length must be a positive integer (the padded number of steps) or "
                             f"None (the longest sequence); got {max_length!r}")
        if self.variables:
            raise ValueError(
                f"add_sequence: the loader already has per-event variables ({', '.join(n for n, _ in self.variables)}); "
                f"a network reads one (n, T, F) array: give either per-event variables or a ragged sequence"
            )
        if self.sequence and max_length != self.max_length:
            raise ValueError(f"add_sequence: max_length={max_length!r} differs from the {self.max_length!r} given "
                             f"before; one sequence has one padded length")
        for name in (b.strip() for b in names):
            if name in self.sequence:
                raise ValueError(f"add_sequence: branch {name!r} is already in the sequence; add each branch once")
            self.sequence.append(name)
        self.max_length = None if max_length is None else int(max_length)

    def set_step_target(self, branch: str) -> None:
        """The per-step target of a ragged sequence: a jagged branch of the sequence's length, one
        label (0/1) or value per step → ``y (n, T)``, 0 at padded steps (bptt's own)."""
        if not isinstance(branch, str) or not _NAME.fullmatch(branch.strip()):
            raise ValueError(f"set_step_target: branch must be a branch name; got {branch!r}")
        self.step_target = branch.strip()

    def _add(self, name: str, size: int, label: str) -> None:
        if self.sequence:
            raise ValueError(
                f"variable {name!r}: the loader reads a ragged sequence ({', '.join(self.sequence)}); a network reads "
                f"one (n, T, F) array: give either per-event variables or a ragged sequence"
            )
        if any(n == name for n, _ in self.variables):
            raise ValueError(f"variable {name!r} is already added; add each variable once")
        self.variables.append((name, size))
        self.labels.append(label)

    # ── trees
    def add_tree(self, tree, class_name: str, weight: float = 1.0, cut: str = "", tree_type="") -> None:
        """TMVA's ``AddTree``: the entries of ``tree`` that pass ``cut`` are events of ``class_name``
        ("Signal" or "Background") with global weight ``weight``."""
        if class_name not in ALL_CLASSES:
            raise ValueError(f"AddTree: class_name must be 'Signal' or 'Background' (bptt trains two classes), or "
                             f"'Regression' (with set_step_target); got {class_name!r}")
        if self.trees and (class_name == "Regression") != (self.trees[0].class_name == "Regression"):
            raise ValueError(f"AddTree: class {class_name!r} after a {self.trees[0].class_name} tree; give either "
                             f"Signal and Background trees or Regression trees")
        weight = float(weight)
        if not np.isfinite(weight):
            raise ValueError(f"AddTree: weight must be a finite number; got {weight!r}")
        if cut:
            parse(str(cut))
        _resolve(tree)  # refuses what is not a tree now, not at prepare time
        kind = _tree_type(tree_type)
        same = [t for t in self.trees if t.class_name == class_name]
        if same and (same[0].tree_type == "") != (kind == ""):
            raise ValueError(
                f"AddTree: the first tree of class {class_name} has {'no' if not same[0].tree_type else 'a'} tree "
                f"type; give every tree of a class a type ('Training'/'Test') or none (TMVA's rule)"
            )
        if class_name not in self.class_order:
            self.class_order.append(class_name)
        self.trees.append(_TreeInput(tree, class_name, weight, str(cut or ""), kind))

    def add_signal_tree(self, tree, weight: float = 1.0, tree_type="") -> None:
        """TMVA's ``AddSignalTree``."""
        self.add_tree(tree, "Signal", weight, "", tree_type)

    def add_background_tree(self, tree, weight: float = 1.0, tree_type="") -> None:
        """TMVA's ``AddBackgroundTree``."""
        self.add_tree(tree, "Background", weight, "", tree_type)

    def add_regression_tree(self, tree, weight: float = 1.0, tree_type="") -> None:
        """TMVA's ``AddRegressionTree``: events of one sample, split as one class (nTrain_Regression, …);
        bptt reads their targets per step (:meth:`set_step_target`)."""
        self.add_tree(tree, "Regression", weight, "", tree_type)

    # ── weights and cuts
    def set_weight_expression(self, expression: str, class_name: str = "") -> None:
        """TMVA's ``SetWeightExpression``: each event's weight (times the tree's), for one class or both."""
        parse(expression)
        for c in self._classes(class_name, "SetWeightExpression"):
            self.weight_expressions[c] = expression

    def set_signal_weight_expression(self, expression: str) -> None:
        self.set_weight_expression(expression, "Signal")

    def set_background_weight_expression(self, expression: str) -> None:
        self.set_weight_expression(expression, "Background")

    def add_cut(self, cut: str, class_name: str = "") -> None:
        """TMVA's ``AddCut``: ``cut`` and the class's cut so far must both pass."""
        if not cut:
            return
        parse(str(cut))
        for c in self._classes(class_name, "AddCut"):
            self.cuts[c] = f"({self.cuts[c]}) && ({cut})" if self.cuts[c] else str(cut)

    def set_cut(self, cut: str, class_name: str = "") -> None:
        """TMVA's ``SetCut``: replaces the class's cut."""
        if cut:
            parse(str(cut))
        for c in self._classes(class_name, "SetCut"):
            self.cuts[c] = str(cut or "")

    def _classes(self, class_name: str, fn: str):
        if class_name in ("", None):
            return ALL_CLASSES
        if class_name not in ALL_CLASSES:
            raise ValueError(f"{fn}: class_name must be 'Signal', 'Background' or '' (both), or TMVA's 'Regression'; "
                             f"got {class_name!r}")
        return (class_name,)

    # ── the data set
    def prepare_training_and_test_tree(self, cut="", *args, input_layout=None) -> Events:
        """TMVA's ``PrepareTrainingAndTestTree``; reads the trees and returns the split events.

        The forms of TMVA: ``(cut, options)``, ``(signal_cut, background_cut, options)``,
        ``(cut, n_sig_train, n_bkg_train, n_sig_test, n_bkg_test[, options])`` and
        ``(cut, n_train, n_test)``. Options: :func:`bptt.data.splitting.parse_split_options`.
        """
        options = ""
        if len(args) == 1:
            options = args[0]
            self.add_cut(cut)
        elif len(args) == 2 and all(isinstance(a, str) for a in args):
            self.add_cut(cut, "Signal")
            self.add_cut(args[0], "Background")
            options = args[1]
        elif len(args) in (2, 4, 5) and all(isinstance(a, (int, np.integer)) for a in args[:4 if len(args) > 2 else 2]):
            self.add_cut(cut)
            n = list(args[:4]) if len(args) > 2 else [args[0], args[0], args[1], args[1]]
            options = (f"nTrain_Signal={n[0]}:nTrain_Background={n[1]}:nTest_Signal={n[2]}:nTest_Background={n[3]}"
                       + (":SplitMode=Random:!V" if len(args) == 2 else "") + (f":{args[4]}" if len(args) == 5 else ""))
        elif not args:
            self.add_cut(cut)
        else:
            raise ValueError("PrepareTrainingAndTestTree: expected (cut, options), (signal_cut, background_cut, options), "
                             "(cut, nSigTrain, nBkgTrain, nSigTest, nBkgTest[, options]) or (cut, nTrain, nTest); "
                             f"got {len(args) + 1} arguments")
        spec = parse_split_options(options)
        return read_events(self, spec, self.input_layout if input_layout is None else input_layout)

    def all_events(self, input_layout=None) -> Events:
        """Every event that passes the cuts, without a split (``is_train`` all False) and with the
        weights as read: the events to evaluate or score a trained network on."""
        return read_events(self, None, self.input_layout if input_layout is None else input_layout)

    # TMVA's names
    AddVariable = add_variable
    AddVariablesArray = add_variables_array
    AddTree = add_tree
    AddSignalTree = add_signal_tree
    AddBackgroundTree = add_background_tree
    AddRegressionTree = add_regression_tree
    SetWeightExpression = set_weight_expression
    SetSignalWeightExpression = set_signal_weight_expression
    SetBackgroundWeightExpression = set_background_weight_expression
    AddCut = add_cut
    SetCut = set_cut
    PrepareTrainingAndTestTree = prepare_training_and_test_tree
