"""What a model reads and how one chunk of columns becomes its input array.

:func:`input_spec` says which variables (branches or TMVA expressions) a model reads and the shape
of one event; :func:`branches_to_read` which branches of a tree that takes; :func:`to_inputs`
turns columns (a dict of NumPy or awkward arrays, or an awkward record array: a chunk read by
uproot, one partition of a dask-awkward array) into the model's input ``(n, T, F)`` or ``(n, F)``.

A model trained on ragged sequences (``Sequential.inputs`` entries marked ``"jagged": true``: the
per-step branches of ``bptt train --sequence``) reads each event's steps from those jagged
branches; :func:`read_inputs` returns the padded chunk and its ``lengths``, which the scores take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

import re

from ..data.inputs import check_variables, compute_inputs, input_branches
from ..data.sequences import pad_chunks, sequence_chunk

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

__all__ = ["InputSpec", "branches_to_read", "check_fits", "event_shape", "input_spec", "read_inputs", "to_inputs"]


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
        exact: an array branch must hold exactly its size in every entry (the tutorial layout, as
            training reads it); otherwise its first ``size`` values are read, as TMVA's
            ``AddVariablesArray`` does (:func:`bptt.data.inputs.compute_inputs`).
        jagged: the variables are a ragged sequence's jagged branches, one value each per step;
            ``shape`` is then ``(T, F)`` with T the padded length the network fixes (a flattened
            sequence) or 0 (each chunk is padded to its longest sequence).
        max_length: a ragged sequence's length limit in training (longer sequences keep their
            first ``max_length`` steps, as training kept them), or None.
    """

    variables: tuple[tuple[str, int], ...]
    shape: tuple[int, ...]
    note: str = ""
    exact: bool = False
    jagged: bool = False
    max_length: int | None = None

    @property
    def size(self) -> int:
        """Values per event."""
        return sum(s for _, s in self.variables)


def _layers(model):
    return [layer for layer in model.layers if type(layer).__name__ != "Dropout"]


def _trained_shape(model) -> tuple[int, ...] | None:
    """The event shape the model's input transformation was fitted on (a VarTransform keeps it)."""
    shape = getattr(getattr(model, "standardizer", None), "shape_", None)
    return tuple(int(s) for s in shape) if shape else None


def _features(model) -> tuple[int | None, str]:
    """(features per step the model's first layer reads, the layer's kind), or (None, kind)."""
    standardizer = getattr(model, "standardizer", None)
    first = _layers(model)[0]
    kind = type(first).__name__
    if _trained_shape(model):
        return _trained_shape(model)[-1], kind
    if standardizer is not None and getattr(standardizer, "n_features", None):
        return int(standardizer.n_features), kind
    if hasattr(first, "input_size"):
        return int(first.input_size), kind
    if kind == "Dense":
        return int(first.params["W"].shape[0]), kind
    return None, kind


def _steps(model) -> int | None:
    """The number of time steps the network's shape fixes (a recurrent layer returning sequences,
    flattened into a dense layer, or the shape an input transformation was fitted on), or None when
    any number of steps fits."""
    if _trained_shape(model) and len(_trained_shape(model)) == 2:
        return _trained_shape(model)[0]
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
    them; the shape an input transformation (VarTransform) was fitted on when the model has one.
    Raises ValueError (TMVA's terms) when ``size`` does not fit."""
    trained = _trained_shape(model)
    if trained:
        if int(np.prod(trained)) != size:
            raise ValueError(
                f"the model was trained on events of shape {trained} (InputLayout {'|'.join(map(str, trained))}, "
                f"{int(np.prod(trained))} values) but its inputs give {size} values per event; check the model's "
                f"inputs against the file"
            )
        return trained
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
        if any(d.get("jagged") for d in model.inputs):
            return _jagged_spec(model)
        variables = tuple(check_variables([(d["name"], d["size"]) for d in model.inputs], "the model's inputs"))
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
    return InputSpec(variables, shape, note, exact=True)


def _jagged_spec(model) -> InputSpec:
    """The spec of a model whose inputs are a ragged sequence's jagged branches."""
    inputs = model.inputs
    flat = [d["name"] for d in inputs if not d.get("jagged")]
    if flat:
        raise ValueError(f"the model's inputs mix jagged branches and per-event variables ({', '.join(flat)}); "
                         f"a ragged sequence's inputs are all jagged: check the model file")
    wide = [f"{d['name']} (size {d['size']})" for d in inputs if d["size"] != 1]
    limits = {d.get("max_length") for d in inputs}
    if wide or len(limits) > 1:
        raise ValueError(f"the model's jagged inputs must have size 1 (one value per step) and one max_length; got "
                         f"{wide or sorted(limits, key=str)}: check the model file")
    names = tuple((d["name"], 1) for d in inputs)
    for name, _ in names:
        if not _NAME.fullmatch(name):
            raise ValueError(f"the model's jagged input {name!r} must be a branch name")
    F, kind = _features(model)
    if F is not None and kind != "Dense" and F != len(names):
        raise ValueError(f"the model reads {len(names)} jagged branches per step ({_names(inputs)}) but its first "
                         f"layer ({kind}) reads {F} features per step: check the model file")
    T = _steps(model) or 0
    max_length = limits.pop()
    check_fits(model, (T or 1, len(names)))
    return InputSpec(names, (T, len(names)), jagged=True, max_length=max_length)


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


def branches_to_read(spec: InputSpec, keys) -> list[str]:
    """The branches of a tree with branch names ``keys`` that ``spec``'s variables read (array
    branches, and the branches of expressions), in the tree's order; a missing one is an error
    naming it and the variable that needs it."""
    keys = list(keys)
    known = set(keys)
    for name, size in spec.variables:
        missing = sorted(input_branches([(name, size)]) - known)
        if missing:
            what = f"branch {missing[0]}" + ("" if missing == [name] else f" (for {name})")
            raise ValueError(
                f"the model reads {what} ({size} value{'s' if size > 1 else ''} per event) but the tree has "
                f"no such branch; {_listing(keys)}; score a file with the model's input variables"
            )
    needed = input_branches(spec.variables)
    return [k for k in keys if k in needed]


def _listing(keys) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:20]) + (f", … ({len(keys)} in all)" if len(keys) > 20 else "")
    return f"the tree's branches are: {shown or 'none'}"


