"""Reading the trees of a :class:`bptt.data.loader.DataLoader` into :class:`bptt.data.events.Events`.

Per class, tree after tree, in chunks: the branches the variables, weights and cuts need are read
with uproot, the tree's cut (``!= 0``) and the class cut (``>= 0.5``) select entries, the inputs
(:func:`bptt.data.inputs.compute_inputs`) and the weights (tree weight × weight expression) of the
selected entries are kept. Then each class is split as TMVA splits it and the training weights are
renormalised (:mod:`bptt.data.splitting`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from .events import Events
from .expressions import ExpressionError, parse
from .inputs import compute_inputs, input_branches
from .sequences import check_sequence_branches, n_values, pad_chunks, sequence_chunk
from .splitting import CLASSES, assign_split, renormalise, split_sizes

__all__ = ["read_events"]


@dataclass
class _TreeInput:
    source: object  # uproot tree, (path, name) or "path:name"
    class_name: str
    weight: float
    cut: str
    tree_type: str  # "" undefined, "TRAINING", "TESTING"


def _tree_type(value) -> str:
    if value is None:
        return ""
    text = str(value).strip().lower()
    if text in ("", "kmaxtreetype") or ("train" in text and "test" in text):
        return ""
    if "train" in text:
        return "TRAINING"
    if "test" in text:
        return "TESTING"
    raise ValueError(f"tree_type must be 'Training', 'Test' or '' (both); got {value!r}")


def _resolve(source):
    """(path or None, tree name, uproot tree or None) for any accepted tree description."""
    if hasattr(source, "num_entries") and hasattr(source, "iterate"):
        path = getattr(getattr(source, "file", None), "file_path", None)
        return path, source.name, source
    if hasattr(source, "GetName") and hasattr(source, "GetCurrentFile"):  # a PyROOT TTree
        f = source.GetCurrentFile()
        if not f:
            raise ValueError(f"the PyROOT tree {source.GetName()!r} is not in a file; write it to a file first "
                             f"(bptt reads trees with uproot)")
        return str(f.GetName()), str(source.GetName()), None
    if isinstance(source, (tuple, list)) and len(source) == 2:
        path, name = source
        return os.fspath(path), str(name), None
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if ":" in text and not os.path.exists(text):
            path, name = text.rsplit(":", 1)
            return path, name, None
        raise ValueError(f"tree {text!r}: name the tree as 'file.root:tree' or (file, tree)")
    raise ValueError(
        f"a tree must be an uproot tree, (file, tree name), 'file.root:tree' or a PyROOT TTree; got {type(source).__name__}"
    )


# ───────────────────────────────────────────────────────────────────────────── opening


@dataclass
class _Opened:
    spec: _TreeInput
    tree: object
    label: str  # "file.root:tree"
    needed: list
    n_entries: int


def _open_all(loader, fn: str) -> tuple[list[_Opened], dict]:
    from .root import _get_tree, _open

    files: dict = {}
    opened = []
    variable_branches = input_branches(loader.variables) | set(loader.sequence) | ({loader.step_target} - {""})
    for spec in loader.trees:
        path, name, tree = _resolve(spec.source)
        if tree is None:
            if path not in files:
                files[path] = _open(fn, path)
            tree = _get_tree(fn, files[path], path, name, "the tree name")
        label = f"{os.path.basename(path) if path else '<uproot tree>'}:{name}"
        exprs = {"cut": spec.cut, "class cut": loader.cuts[spec.class_name],
                 "weight expression": loader.weight_expressions[spec.class_name]}
        needed = set(variable_branches)
        for text in exprs.values():
            if text:
                needed |= parse(text).branches
        have = set(tree.keys())
        missing = sorted(needed - have)
        if missing:
            users = [f"{what} {text!r}" for what, text in exprs.items() if text and parse(text).branches & set(missing)]
            users += [f"variable {v!r}" for v, size in loader.variables if input_branches([(v, size)]) & set(missing)]
            users += [f"the sequence ({', '.join(loader.sequence)})" for _ in [0] if set(loader.sequence) & set(missing)]
            users += ["the step target" for _ in [0] if loader.step_target in missing]
            listing = ", ".join(sorted(have)[:40]) + (f", … ({len(have)} in all)" if len(have) > 40 else "")
            raise ValueError(
                f"{fn}: tree {label} has no branch {', '.join(missing)} (read by {'; '.join(users)}); its branches "
                f"are: {listing or 'none'}"
            )
        n = int(tree.num_entries)
        if n == 0:
            raise ValueError(f"{fn}: tree {label} of class {spec.class_name} has no entries (TMVA stops on an empty "
                             f"tree too); remove it")
        if not needed:
            raise ValueError(f"{fn}: the variables read no branch; add variables that read the tree")
        if loader.sequence:
            check_sequence_branches(fn, tree, label, loader.sequence, loader.step_target or None)
        opened.append(_Opened(spec, tree, label, sorted(needed), n))
    return opened, files


def _columns(arrays, names) -> dict:
    import awkward as ak

    out = {}
    for name in names:
        col = arrays[name]
        try:
            out[name] = ak.to_numpy(col)
        except (ValueError, TypeError):  # variable-length lists stay awkward
            out[name] = col
    return out


def _subset(columns: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in columns.items()}


def _one_per_event(fn, what, text, values, label, entries):
    if type(values).__module__.startswith("awkward") or getattr(values, "ndim", 1) != 1:
        raise ValueError(f"{fn}: {what} {text!r} gives several values per event in tree {label}; it must give one "
                         f"(use Sum$(...), Length$(...) or an index such as v[0])")
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"{fn}: {what} {text!r} is {values[k]} in entry {int(entries[k])} of tree {label} (division by zero or "
            f"a function outside its domain; TMVA stops on a NaN or inf too); change it or add a cut"
        )
    return np.asarray(values, dtype=np.float64)


def _read_tree(fn: str, loader, t: _Opened):
    """(X float32 (m, inputs), weights float64 (m,)) of the entries of one tree that pass the cuts."""
    spec = t.spec
    cut, class_cut = spec.cut, loader.cuts[spec.class_name]
    weight_expr = loader.weight_expressions[spec.class_name]
    xs, ws = [], []
    held = 0  # values of the ragged sequences read so far (their compact size, checked against max_bytes)
    for arrays, report in t.tree.iterate(filter_name=lambda name: name in t.needed, step_size=loader.step_size,
                                          library="ak", report=True):
        start, stop = int(report.tree_entry_start), int(report.tree_entry_stop)
        entries = np.arange(start, stop)
        cols = _columns(arrays, t.needed)
        keep = np.ones(stop - start, bool)
        try:
            for text, passes in ((cut, lambda v: v != 0.0), (class_cut, lambda v: v >= 0.5)):
                if text:
                    v = _one_per_event(fn, "cut", text, parse(text).evaluate(cols, stop - start, check_finite=False),
                                       t.label, entries)
                    keep &= passes(v)
            idx = np.flatnonzero(keep)
            sub = _subset(cols, idx)
            if loader.sequence:
                x = sequence_chunk(sub, loader.sequence, loader.step_target or None, entries[idx],
                                   f"{fn}: tree {t.label}")
                held += n_values(x)
                if held * 4 > loader.max_bytes:
                    raise ValueError(f"{fn}: the sequences of tree {t.label} hold more than {held} values, more than the "
                                     f"limit of {loader.max_bytes / 2**30:.1f} GiB (max_bytes); select fewer entries "
                                     f"with a cut, or raise max_bytes")
            else:
                x = compute_inputs(sub, loader.variables, entries=entries[idx], where=f"{fn}: tree {t.label}",
                                   exact=getattr(loader, "exact_arrays", False))
            w = np.full(len(idx), spec.weight, np.float64)
            if weight_expr:
                w = w * _one_per_event(fn, "weight expression", weight_expr,
                                       parse(weight_expr).evaluate(sub, len(idx), check_finite=False), t.label, entries[idx])
        except ExpressionError as exc:
            raise ValueError(f"{fn}: tree {t.label}: {exc}") from None
        xs.append(x)
        ws.append(w)
    return _concat(xs), np.concatenate(ws)


def _concat(parts):
    """Chunks joined: NumPy rows, or the awkward records of ragged sequences."""
    if parts and type(parts[0]).__module__.startswith("awkward"):
        import awkward as ak

        return ak.concatenate(parts) if len(parts) > 1 else parts[0]
    return np.concatenate(parts)


# ───────────────────────────────────────────────────────────────────────────── layout and split


def _layout(fn: str, variables, input_layout) -> tuple[int, ...]:
    """The shape of one event's inputs."""
    total = sum(size for _, size in variables)
    if input_layout is None:
        sizes = {size for _, size in variables}
        if len(variables) > 1 and len(sizes) == 1 and sizes != {1}:
            return (len(variables), sizes.pop())
        if len(variables) == 1 and variables[0][1] > 1:
            return (1, variables[0][1])
        return (total,)
    if isinstance(input_layout, str):
        parts = input_layout.replace("InputLayout=", "").split("|")
        if not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ValueError(f"{fn}: input_layout {input_layout!r} must be TMVA's 'T|F' (or 'F'), whole numbers")
        dims = [int(p) for p in parts]
    else:
        dims = [int(d) for d in input_layout]
    while len(dims) > 2 and dims[0] == 1:  # TMVA's depth|height|width with depth 1
        dims = dims[1:]
    if not 1 <= len(dims) <= 2 or min(dims) < 1:
        raise ValueError(f"{fn}: input_layout must be (T, F) or (F,) with positive sizes; got {input_layout!r}")
    if int(np.prod(dims)) != total:
        shown = "|".join(str(d) for d in dims)
        raise ValueError(
            f"{fn}: InputLayout {shown} says {int(np.prod(dims))} inputs per event; the variables give {total} "
            f"({', '.join(f'{n}: {s}' for n, s in variables)}); make them agree"
        )
    return tuple(dims)


