"""Reading a tree in chunks and scoring each: :func:`open_tree`, :func:`read_chunks`,
:func:`score`, chained by :func:`score_chunks`."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from .inputs import InputSpec, _as_array, _listing, branches_to_read, read_inputs

__all__ = ["DEFAULT_STEP_SIZE", "MAX_CHUNK_VALUES", "check_step_size", "open_tree", "read_chunks", "score",
           "score_chunks", "score_name_for", "select_branches"]

#: Entries per chunk when none is given: 300 float32 inputs per event (the tutorial's 10 × 30)
#: make 12 MB per chunk, small next to the model and the libraries, large enough that the
#: per-chunk overheads do not show (docs/apply.md).
DEFAULT_STEP_SIZE = 10_000
#: Largest chunk, in input values (entries × values per event), before anything is allocated:
#: 2**28 float32 values are 1 GiB.
MAX_CHUNK_VALUES = 2**28
_TREE_CLASSES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")


def open_tree(path, tree: str | None = None):
    """The TTree (or RNTuple) ``tree`` of the ROOT file ``path`` (uproot); with ``tree=None`` the
    file's only one. Errors name the file and list the trees it holds."""
    import uproot

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path!r}; check the path (it is relative to {os.getcwd()!r})")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; pass the path of a .root file")
    try:
        f = uproot.open(path)
        classes = f.classnames(cycle=False)
    except Exception as exc:  # uproot raises many kinds of errors for content that is not ROOT
        detail = " ".join(str(exc).split())
        raise ValueError(
            f"{path!r} is not a ROOT file that uproot can open ({type(exc).__name__}: {detail}); "
            f"pass a .root file written by ROOT or uproot"
        ) from None
    trees = sorted(n for n, c in classes.items() if c in _TREE_CLASSES)  # TTrees and RNTuples
    listing = ", ".join(repr(t) for t in trees)
    if tree is None:
        if len(trees) != 1:
            raise ValueError(f"{path!r} holds the trees {listing}; pass --tree <one of them>" if trees else
                             f"{path!r} holds no TTree or RNTuple; pass a file with the tree to score")
        tree = trees[0]
    if tree not in trees:
        raise ValueError(f"tree {tree!r} not found in {path!r}; the file holds the trees: {listing}; pass --tree <one of them>")
    return f[tree]


def check_step_size(step_size, values_per_event: int) -> int:
    """``step_size`` (entries per chunk) checked: a positive integer whose chunk of
    ``values_per_event`` inputs stays under :data:`MAX_CHUNK_VALUES`."""
    if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
        raise ValueError(f"step_size must be a positive number of entries per chunk; got {step_size!r}")
    if int(step_size) * max(values_per_event, 1) > MAX_CHUNK_VALUES:
        raise ValueError(
            f"step_size={step_size} entries × {values_per_event} values per event exceeds "
            f"{MAX_CHUNK_VALUES} values (1 GiB of float32) per chunk; pass a step size up to "
            f"{max(MAX_CHUNK_VALUES // max(values_per_event, 1), 1)}"
        )
    return int(step_size)


def read_chunks(tree, branches: Sequence[str], step_size: int = DEFAULT_STEP_SIZE, entry_start=None,
                entry_stop=None) -> Iterator[tuple[int, object]]:
    """``(first entry, awkward record array of branches)`` per chunk of at most ``step_size`` entries."""
    wanted = set(branches)
    for chunk, report in tree.iterate(filter_name=wanted.__contains__, step_size=step_size,
                                      entry_start=entry_start, entry_stop=entry_stop, library="ak", report=True):
        yield int(report.tree_entry_start), chunk


# ─────────────────────────────────────────────────────────────────────────── 4. scores


def score(model, X, lengths=None) -> np.ndarray:
    """The model's score per event for ``X (n, *shape)``: signal probability ``(n,)`` for ``bce``,
    class probabilities ``(n, C)`` for ``softmax_ce``, the outputs for ``mse`` (``(n,)`` when one
    per event). ``lengths``: each ragged sequence's real steps (``predict_proba(X, lengths=...)``).
    Every call starts from a reset state (stateful layers)."""
    model.reset_states()
    if len(X) == 0:
        return np.zeros((0,), model.dtype)
    kw = {} if lengths is None else {"lengths": lengths}
    try:
        out = (model.predict_proba(X, **kw) if model.loss.name in ("bce", "softmax_ce")
               else model.decision_function(X, **kw))
    finally:
        model.reset_states()
    out = np.asarray(out)
    if out.ndim > 1 and out.size == len(X):
        out = out.reshape(len(X))
    elif out.ndim > 2:
        out = out.reshape(len(X), -1)
    return out


def score_name_for(path) -> str:
    """The score branch's default name: the model file's stem as a C++ identifier (TMVA's Reader
    names a method's output by its title)."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0] if path is not None else ""
    name = re.sub(r"\W", "_", stem, flags=re.ASCII) or "bptt"
    return "_" + name if name[0].isdigit() else name


def _copy_columns(chunk) -> dict:
    """A chunk's branches as the writer takes them: NumPy for numbers and fixed-size arrays, awkward
    for variable-length lists (written as counted branches)."""
    return {name: _as_array(chunk[name]) for name in chunk.fields}


def select_branches(patterns: Sequence[str], keys) -> list[str]:
    """Branch names of a tree (``keys``) matched by ``patterns`` (names or globs like ``"*_pt"``), in
    the tree's order; a pattern matching nothing is an error listing the branches."""
    keys = list(keys)
    chosen: list[str] = []
    for pattern in patterns:
        hits = [k for k in keys if fnmatch.fnmatchcase(k, pattern)]
        if not hits:
            raise ValueError(f"--branch {pattern!r} matches no branch of the tree; {_listing(keys)}")
        chosen += [h for h in hits if h not in chosen]
    return [k for k in keys if k in chosen]


def score_chunks(model, spec: InputSpec, tree, *, copy: Sequence[str] = (), score_name: str = "bptt",
                 step_size: int = DEFAULT_STEP_SIZE, entry_start=None, entry_stop=None) -> Iterator[tuple[int, dict]]:
    """``(first entry, {copied branch: values, …, score_name: scores})`` per chunk of ``tree``: the
    pieces above chained (read → inputs → scores), what :func:`apply_file` writes and
    :meth:`bptt.Reader.iterate_file` yields. ``copy`` are branch names of the tree."""
    step_size = check_step_size(step_size, spec.size * max(spec.shape[0], 1) if spec.jagged else spec.size)
    inputs = branches_to_read(spec, tree.keys())
    copy = list(copy)
    for first, chunk in read_chunks(tree, inputs + [b for b in copy if b not in inputs], step_size,
                                    entry_start, entry_stop):
        X, lengths = read_inputs(chunk, spec, model.dtype, first_entry=first, where=f"tree {tree.name}",
                                 max_bytes=MAX_CHUNK_VALUES * np.dtype(model.dtype).itemsize)
        columns = _copy_columns(chunk[copy]) if copy else {}
        columns[score_name] = score(model, X, lengths)
        yield first, columns
