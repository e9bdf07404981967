"""What a model reads and how one chunk of columns becomes its input array.

:func:`input_spec` says which variables (branches or TMVA expressions) a model reads and the shape
of one event; :func:`branches_to_read` which branches of a tree that takes; :func:`to_inputs`
turns columns (a dict of NumPy or awkward arrays, or an awkward record array: a chunk read by
uproot, one partition of a dask-awkward array) into the model's input ``(n, T, F)`` or ``(n, F)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["InputSpec", "branches_to_read", "check_fits", "event_shape", "input_spec", "to_inputs"]


# ──────────────────────────────────────────────────────────────── 1. what the model reads


@dataclass(frozen=True)
class InputSpec:
    """The inputs of a model, as read from a file.

    Attributes:
        variables: ``((name, size), …)`` in input order: branch (or expression) ``name`` gives
            ``size`` values per event; concatenated, they are one event's inputs in row-major order
            (:class:`bptt.data.events.Events`).
        shape: one event's shape as the model takes it: ``(T, F)``, or ``(F,)`` for a network
            whose first layer is dense.
        note: empty, or one line saying how the inputs were chosen (the tutorial-layout fallback).
    """

    variables: tuple[tuple[str, int], ...]
    shape: tuple[int, ...]
    note: str = ""

    @property
    def size(self) -> int:
        """Values per event."""
        return sum(s for _, s in self.variables)


def _layers(model):
    return [layer for layer in model.layers if type(layer).__name__ != "Dropout"]


def _features(model) -> tuple[int | None, str]:
    """(features per step the model's first layer reads, the layer's kind), or (None, kind)."""
    standardizer = getattr(model, "standardizer", None)
    first = _layers(model)[0]
    kind = type(first).__name__
    if standardizer is not None and getattr(standardizer, "n_features", None):
        return int(standardizer.n_features), kind
    if hasattr(first, "input_size"):
        return int(first.input_size), kind
    if kind == "Dense":
        return int(first.params["W"].shape[0]), kind
    return None, kind


def _steps(model) -> int | None:
    """The number of time steps the network's shape fixes (a recurrent layer returning sequences,
    flattened into a dense layer), or None when any number of steps fits."""
    width = None
    flat = False
    for layer in _layers(model):
        kind = type(layer).__name__
        if hasattr(layer, "hidden_size"):
            if not layer.return_sequences:
                return None
            width = int(layer.hidden_size) * (2 if getattr(layer, "bidirectional", False) else 1)
        elif kind == "Flatten" and width:
            flat = True
        elif kind == "Dense" and flat:
            n_in = int(layer.params["W"].shape[0])
            return n_in // width if n_in % width == 0 else None
        else:
            return None
    return None


def event_shape(model, size: int) -> tuple[int, ...]:
    """One event's shape for ``model`` given ``size`` values per event: ``(size // F, F)`` with F
    the features per step of the first layer, or ``(F,)`` for a dense first layer reading all of
    them. Raises ValueError (TMVA's terms) when ``size`` does not fit."""
    F, kind = _features(model)
    if F is None:
        return (size,)
    if size % F:
        raise ValueError(
            f"the model's inputs give {size} values per event but its first layer ({kind}) reads {F} "
            f"features per time step (InputLayout T|{F}); {size} is not a multiple of {F}: check the "
            f"model's inputs against the file"
        )
    if kind == "Dense" and size == F and getattr(model, "standardizer", None) is None:
        return (F,)
    return (size // F, F)


def check_fits(model, shape: tuple[int, ...]) -> None:
    """Run the network once on one event of zeros of ``shape``; its refusal becomes a one-line
    ValueError saying the layout does not fit (before any file is read or written)."""
    try:
        model.decision_function(np.zeros((1,) + tuple(shape), model.dtype))
    except ValueError as exc:
        raise ValueError(
            f"the model cannot read events of shape {tuple(shape)} (InputLayout "
            f"{'|'.join(map(str, shape))}): {exc}"
        ) from None
    finally:
        model.reset_states()


def input_spec(model, tree=None, prefix: str | None = None) -> InputSpec:
    """What ``model`` reads. With ``model.inputs`` (saved by ``bptt train``): those variables. Without
    them: TMVA's tutorial layout, branches ``{prefix}0 … {prefix}{T-1}`` (``prefix`` default
    ``"vars_time"``) of F values each, F and T from the model's layers where they fix them, else T
    from the consecutive branches ``tree`` holds. ``prefix`` with a model that has ``inputs`` is
    refused (the model file says what it reads)."""
    if model.inputs:
        if prefix is not None:
            raise ValueError(
                f"prefix={prefix!r} given, but the model file names its inputs ({_names(model.inputs)}); "
                f"drop the prefix (--prefix)"
            )
        variables = tuple((d["name"], int(d["size"])) for d in model.inputs)
        spec = InputSpec(variables, event_shape(model, sum(s for _, s in variables)))
        check_fits(model, spec.shape)
        return spec
    prefix = "vars_time" if prefix is None else prefix
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty branch-name prefix such as 'vars_time'; got {prefix!r}")
    F, kind = _features(model)
    T = _steps(model)
    if T is None:
        if tree is None:
            raise ValueError(
                "the model file does not name its inputs and its layers do not fix the number of time "
                "steps; give a tree (the file to read) or set model.inputs"
            )
        T = _consecutive(tree, prefix)
    if F is None or kind == "Dense":  # the per-branch width is the file's
        if tree is None:
            raise ValueError("the model file does not name its inputs; give a tree to read the sizes from")
        widths = [_branch_width(tree, f"{prefix}{j}") for j in range(T)]
        variables = tuple((f"{prefix}{j}", w) for j, w in enumerate(widths))
    else:
        variables = tuple((f"{prefix}{j}", F) for j in range(T))
    size = sum(s for _, s in variables)
    shape = event_shape(model, size)
    check_fits(model, shape)
    last = f" … {prefix}{T - 1}" if T > 1 else ""
    note = (
        f"the model file does not name its inputs (trained before bptt stored them, or in Python); "
        f"reading TMVA's tutorial layout: branches {prefix}0{last}, {variables[0][1]} values each "
        f"(--prefix to change)"
    )
    return InputSpec(variables, shape, note)


def _names(inputs) -> str:
    names = [d["name"] for d in inputs]
    return ", ".join(names[:5]) + (f", … ({len(names)} in all)" if len(names) > 5 else "")


def _consecutive(tree, prefix: str) -> int:
    keys = set(tree.keys())
    T = 0
    while f"{prefix}{T}" in keys:
        T += 1
    if T == 0:
        raise ValueError(
            f"the model file does not name its inputs and tree {tree.name!r} has no branch {prefix}0; "
            f"{_branch_listing(tree)}; pass --prefix <the per-time-step branches' prefix>"
        )
    return T


def _branch_width(tree, name: str) -> int:
    if name not in tree.keys():
        raise ValueError(f"tree {tree.name!r} has no branch {name}; {_branch_listing(tree)}")
    if tree.num_entries == 0:
        raise ValueError(f"tree {tree.name!r} has no entries to read the size of {name} from")
    arr = tree[name].array(library="ak", entry_stop=1)
    return 1 if arr.ndim == 1 else len(arr[0])


def _branch_listing(tree) -> str:
    return _listing(tree.keys())


def _expressions():
    """helper C's bptt.data.expressions (TMVA expressions of branches), when present."""
    try:
        from ..data import expressions
    except ImportError:  # before the expressions module: plain branch names only
        return None
    return expressions


def branches_to_read(spec: InputSpec, keys) -> list[str]:
    """The branches of a tree with branch names ``keys`` that ``spec``'s variables need, in order.
    A variable is a branch of that name, or an expression of branches; a missing one is an error
    naming it."""
    keys = list(keys)
    known = set(keys)
    out: list[str] = []
    for name, size in spec.variables:
        needed = [name] if name in known else _expression_branches(name)
        missing = [b for b in needed if b not in known]
        if not needed or missing:
            what = f"branch {name}" if needed == [name] or not needed else f"branch {', '.join(missing)} (for {name})"
            raise ValueError(
                f"the model reads {what} ({size} value{'s' if size > 1 else ''} per event) but the tree has "
                f"no such branch; {_listing(keys)}; score a file with the model's input variables"
            )
        out += [b for b in needed if b not in out]
    return out


def _expression_branches(name: str) -> list[str]:
    expr = _expressions()
    if expr is None:
        return [name]
    try:
        return sorted(expr.branches_of(name))
    except ValueError:
        return [name]


def _listing(keys) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:20]) + (f", … ({len(keys)} in all)" if len(keys) > 20 else "")
    return f"the tree's branches are: {shown or 'none'}"