def _check_size(fn: str, opened, variables, max_bytes: int) -> None:
    n = sum(t.n_entries for t in opened)
    width = sum(size for _, size in variables)
    need = n * width * 4
    if need > max_bytes:
        raise ValueError(
            f"{fn}: the trees hold {n} entries of {width} inputs, {need / 2**30:.1f} GiB as float32, more than the "
            f"limit of {max_bytes / 2**30:.1f} GiB (max_bytes); select fewer entries with a cut, or raise max_bytes"
        )


def _classes_of(fn: str, loader) -> tuple[str, ...]:
    """The classes the loader's trees must cover: Signal and Background, or TMVA's Regression sample."""
    regression = any(t.class_name == "Regression" for t in loader.trees)
    needed = ("Regression",) if regression else CLASSES
    for cls in needed:
        if not any(t.class_name == cls for t in loader.trees):
            raise ValueError(f"{fn}: no tree of class {cls}; add one with Add{cls}Tree or AddTree(tree, {cls!r})")
    if not loader.variables and not loader.sequence:
        raise ValueError(f"{fn}: no input variables; add them with AddVariable, AddVariablesArray or add_sequence")
    if loader.step_target and not loader.sequence:
        raise ValueError(f"{fn}: a step target ({loader.step_target}) labels the steps of a ragged sequence; add the "
                         f"sequence's branches with add_sequence (--sequence)")
    if regression and not loader.step_target:
        raise ValueError(f"{fn}: regression trees need a target; bptt reads per-step targets: set_step_target(branch) "
                         f"(--step-target)")
    return needed


