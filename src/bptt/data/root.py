"""ROOT files in TMVA's time-series layout, read and written with uproot (no ROOT installation needed).

The layout of ``TMVA_RNN_Classification.C``: one tree per class (``sgn`` and ``bkg``), and per
time step ``j`` a branch ``vars_time{j}`` that holds that step's features for every event. TMVA's
own macro writes each branch as ``std::vector<float>``; :func:`write_tmva_root` writes fixed-size
``float[F]`` array branches, which TMVA (``DataLoader::AddVariablesArray``) reads as well.

:func:`read_tmva_root` accepts both: fixed-size arrays, and variable-length branches
(``std::vector<float>`` or counted ``float[n]`` arrays), which are converted with awkward to a
regular ``(n, F)`` array as long as every entry has the same length. (uproot cannot write
``std::vector<float>``; the variable-length path is tested with counted ``float[n]`` branches, which
uproot writes from jagged awkward arrays and reads through the same jagged ``AsJagged``
interpretation as ``std::vector<float>``.)

Example::

    >>> import os, tempfile
    >>> import numpy as np
    >>> from bptt.data.root import read_tmva_root, write_tmva_root
    >>> sig = np.ones((3, 4, 5), np.float32); bkg = np.zeros((2, 4, 5), np.float32)
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.root")
    >>> _ = write_tmva_root(path, sig, bkg)
    >>> X, y = read_tmva_root(path)
    >>> X.shape, y.tolist()
    ((5, 4, 5), [1.0, 1.0, 1.0, 0.0, 0.0])
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .. import _validation as v
from .._files import atomic_path

__all__ = ["write_tmva_root", "read_tmva_root"]

_TREE_CLASSES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")


def _check_name(fn: str, name: str, value) -> str:
    if not isinstance(value, str) or not value or "/" in value or ":" in value:
        raise ValueError(f"{fn}: {name} must be a non-empty name without '/' or ':'; got {value!r}")
    return value


def write_tmva_root(
    path: str | os.PathLike,
    signal,
    background,
    signal_tree: str = "sgn",
    background_tree: str = "bkg",
    branch_prefix: str = "vars_time",
) -> str:
    """Write signal and background sequences as a ROOT file in TMVA's layout; return the path.

    Args:
        path: the ``.root`` file to create or replace (atomically: a failure leaves an existing
            file untouched).
        signal, background: float arrays of shape ``(n_sig, T, F)`` and ``(n_bkg, T, F)``; stored
            as float32.
        signal_tree, background_tree: tree names (TMVA's tutorial uses ``sgn`` and ``bkg``).
        branch_prefix: branch ``{branch_prefix}{j}`` holds time step ``j`` as ``float[F]``.
    """
    fn = "write_tmva_root"
    signal = v.float_array(fn, "signal", signal, 3, "(n_sig, T, F)")
    background = v.float_array(fn, "background", background, 3, "(n_bkg, T, F)")
    if signal.shape[1:] != background.shape[1:]:
        raise ValueError(
            f"{fn}: signal and background must have the same (T, F) = (time steps, features); got "
            f"{signal.shape[1:]} for signal and {background.shape[1:]} for background"
        )
    _check_name(fn, "signal_tree", signal_tree)
    _check_name(fn, "background_tree", background_tree)
    _check_name(fn, "branch_prefix", branch_prefix)
    if signal_tree == background_tree:
        raise ValueError(
            f"{fn}: signal_tree and background_tree must differ; both are {signal_tree!r}"
        )
    import uproot

    _, T, F = signal.shape
    names = [f"{branch_prefix}{j}" for j in range(T)]
    branch_types = {name: np.dtype((np.float32, (F,))) for name in names}
    with atomic_path(path, suffix=".root") as tmp:
        with uproot.recreate(tmp) as f:
            for tree_name, X in ((signal_tree, signal), (background_tree, background)):
                tree = f.mktree(tree_name, branch_types, title=tree_name)
                tree.extend({name: np.ascontiguousarray(X[:, j, :], dtype=np.float32) for j, name in enumerate(names)})
    return os.fspath(path)


def _open(fn: str, path):
    import uproot

    p = Path(os.fspath(path))
    if not p.exists():
        raise ValueError(f"{fn}: no such file: {str(p)!r}; check the path (it is relative to {os.getcwd()!r})")
    if p.is_dir():
        raise ValueError(f"{fn}: {str(p)!r} is a directory; pass the path of a .root file")
    try:
        return uproot.open(p)  # a Path is never split at ':' into file and object names
    except Exception as exc:  # uproot raises various errors for non-ROOT content
        detail = " ".join(str(exc).split())
        raise ValueError(
            f"{fn}: {str(p)!r} is not a ROOT file that uproot can open ({type(exc).__name__}: {detail}); "
            f"pass a .root file written by ROOT or uproot"
        ) from None


def _trees_in(f) -> list[str]:
    return sorted(
        {name for name, cls in f.classnames(cycle=False).items() if cls in _TREE_CLASSES}
    )


def _get_tree(fn: str, f, path, name: str, role: str):
    trees = _trees_in(f)
    if name not in trees:
        listing = ", ".join(repr(t) for t in trees) if trees else "none"
        raise ValueError(
            f"{fn}: tree {name!r} not found in {os.fspath(path)!r}; the file holds the trees: {listing}; "
            f"pass {role}=<one of them>"
        )
    return f[name]


def _step_branches(fn: str, tree, tree_name: str, prefix: str, n_steps) -> list[str]:
    keys = list(tree.keys())
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    steps = {int(m.group(1)) for k in keys if (m := pattern.fullmatch(k)) and str(int(m.group(1))) == m.group(1)}
    if not steps:
        shown = ", ".join(keys[:30]) + (f", … ({len(keys)} in all)" if len(keys) > 30 else "")
        raise ValueError(
            f"{fn}: tree {tree_name!r} has no branch named {prefix}0, {prefix}1, …; its branches are: "
            f"{shown or 'none'}; pass branch_prefix=<the common prefix of the per-time-step branches>"
        )
    found = 0
    while found in steps:
        found += 1
    if found == 0:
        raise ValueError(
            f"{fn}: tree {tree_name!r} has branches {prefix}{min(steps)}… but no {prefix}0; time steps "
            f"must be numbered from 0"
        )
    if n_steps is None:
        n_steps = found
    elif n_steps > found:
        raise ValueError(
            f"{fn}: n_steps={n_steps} but tree {tree_name!r} has only {found} consecutive time-step "
            f"branches ({prefix}0 … {prefix}{found - 1}); pass n_steps <= {found} or n_steps=None"
        )
    return [f"{prefix}{j}" for j in range(n_steps)]


def _branch_matrix(fn: str, tree, tree_name: str, branch: str) -> np.ndarray:
    """One branch as a regular float32 ``(n, F)`` array (fixed-size, jagged and scalar branches)."""
    import awkward as ak

    try:
        arr = tree[branch].array(library="ak")
    except Exception as exc:
        raise ValueError(
            f"{fn}: cannot read branch {branch} of tree {tree_name!r} ({type(exc).__name__}: {exc}); "
            f"every time-step branch must hold numbers (float[F], std::vector<float> or float)"
        ) from None
    n = len(arr)
    if arr.ndim == 1:  # one number per entry: a single feature
        matrix = ak.to_numpy(arr).reshape(n, 1)
    elif arr.ndim == 2:
        counts = np.asarray(ak.num(arr, axis=1))
        if n and (counts != counts[0]).any():
            bad = int(np.argmax(counts != counts[0]))
            raise ValueError(
                f"{fn}: branch {branch} of tree {tree_name!r} has rows of different lengths "
                f"({int(counts[0])} and {int(counts[bad])}) at entry {bad}; every time step must have "
                f"the same number of features"
            )
        width = int(counts[0]) if n else 0
        matrix = ak.to_numpy(ak.to_regular(arr, axis=1)).reshape(n, width)
    else:
        raise ValueError(
            f"{fn}: branch {branch} of tree {tree_name!r} has nested type {arr.type}; expected one list "
            f"of numbers per entry (float[F] or std::vector<float>)"
        )
    if matrix.dtype.kind not in "biuf":
        raise ValueError(
            f"{fn}: branch {branch} of tree {tree_name!r} holds {matrix.dtype} values; expected numbers"
        )
    return matrix.astype(np.float32, copy=False)


def _read_tree(fn: str, f, path, tree_name: str, role: str, prefix: str, n_steps) -> np.ndarray:
    tree = _get_tree(fn, f, path, tree_name, role)
    branches = _step_branches(fn, tree, tree_name, prefix, n_steps)
    n_entries = int(tree.num_entries)
    if n_entries == 0:
        raise ValueError(f"{fn}: tree {tree_name!r} has no entries; it must hold at least one event")
    mats = []
    for branch in branches:
        m = _branch_matrix(fn, tree, tree_name, branch)
        if mats and m.shape[1] != mats[0].shape[1]:
            raise ValueError(
                f"{fn}: branch {branch} of tree {tree_name!r} has {m.shape[1]} features per entry but "
                f"{branches[0]} has {mats[0].shape[1]}; every time step must have the same number of features"
            )
        if m.shape[1] == 0:
            raise ValueError(f"{fn}: branch {branch} of tree {tree_name!r} is empty in every entry; it holds no features")
        mats.append(m)
    return np.stack(mats, axis=1)


def read_tmva_root(
    path: str | os.PathLike,
    signal_tree: str = "sgn",
    background_tree: str = "bkg",
    branch_prefix: str = "vars_time",
    n_steps: int | None = None,
):
    """Read a TMVA time-series ROOT file into ``(X, y)``.

    Args:
        path: the ``.root`` file.
        signal_tree, background_tree: names of the two trees.
        branch_prefix: time step ``j`` is branch ``{branch_prefix}{j}``; each may be a fixed-size
            array, a ``std::vector<float>`` (or other variable-length) branch with the same length in
            every entry, or a scalar (one feature).
        n_steps: read exactly the steps ``0 … n_steps-1``; None reads every consecutive step found.

    Returns:
        ``X`` float32 ``(n_sig + n_bkg, T, F)`` with the signal events first, and ``y`` float32
        ``(n_sig + n_bkg,)`` with 1 for signal and 0 for background.

    Raises:
        ValueError: with what to do, for a missing file, a file that is not ROOT, a missing tree
            (lists the trees in the file), no branch with the prefix (lists the tree's branches),
            ``n_steps`` larger than the steps found, rows of different lengths in a branch, or
            feature/step counts that differ between time steps or between the two trees.
    """
    fn = "read_tmva_root"
    _check_name(fn, "signal_tree", signal_tree)
    _check_name(fn, "background_tree", background_tree)
    if signal_tree == background_tree:
        raise ValueError(
            f"{fn}: signal_tree and background_tree are both {signal_tree!r}: every event would be in both "
            f"classes; give one tree per class"
        )
    if not isinstance(branch_prefix, str) or not branch_prefix:
        raise ValueError(f"{fn}: branch_prefix must be a non-empty string; got {branch_prefix!r}")
    if n_steps is not None and (isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1):
        raise ValueError(f"{fn}: n_steps must be a positive integer or None (all steps found); got {n_steps!r}")
    f = _open(fn, path)
    with f:
        sig = _read_tree(fn, f, path, signal_tree, "signal_tree", branch_prefix, n_steps)
        bkg = _read_tree(fn, f, path, background_tree, "background_tree", branch_prefix, n_steps)
    if sig.shape[1] != bkg.shape[1]:
        raise ValueError(
            f"{fn}: tree {background_tree!r} has {bkg.shape[1]} time steps but tree {signal_tree!r} has "
            f"{sig.shape[1]}; pass n_steps=<the smaller number> to read the steps both have"
        )
    if sig.shape[2] != bkg.shape[2]:
        raise ValueError(
            f"{fn}: tree {background_tree!r} has {bkg.shape[2]} features per time step but tree "
            f"{signal_tree!r} has {sig.shape[2]}; both classes must have the same features"
        )
    X = np.concatenate([sig, bkg], axis=0)
    y = np.concatenate([np.ones(len(sig), np.float32), np.zeros(len(bkg), np.float32)])
    return X, y