# ────────────────────────────────────────────────────────── 3. columns → the model's input


def _fields(columns) -> list[str]:
    if hasattr(columns, "fields"):  # an awkward record array (a chunk, a dask-awkward partition)
        return list(columns.fields)
    if isinstance(columns, Mapping):
        return list(columns)
    raise ValueError(
        f"the inputs must be a dict of arrays (name → values) or an awkward record array; got {type(columns).__name__}"
    )


def _column(columns, name: str, first_entry: int = 0):
    """Variable ``name`` from ``columns``: the column of that name, else the expression of columns."""
    fields = _fields(columns)
    if name in fields:
        return columns[name]
    expr = _expressions()
    needed = None
    if expr is not None:
        try:
            needed = expr.branches_of(name)
        except ValueError:  # not an expression either
            needed = None
    if needed is None or not needed <= set(fields):
        shown = ", ".join(fields[:10]) + (", …" if len(fields) > 10 else "")
        raise ValueError(f"the inputs have no variable {name!r} (they have: {shown or 'none'}); give every variable the model reads")
    n = len(columns[fields[0]]) if fields else None
    return expr.evaluate(name, {b: columns[b] for b in needed}, n, first_entry=first_entry)


def _as_matrix(values, name: str, size: int, first_entry: int) -> np.ndarray:
    """One variable's values for n events as a float32 ``(n, size)`` array, checked."""
    import awkward as ak

    if isinstance(values, ak.Array):
        arr = values
    elif isinstance(values, (list, tuple)):
        arr = ak.Array(list(values))  # lists of lists may be ragged (std::vector values)
    elif np.ndim(values):
        arr = ak.Array(np.asarray(values))
    else:
        raise ValueError(f"variable {name} must hold one entry per event; got a single number (for one event, give all "
                         f"variables as single values)")
    if arr.ndim == 1:
        matrix = ak.to_numpy(arr).reshape(-1, 1)
    elif arr.ndim == 2:
        content = arr.type.content
        if isinstance(content, ak.types.RegularType) and content.size != size:  # float[k]: k in every entry
            raise ValueError(
                f"{name} has {content.size} value{'s' if content.size != 1 else ''} per event; the model reads {size}; "
                f"score a file whose {name} has {size} values per event"
            )
        counts = np.asarray(ak.num(arr, axis=1))
        bad = np.flatnonzero(counts != size)
        if len(bad):
            raise ValueError(
                f"{name} has {int(counts[bad[0]])} values at entry {first_entry + int(bad[0])}; the model reads "
                f"{size}; score a file whose {name} has {size} values per event"
            )
        matrix = ak.to_numpy(ak.to_regular(arr, axis=1)) if len(arr) else np.zeros((0, size))
    else:
        raise ValueError(f"{name} has nested type {arr.type}; expected a number or a list of numbers per event")
    if matrix.shape[1] != size:
        raise ValueError(
            f"{name} has {matrix.shape[1]} value{'s' if matrix.shape[1] > 1 else ''} per event; the model reads "
            f"{size}; score a file whose {name} has {size} values per event"
        )
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{name} holds {matrix.dtype} values; expected numbers")
    return matrix


def to_inputs(columns, spec: InputSpec, dtype=np.float32, first_entry: int = 0) -> np.ndarray:
    """The model's input ``(n, *spec.shape)`` from ``columns``: a dict of NumPy or awkward arrays,
    or an awkward record array, one entry per event (``first_entry`` numbers the first one in
    messages). Each variable must give its size per event; NaN or Inf is refused naming the entry."""
    mats = [_as_matrix(_column(columns, name, first_entry), name, size, first_entry) for name, size in spec.variables]
    n = {len(m) for m in mats}
    if len(n) > 1:
        raise ValueError(f"the variables have different numbers of events: {dict((nm, len(m)) for (nm, _), m in zip(spec.variables, mats))}")
    X = np.concatenate(mats, axis=1).astype(dtype, copy=False) if len(mats) > 1 else mats[0].astype(dtype)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        edges = np.cumsum([s for _, s in spec.variables])
        name = spec.variables[int(np.searchsorted(edges, col, side="right"))][0]
        raise ValueError(
            f"{name} is {'NaN' if np.isnan(X[row, col]) else 'Inf'} at entry {first_entry + row}; the model "
            f"scores finite inputs only; select the events (a cut) or fix the file"
        )
    return X.reshape((len(X),) + tuple(spec.shape))