def _sequence_shape(fn: str, loader, input_layout) -> tuple[int, ...]:
    """A ragged sequence's layout ``(max_length or 0, F)``; a given InputLayout ``T|F`` or ``F`` must agree."""
    F, T = len(loader.sequence), loader.max_length
    if input_layout is not None:
        text = str(input_layout).replace("InputLayout=", "") if isinstance(input_layout, str) else None
        dims = text.split("|") if text is not None else list(input_layout)
        try:
            dims = [int(d) for d in dims]
        except (TypeError, ValueError):
            raise ValueError(f"{fn}: input_layout {input_layout!r} must be TMVA's 'T|F' (or 'F'), whole numbers") from None
        if dims[-1] != F or len(dims) > 2 or (len(dims) == 2 and dims[0] != T):
            raise ValueError(
                f"{fn}: input_layout {input_layout!r} does not fit the ragged sequence of {F} features per step "
                f"({', '.join(loader.sequence)}) padded to {T if T else 'the longest sequence'}; give "
                f"'{F}', or '<T>|{F}' with add_sequence(..., max_length=<T>)"
            )
    return (T or 0, F)


def _finish(fn: str, loader, xs, shape):
    """``(X, per-step y or None, lengths or None)`` of the events' inputs in order."""
    xs = [x for x in xs if len(x)]
    if loader.sequence:
        return pad_chunks(xs, len(loader.sequence), bool(loader.step_target), loader.max_length, loader.max_bytes, fn)
    return np.concatenate(xs).reshape((-1, *shape)), None, None