# ────────────────────────────────────────────────────────── 3. columns → the model's input


def _as_dict(columns) -> dict:
    """``{name: column}`` from a dict (lists become arrays: NumPy, or awkward when ragged) or an awkward
    record array (a chunk read by uproot, a dask-awkward partition)."""
    if isinstance(columns, Mapping):
        return {k: _as_array(v) for k, v in columns.items()}
    if getattr(columns, "fields", None):
        return {f: _as_array(columns[f]) for f in columns.fields}
    raise ValueError(
        f"the inputs must be a dict of arrays (name → values) or an awkward record array; got {type(columns).__name__}"
    )


def _as_array(values):
    """A column as NumPy where it is regular (numbers, ``float[N]``), awkward where it is ragged
    (``std::vector`` per event), as :mod:`bptt.data.reading` hands columns to ``compute_inputs``."""
    import awkward as ak

    if isinstance(values, (list, tuple)):
        try:
            return np.asarray(values, dtype=np.float64)
        except (ValueError, TypeError):  # ragged lists: one std::vector per event
            values = ak.Array(list(values))
    if isinstance(values, ak.Array):
        try:
            return ak.to_numpy(values)
        except (ValueError, TypeError):  # variable-length lists stay awkward
            return values
    return values


def to_inputs(columns, spec: InputSpec, dtype=np.float32, first_entry: int = 0, where: str = "inputs") -> np.ndarray:
    """The model's input ``(n, *spec.shape)`` from ``columns``: a dict of NumPy or awkward arrays,
    or an awkward record array, one entry per event (``first_entry`` numbers the first one and
    ``where`` names the source in messages). The variables are read as training read them
    (:func:`bptt.data.inputs.compute_inputs`): an array's values, an expression's number; a
    shorter array, a missing column, NaN or Inf is refused naming the variable and the entry.
    A ragged sequence's spec needs the lengths too: :func:`read_inputs`."""
    if spec.jagged:
        raise ValueError("the model reads ragged sequences (jagged branches), whose padded steps need their lengths: "
                         "use bptt.apply.read_inputs(columns, spec), which returns (X, lengths)")
    X = compute_inputs(_as_dict(columns), spec.variables, first_entry=first_entry, where=where, exact=spec.exact)
    return X.astype(dtype, copy=False).reshape((len(X),) + tuple(spec.shape))


def read_inputs(columns, spec: InputSpec, dtype=np.float32, first_entry: int = 0, where: str = "inputs",
                max_bytes: int | None = None):
    """``(X, lengths)``: :func:`to_inputs`'s array and, for a ragged sequence's spec, each event's
    number of steps (None otherwise). A ragged chunk is padded to the network's fixed T, else to
    its longest sequence (at most the training's ``max_length``, whose rule cuts longer ones as
    training did); an event longer than a fixed T without that rule, an empty event, branches of
    different lengths or NaN/Inf are refused naming the entry. ``max_bytes`` bounds the padded
    chunk (checked before it is allocated)."""
    if not spec.jagged:
        return to_inputs(columns, spec, dtype, first_entry, where), None
    import awkward as ak

    cols = _as_dict(columns)
    names = [name for name, _ in spec.variables]
    for name in names:
        if name not in cols:
            raise ValueError(f"{where}: no branch {name!r} (a jagged branch of the model's ragged sequence)")
        column = cols[name]
        if isinstance(column, np.ndarray) and column.ndim == 2:
            cols[name] = column = ak.from_numpy(column)  # every event of the chunk with the same length
        if not type(column).__module__.startswith("awkward") or column.ndim != 2:
            raise ValueError(f"{where}: branch {name} holds {'one number' if np.ndim(column) == 1 else np.shape(column)} "
                             f"per event; the model reads it as a ragged sequence's jagged branch: one list of "
                             f"numbers per event (std::vector<float> or float {name}[n])")
    n = len(cols[names[0]])
    part = sequence_chunk(cols, names, None, np.arange(first_entry, first_entry + n), where,
                          f"the model cannot score it; score a copy of the tree holding the events with "
                          f"Length$({names[0]})>0")
    if n == 0:
        return np.zeros((0, max(spec.shape[0], 1), len(names)), dtype), np.zeros(0, np.int64)
    counts = np.asarray(ak.num(part["0"], axis=1))
    T = spec.shape[0]
    if T and spec.max_length is None and counts.max() > T:
        k = int(np.argmax(counts > T))
        raise ValueError(f"{where}: entry {first_entry + k} has {int(counts[k])} steps but the model reads at most {T} "
                         f"(its layers fix {T} steps, the longest sequence of its training); score events of at most "
                         f"{T} steps, or train with --max-length")
    if not T:
        T = int(counts.max()) if spec.max_length is None else min(int(counts.max()), spec.max_length)
    X, _, lengths = pad_chunks([part], len(names), False, T, max_bytes, where, warn=False)
    return X.astype(dtype, copy=False), lengths
