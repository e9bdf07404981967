"""Ragged sequences from jagged ROOT branches: one event's steps are the values of several jagged
branches of the same per-event length (``std::vector<float>`` branches, or a counter ``ntrk`` with
counted arrays ``float pt[ntrk]``), the lengths are the counts.

:meth:`bptt.data.loader.DataLoader.add_sequence` (``bptt train --sequence``) and ``bptt apply``
(a model whose ``inputs`` are marked ``"jagged"``) read them with these functions:

- :func:`check_sequence_branches`: before anything is read, every branch must be jagged (one list
  per entry), not a number or a fixed-size array;
- :func:`sequence_chunk`: the selected entries of one chunk as a record of lists, checked: every
  branch (and a per-step target branch) has the same length as the first in every entry, no entry
  is empty, every value is finite; errors name the tree, the entry, the branch, the expected and
  the received;
- :func:`pad_chunks`: the chunks joined and padded (:func:`bptt.data.ragged.pad_ragged`'s rules:
  zeros after each sequence's last step, ``max_length`` truncating the longer ones with a warning,
  the padded size checked against ``max_bytes`` before it is allocated).

Example::

    >>> import awkward as ak, numpy as np
    >>> from bptt.data.sequences import pad_chunks, sequence_chunk
    >>> cols = {"pt": ak.Array([[5.0, 3.0], [2.0]]), "eta": ak.Array([[0.1, -0.2], [1.0]])}
    >>> part = sequence_chunk(cols, ["pt", "eta"], None, np.arange(2), "tree t")
    >>> X, y, lengths = pad_chunks([part], 2, False)
    >>> X.shape, lengths.tolist(), y
    ((2, 2, 2), [2, 1], None)
"""

from __future__ import annotations

import numpy as np

from .ragged import _pad

__all__ = ["check_sequence_branches", "sequence_chunk", "pad_chunks", "TARGET"]

#: The field name of the per-step target in a chunk's record (the features are "0", "1", …).
TARGET = "target"


def _kind(branch) -> str:
    """'jagged', or the description of what a non-jagged branch holds (for messages)."""
    interp = type(branch.interpretation).__name__
    if interp == "AsJagged":
        return "jagged"
    return f"{branch.typename} ({'one number per entry' if '[' not in branch.typename else 'a fixed-size array'})"


def check_sequence_branches(fn: str, tree, label: str, names, target: str | None = None) -> None:
    """Every branch of ``names`` (and ``target``) of ``tree`` is jagged: a list of numbers per entry."""
    for name in list(names) + ([target] if target else []):
        kind = _kind(tree[name])
        if kind != "jagged":
            what = "the step target" if name == target else "a sequence's branch"
            advice = (f"use --variables-array {name}:N / AddVariablesArray for a fixed-size array" if "[" in kind
                      else f"use --variables {name} / AddVariable for a per-event number")
            raise ValueError(
                f"{fn}: tree {label}: branch {name} is {what} but holds {kind}; expected one list per entry of the "
                f"event's length (std::vector<float>, or a counted array float {name}[n]); {advice}"
            )


def _counts(column) -> np.ndarray:
    import awkward as ak

    return np.asarray(ak.num(column, axis=1), dtype=np.int64)


def sequence_chunk(columns, names, target, entries, where: str, empty_advice: str | None = None):
    """The entries ``entries`` (their numbers, for messages) of a chunk's ``columns`` as an awkward
    record of lists: fields ``"0" … "F-1"`` (the branches ``names`` in order) and ``TARGET`` (the
    per-step ``target`` branch, when given). ``empty_advice``: what the message on an empty event
    tells to do (default: the cut that leaves such events out)."""
    import awkward as ak

    fields = {}
    first = names[0]
    counts = None
    for j, name in enumerate(list(names) + ([target] if target else [])):
        column = columns[name]
        if not type(column).__module__.startswith("awkward") or column.ndim != 2:
            raise ValueError(f"{where}: branch {name} does not hold one list of numbers per entry (type "
                             f"{getattr(column, 'type', np.shape(column))}); a sequence's branches are jagged")
        c = _counts(column)
        if counts is None:
            counts = c
            empty = np.flatnonzero(c == 0)
            if empty.size:
                k = int(empty[0])
                raise ValueError(
                    f"{where}: entry {int(entries[k])} has no steps (branch {first} is empty there"
                    + (f"; {empty.size} such entries in this chunk" if empty.size > 1 else "")
                    + "); the recurrent layers need at least one step per event: "
                    + (empty_advice or f"leave such events out with the cut 'Length$({first})>0' (--cut)")
                )
        elif not np.array_equal(c, counts):
            k = int(np.argmax(c != counts))
            what = "the step target" if name == target and j == len(names) else "branch"
            raise ValueError(
                f"{where}: {what} {name} has {int(c[k])} values in entry {int(entries[k])} but {first} has "
                f"{int(counts[k])}; every branch of a sequence must have one value per step (the same length "
                f"as {first} in every entry)"
            )
        try:
            flat = ak.to_numpy(ak.flatten(column, axis=1))
        except (ValueError, TypeError):
            raise ValueError(f"{where}: branch {name} holds {column.type}; expected numbers per step") from None
        if flat.dtype.kind not in "biuf":
            raise ValueError(f"{where}: branch {name} holds {flat.dtype} values; expected numbers")
        bad = ~np.isfinite(flat) if flat.dtype.kind == "f" else np.zeros(len(flat), bool)
        if bad.any():
            k = int(np.argmax(bad))
            row = int(np.searchsorted(np.cumsum(c), k, side="right"))
            step = k - int(np.cumsum(c)[row] - c[row])
            raise ValueError(f"{where}: branch {name} is {flat[k]} at step {step} of entry {int(entries[row])}, an "
                             f"event that passes the cuts (TMVA stops on a NaN or inf input too); add a cut that "
                             f"removes it")
        fields[TARGET if j == len(names) else str(j)] = ak.values_astype(column, np.float32)
    return ak.zip(fields, depth_limit=1)


def n_values(part) -> int:
    """Values held by a chunk of :func:`sequence_chunk` (for the running size check)."""
    import awkward as ak

    if len(part) == 0:
        return 0
    return int(ak.sum(ak.num(part["0"], axis=1))) * len(part.fields)


def pad_chunks(parts, n_features: int, has_target: bool, max_length: int | None = None, max_bytes: int | None = None,
               fn: str = "sequence", warn: bool = True):
    """``(X (n, T, F) float32, y (n, T) float32 or None, lengths (n,) int64)`` of the chunks of
    :func:`sequence_chunk` in order; T = ``max_length`` or the longest sequence."""
    import awkward as ak

    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError(f"{fn}: no events to pad")
    joined = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    names = [str(j) for j in range(n_features)] + ([TARGET] if has_target else [])
    counts = _counts(joined["0"])
    flats = [ak.to_numpy(ak.flatten(joined[name], axis=1)) for name in names]
    P, lengths = _pad(fn, names, flats, counts, max_length, np.dtype(np.float32), "post", max_bytes, warn)
    if has_target:
        return np.ascontiguousarray(P[..., :n_features]), np.ascontiguousarray(P[..., n_features]), lengths
    return P, None, lengths