def _events(fn, loader, opened, xs, y, weights, is_train, shape) -> Events:
    X, y_steps, lengths = _finish(fn, loader, xs, shape)
    return Events(X=X, y=y if y_steps is None else y_steps, weights=weights, is_train=is_train,
                  variables=list(loader.variables), source=", ".join(f"{t.label} ({t.spec.class_name})" for t in opened),
                  lengths=lengths, sequence=list(loader.sequence), max_length=loader.max_length)


def read_events(loader, spec, input_layout) -> Events:
    """The loader's trees read, cut, split per ``spec`` (:class:`SplitOptions`) and renormalised;
    ``spec`` None: every event that passes the cuts, none for training, the weights as read."""
    fn = "PrepareTrainingAndTestTree"
    _classes_of(fn, loader)
    shape = _sequence_shape(fn, loader, input_layout) if loader.sequence else _layout(fn, loader.variables, input_layout)
    opened, files = _open_all(loader, fn)
    try:
        _check_size(fn, opened, loader.variables, loader.max_bytes)
        parts = {cls: {"": [], "TRAINING": [], "TESTING": []} for cls in loader.class_order}
        for t in opened:
            parts[t.spec.class_name][t.spec.tree_type].append(_read_tree(fn, loader, t))
    finally:
        for f in files.values():
            f.close()
    if spec is None:  # every event, no split, the weights as read
        order = [cls for cls in loader.class_order]
        x_all = [x for cls in order for k in parts[cls] for x, _ in parts[cls][k]]
        w_all = [w for cls in order for k in parts[cls] for _, w in parts[cls][k]]
        y_all = [np.full(len(w), 1.0 if cls == "Signal" else 0.0, np.float32)
                 for cls in order for k in parts[cls] for _, w in parts[cls][k]]
        y = np.concatenate(y_all)
        return _events(fn, loader, opened, x_all, y, np.concatenate(w_all), np.zeros(len(y), bool), shape)
    rng = np.random.default_rng(None if spec.split_seed == 0 else spec.split_seed)
    xs, ws, trains, labels, order = [], [], [], [], []
    counts = {}
    width = sum(s for _, s in loader.variables)
    for cls in loader.class_order:
        pools = {k: (_concat([x for x, _ in v]) if v else np.zeros((0, width), np.float32),
                     np.concatenate([w for _, w in v]) if v else np.zeros(0))
                 for k, v in parts[cls].items()}
        u, r, s = (len(pools[k][1]) for k in ("", "TRAINING", "TESTING"))
        R, S = spec.n_train.get(cls, 0), spec.n_test.get(cls, 0)
        if spec.train_fraction.get(cls, 0.0):
            R, S = int(spec.train_fraction[cls] * (u + r + s)), 0
        n_train, n_test, test_start = split_sizes(R, S, (r, s, u), cls)
        if n_train == 0:
            raise ValueError(f"{fn}: class {cls} has no training events ({u + r + s} events pass the cuts); "
                             f"loosen the cuts or add events")
        tr_u, te_u, keep_r, keep_s = assign_split(u, r, s, n_train, n_test, test_start, spec.split_mode, rng)
        # the class's used events, in file order: undefined ones, then training trees', then test trees'
        used_u = np.sort(np.concatenate([tr_u, te_u]))
        is_train_u = np.isin(used_u, tr_u)
        xs += [pools[""][0][used_u], pools["TRAINING"][0][keep_r], pools["TESTING"][0][keep_s]]
        ws += [pools[""][1][used_u], pools["TRAINING"][1][keep_r], pools["TESTING"][1][keep_s]]
        trains += [is_train_u, np.ones(len(keep_r), bool), np.zeros(len(keep_s), bool)]
        n_used = len(used_u) + len(keep_r) + len(keep_s)
        labels.append(np.full(n_used, 1.0 if cls == "Signal" else 0.0, np.float32))
        order.append(np.full(n_used, loader.class_order.index(cls)))
        counts[cls] = (int(is_train_u.sum()) + len(keep_r), len(te_u) + len(keep_s), u + r + s)
    is_train = np.concatenate(trains)
    weights = renormalise(np.concatenate(ws), is_train, np.concatenate(order), spec.norm_mode,
                          class_names=tuple(loader.class_order))
    events = _events(fn, loader, opened, xs, np.concatenate(labels), weights, is_train, shape)
    if spec.verbose:
        for cls, (n_tr, n_te, n_all) in counts.items():
            print(f"{loader.name}: {cls}: {n_tr} training and {n_te} test events of {n_all} after the cuts", file=sys.stderr)
    return events
