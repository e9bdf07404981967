"""A :class:`bptt.data.loader.DataLoader` from command-line words: what ``bptt train``,
``evaluate`` and ``trace`` accept (``--tree``, ``--class-branch``, ``--signal-tree``, …).

- Trees are named ``TREE``, ``FILE:TREE`` (another file than DATA) and may carry a global weight
  after a comma: ``sgn``, ``sig_b,0.5``, ``more.root:sgn,2``.
- ``--tree`` (trees holding both classes) needs ``--class-branch NAME`` (signal ``NAME==1``,
  background ``NAME==0``; other values are refused, listed) or both class cuts
  ``--signal-cut``/``--background-cut``; with ``--signal-tree``/``--background-tree`` the class cuts
  are extra cuts.
- ``--variables`` lists expressions separated by commas outside parentheses (``pt,abs(eta),pow(x,2)``);
  ``--variables-array NAME:N`` is ``AddVariablesArray(NAME, N)``; the inputs are the
  ``--variables`` in order, then the arrays in order. Without either: TMVA's RNN
  tutorial layout, the branches ``PREFIX0, PREFIX1, …`` of the first signal tree, each an array of
  the size its first entry has.
- ``--sequence A,B,C`` (instead of the variables): ragged sequences from jagged branches of the same
  per-event length, one feature each per step (``DataLoader.add_sequence``); ``--max-length N`` pads
  them to N steps (longer ones keep their first N, with a warning); ``--step-target BRANCH``: a
  jagged branch of the same length gives one target per step (``y (n, T)``). With ``--step-target``,
  ``--tree`` needs no class: the trees are TMVA's regression sample (``AddRegressionTree``), split
  as one class (``nTrain_Regression``, …).

Example::

    >>> from bptt.data.sources import split_expressions, tree_spec
    >>> split_expressions("pt, abs(eta) ,pow(x,2)")
    ['pt', 'abs(eta)', 'pow(x,2)']
    >>> tree_spec("sig_b,0.5", "data.root"), tree_spec("other.root:sgn", "data.root")
    ((('data.root', 'sig_b'), 0.5), (('other.root', 'sgn'), 1.0))
"""

from __future__ import annotations

import os
import re

import numpy as np

from .loader import DataLoader

__all__ = ["loader_for_file", "split_expressions", "tree_spec"]

_WEIGHT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def split_expressions(text: str, option: str = "--variables") -> list[str]:
    """Comma-separated expressions, commas inside parentheses or brackets kept."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    if any(not part for part in out):
        raise ValueError(f"{option} {text!r}: an empty name between commas; list expressions as a,b,c")
    return out


def tree_spec(text: str, default_file: str, option: str = "--signal-tree"):
    """``((file, tree), weight)`` from ``[FILE:]TREE[,WEIGHT]``."""
    name, _, weight_text = text.partition(",")
    weight = 1.0
    if weight_text:
        if not _WEIGHT.fullmatch(weight_text.strip()) or not np.isfinite(float(weight_text)):
            raise ValueError(f"{option} {text!r}: the weight after the comma must be a number, e.g. {name},0.5")
        weight = float(weight_text)
    path, tree = default_file, name.strip()
    if ":" in tree:
        path, tree = tree.rsplit(":", 1)
    if not tree or "/" in tree:
        raise ValueError(f"{option} {text!r}: give a tree name, as TREE, FILE:TREE or TREE,WEIGHT")
    return (path, tree), weight


def _class_values(path: str, tree_name: str, branch: str) -> set:
    from .root import _get_tree, _open

    with _open("--class-branch", path) as f:
        tree = _get_tree("--class-branch", f, path, tree_name, "--tree")
        if branch not in tree.keys():
            raise ValueError(f"--class-branch {branch}: tree {tree_name!r} has no such branch; its branches are: "
                             f"{', '.join(sorted(tree.keys())[:40])}")
        values: set = set()
        for chunk in tree.iterate([branch], step_size="50 MB", library="np"):
            values |= set(np.unique(chunk[branch]).tolist())
            if len(values) > 20:
                break
    return values


def _step_variables(path: str, tree_name: str, prefix: str) -> list[tuple[str, int]]:
    """TMVA's tutorial layout: PREFIX0, PREFIX1, … of the tree, each with its first entry's size."""
    import awkward as ak

    from .root import _get_tree, _open, _step_branches

    with _open("--prefix", path) as f:
        tree = _get_tree("--signal-tree", f, path, tree_name, "--signal-tree")
        names = _step_branches("--prefix", tree, tree_name, prefix, None)
        if tree.num_entries == 0:
            raise ValueError(f"tree {tree_name!r} has no entries; it must hold at least one event")
        first = tree[names[0]].array(entry_stop=1, library="ak")
        size = int(ak.num(first, axis=1)[0]) if first.ndim > 1 else 1
    return [(name, size) for name in names]


def _sequence_options(loader: DataLoader, sequence, max_length, step_target, variables, variables_arrays) -> None:
    if not sequence:
        unused = [opt for opt, value in (("--max-length", max_length), ("--step-target", step_target)) if value]
        if unused:
            raise ValueError(f"{' and '.join(unused)} {'are' if len(unused) > 1 else 'is'} for ragged sequences; "
                             f"give the jagged branches with --sequence A,B,C")
        return
    if variables or variables_arrays:
        raise ValueError("give either --sequence (ragged per-step branches) or --variables/--variables-array "
                         "(per-event inputs), not both: a network reads one (n, T, F) array")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"--max-length must be a positive number of steps; got {max_length!r}")
    loader.add_sequence(split_expressions(sequence, "--sequence"), max_length=max_length)
    if step_target:
        loader.set_step_target(step_target)


def loader_for_file(path: str, *, trees=(), signal_trees=(), background_trees=(), class_branch=None,
                    signal_cut="", background_cut="", variables="", variables_arrays=(), weight="", cut="",
                    prefix="vars_time", sequence="", max_length=None, step_target="") -> DataLoader:
    """The DataLoader the command-line options describe, DATA = ``path`` (see the module docstring)."""
    signal_trees, background_trees, trees = list(signal_trees or ()), list(background_trees or ()), list(trees or ())
    if trees and (signal_trees or background_trees):
        raise ValueError("give either --tree (trees holding both classes) or --signal-tree/--background-tree, not both")
    regression = bool(trees and step_target and sequence and not (class_branch or signal_cut or background_cut))
    if trees and not regression:
        if class_branch and (signal_cut or background_cut):
            raise ValueError("--class-branch sets both class cuts; drop --signal-cut/--background-cut or --class-branch")
        if not class_branch and not (signal_cut and background_cut):
            raise ValueError("--tree holds both classes: say which events are which with --class-branch NAME "
                             "(1 signal, 0 background) or with both --signal-cut and --background-cut")
    elif class_branch:
        raise ValueError("--class-branch needs --tree (the trees holding both classes)")
    if not trees:
        signal_trees = signal_trees or ["sgn"]
        background_trees = background_trees or ["bkg"]
    loader = DataLoader(os.path.basename(path))
    _sequence_options(loader, sequence, max_length, step_target, variables, variables_arrays)
    if variables:
        for expr in split_expressions(variables):
            loader.add_variable(expr)
    for item in variables_arrays or ():
        name, sep, size = item.rpartition(":")
        if not sep or not size.strip().isascii() or not size.strip().isdigit():
            raise ValueError(f"--variables-array {item!r}: write NAME:N, e.g. vars_time0:30")
        loader.add_variables_array(name.strip(), int(size))
    if not loader.variables and not loader.sequence:
        (first_path, first_tree), _ = tree_spec((signal_trees or trees)[0], path)
        for name, size in _step_variables(first_path, first_tree, prefix):
            loader.add_variables_array(name, size)
        loader.exact_arrays = True  # sizes taken from the first entry: every entry must have them
    for text in trees:
        (file, name), w = tree_spec(text, path, "--tree")
        if regression:  # per-step targets, no classes: TMVA's regression sample
            loader.add_tree((file, name), "Regression", w)
        elif class_branch:
            found = _class_values(file, name, class_branch)
            if not found <= {0, 1}:
                shown = ", ".join(str(v) for v in sorted(found)[:20])
                raise ValueError(f"--class-branch {class_branch}: tree {name!r} holds the values {shown}; bptt reads "
                                 f"1 as signal and 0 as background; for other values give --signal-cut and --background-cut")
            loader.add_tree((file, name), "Signal", w, f"{class_branch}==1")
            loader.add_tree((file, name), "Background", w, f"{class_branch}==0")
        else:
            loader.add_tree((file, name), "Signal", w, signal_cut)
            loader.add_tree((file, name), "Background", w, background_cut)
    for option, names, cls in (("--signal-tree", signal_trees, "Signal"), ("--background-tree", background_trees, "Background")):
        for text in names:
            (file, name), w = tree_spec(text, path, option)
            loader.add_tree((file, name), cls, w)
    if not trees:
        loader.add_cut(signal_cut, "Signal")
        loader.add_cut(background_cut, "Background")
    if signal_trees and background_trees:
        same = {tree_spec(s, path)[0] for s in signal_trees} & {tree_spec(b, path)[0] for b in background_trees}
        if same and not (signal_cut or background_cut):
            file, name = sorted(same)[0]
            raise ValueError(
                f"tree {name!r} is both a signal and a background tree, so every event would be in both classes; "
                f"give one tree per class, or use --tree {name} with --class-branch or --signal-cut/--background-cut"
            )
    if weight:
        loader.set_weight_expression(weight)
    if cut:
        loader.add_cut(cut)
    return loader
