"""Ragged sequences → a padded batch ``X (n, T, F)`` and ``lengths (n,)`` for the recurrent layers.

Real sequences come in different lengths per event (the tracks of a jet, the hits of a track).
:func:`pad_ragged` takes them as a list of ``(len_i, F)`` arrays or as awkward arrays (what uproot
reads from jagged ROOT branches) and returns the padded batch every ``lengths=`` argument of bptt
takes: step ``t`` of sequence ``i`` is real when ``t < lengths[i]``, the padded steps hold 0.

Rules (chosen once, here):

- Padding is at the end ("post"): the kernels read steps ``0 … lengths[i]-1``.
- ``max_length``: the padded length T. Longer sequences are truncated with a warning saying how
  many, as Keras's ``pad_sequences(maxlen=..., truncating=...)`` does: ``truncating="post"`` (the
  default) keeps the first ``max_length`` steps (a list sorted by importance, such as tracks by
  transverse momentum, keeps its leading entries), ``"pre"`` the last ones. Without
  ``max_length``, T is the longest sequence.
- A sequence without steps is refused with a message listing the events: the recurrent layers need
  ``1 <= length``. Leave such events out before padding (``keep = ak.num(seqs, axis=1) > 0``), or,
  reading a ROOT file, with the cut ``Length$(branch)>0``.
- Values must be finite (the error names the event, the step and the field); the padded array's
  size ``n·T·F`` is checked against ``max_bytes`` before it is allocated.

Example::

    >>> import numpy as np
    >>> from bptt.data.arrays import pad_ragged
    >>> X, lengths = pad_ragged([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0]])])
    >>> X.shape, lengths.tolist()
    ((2, 2, 2), [2, 1])
    >>> X[1].tolist()
    [[5.0, 6.0], [0.0, 0.0]]
    >>> import awkward as ak
    >>> tracks = ak.Array([[{"pt": 3.0, "eta": 0.1}], [{"pt": 2.0, "eta": -1.0}, {"pt": 1.5, "eta": 0.4}]])
    >>> X, lengths = pad_ragged(tracks, fields=["eta", "pt"])
    >>> X[1].tolist(), lengths.tolist()
    ([[-1.0, 2.0], [0.4000000059604645, 1.5]], [1, 2])
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping

import numpy as np

__all__ = ["pad_ragged", "default_max_bytes", "check_lengths"]


def default_max_bytes() -> int:
    """Half of the machine's physical memory (4 GiB when it cannot be read): the largest data set read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4 << 30


def _is_ak(x) -> bool:
    return type(x).__module__.startswith("awkward")


def _events(idx) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:10])
    return shown + (f", … ({len(idx)} in all)" if len(idx) > 10 else "")


def check_lengths(fn: str, lengths, n: int, T: int | None = None) -> np.ndarray:
    """``lengths`` as int64 ``(n,)`` with ``1 <= lengths[i]`` (and ``<= T`` when T is given)."""
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{fn}: lengths must be integers (the number of real steps of each sequence); got dtype "
                         f"{arr.dtype}" + ("; convert it with lengths.astype(np.int64)" if arr.dtype.kind == "f" else ""))
    if arr.shape != (n,):
        raise ValueError(f"{fn}: lengths must have shape ({n},), one length per sequence; got shape {arr.shape}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(arr < 1) if T is None else np.flatnonzero((arr < 1) | (arr > T))
    if bad.size:
        limit = "1 <= length" if T is None else f"1 <= length <= {T} (the padded length T)"
        raise ValueError(f"{fn}: lengths must satisfy {limit}; sequence {int(bad[0])} has length {int(arr[bad[0]])}"
                         + (f" ({bad.size} sequences out of range)" if bad.size > 1 else ""))
    return arr


# ───────────────────────────────────────────────────────────────── inputs → (values, counts)


def _columns_from_ak(fn: str, seqs, fields):
    """``(names, [jagged ak arrays of numbers, one per feature])`` of an awkward array."""
    import awkward as ak

    if seqs.ndim < 2 and not seqs.fields:
        raise ValueError(f"{fn}: seqs must hold a list of steps per event (type n * var * ...); got type {seqs.type}")
    if seqs.fields and seqs.ndim == 1:  # a record of lists: n * {a: var * float, b: var * float} (uproot's)
        names = _pick_fields(fn, seqs.fields, fields)
        return names, [seqs[name] for name in names]
    if seqs.fields:  # lists of records: n * var * {a: float, b: float}
        names = _pick_fields(fn, seqs.fields, fields)
        return names, [seqs[name] for name in names]
    if fields is not None:
        raise ValueError(f"{fn}: fields={fields!r} given but seqs holds numbers, not records (type {seqs.type}); "
                         f"drop fields=")
    if seqs.ndim == 2:
        return ["values"], [seqs]
    if seqs.ndim == 3:  # n * var * F * float or n * var * var * float with one width
        inner = np.asarray(ak.num(ak.flatten(seqs, axis=1), axis=1)) if len(seqs) else np.zeros(0, np.int64)
        width = int(inner[0]) if inner.size else 0
        if inner.size and (inner != width).any():
            k = int(np.argmax(inner != width))
            event = int(np.searchsorted(np.cumsum(np.asarray(ak.num(seqs, axis=1))), k, side="right"))
            raise ValueError(f"{fn}: every step must hold the same number of features; event {event} has a step with "
                             f"{int(inner[k])} values where the first step has {width}")
        return [f"feature {j}" for j in range(width)], [seqs[:, :, j] for j in range(width)]
    raise ValueError(f"{fn}: seqs has type {seqs.type}; expected n * var * float, n * var * F * float, "
                     f"n * var * {{fields}} or n * {{field: var * float}}")


def _pick_fields(fn: str, available, fields) -> list[str]:
    available = list(available)
    if fields is None:
        return available
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields) or not len(fields):
        raise ValueError(f"{fn}: fields must be a non-empty list of field names (the feature order); got {fields!r}")
    missing = [f for f in fields if f not in available]
    if missing:
        raise ValueError(f"{fn}: no field {missing[0]!r} in seqs; its fields are: {', '.join(available)}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"{fn}: fields {list(fields)!r} names a field twice; give each once")
    return list(fields)


def _flat(fn: str, name: str, column) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, counts) of one jagged column of numbers."""
    import awkward as ak

    if column.ndim != 2:
        raise ValueError(f"{fn}: field {name!r} has type {column.type}; expected one list of numbers per event "
                         f"(var * float): one number per step")
    counts = np.asarray(ak.num(column, axis=1), dtype=np.int64)
    flat = ak.flatten(column, axis=1)
    try:
        flat = ak.to_numpy(flat)
    except (ValueError, TypeError):
        raise ValueError(f"{fn}: field {name!r} holds missing values (None) or non-numbers (type {column.type}); "
                         f"expected numbers") from None
    if flat.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: field {name!r} holds {flat.dtype} values; expected numbers")
    return flat, counts


def _from_ak(fn: str, seqs, fields):
    names, columns = _columns_from_ak(fn, seqs, fields)
    if not names:
        raise ValueError(f"{fn}: seqs has no features (type {seqs.type})")
    flats, counts = [], None
    for name, column in zip(names, columns):
        flat, c = _flat(fn, name, column)
        if counts is not None and not np.array_equal(c, counts):
            k = int(np.argmax(c != counts))
            raise ValueError(f"{fn}: field {name!r} has {int(c[k])} values in event {k} but {names[0]!r} has "
                             f"{int(counts[k])}; every per-step field must have one value per step")
        counts = c
        flats.append(flat)
    return names, flats, counts


def _from_list(fn: str, seqs):
    names, flats, counts, width = None, [], [], None
    for i, s in enumerate(seqs):
        try:
            a = np.asarray(s)
        except (ValueError, TypeError):
            raise ValueError(f"{fn}: sequence {i} is not an array of numbers; give (len_i, F) arrays") from None
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{fn}: sequence {i} holds {a.dtype} values; expected numbers")
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if a.ndim != 2:
            raise ValueError(f"{fn}: sequence {i} has shape {a.shape}; each sequence must be (len_i, F) or (len_i,)")
        if width is None:
            width = a.shape[1]
        elif a.shape[1] != width:
            raise ValueError(f"{fn}: sequence {i} has {a.shape[1]} features per step but sequence 0 has {width}; "
                             f"every sequence must have the same F")
        flats.append(a)
        counts.append(len(a))
    if width is None:
        raise ValueError(f"{fn}: seqs is empty; give at least one sequence")
    names = [f"feature {j}" for j in range(width)]
    values = np.concatenate(flats) if flats else np.zeros((0, width))
    return names, [values[:, j] for j in range(width)], np.asarray(counts, dtype=np.int64)


# ──────────────────────────────────────────────────────────────────────────────── padding


def pad_ragged(seqs, max_length: int | None = None, dtype=np.float32, *, fields=None, truncating: str = "post",
               max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pad ragged sequences to ``X (n, T, F)`` with zeros after each sequence's last step.

    Args:
        seqs: the sequences, one per event:
            - a list of arrays of shape ``(len_i, F)`` (or ``(len_i,)``: one feature);
            - an awkward array of lists of numbers (``n * var * float``, one feature), of regular
              steps (``n * var * F * float``), of records (``n * var * {pt, eta, …}``), or a record
              of lists (``n * {pt: var * float, eta: var * float}``, what uproot's ``tree.arrays``
              returns for jagged branches); a dict ``{name: jagged array}`` is read as the latter.
        max_length: the padded length T (a positive integer); longer sequences are truncated with
            a warning. None: T is the longest sequence.
        dtype: the float dtype of ``X`` (float32 by default, as the readers of files).
        fields: the record fields in feature order (default: the record's own order).
        truncating: ``"post"`` keeps the first ``max_length`` steps of a longer sequence, ``"pre"``
            the last ones (Keras's ``pad_sequences`` meaning).
        max_bytes: the largest ``X`` to allocate (default: half of the physical memory).

    Returns:
        ``X`` of ``dtype`` ``(n, T, F)`` (zeros at padded steps) and ``lengths`` int64 ``(n,)``
        with ``1 <= lengths[i] <= T``.

    Raises:
        ValueError: a sequence without steps (the events are listed), fields whose lengths differ
            in an event (naming the field, the event and both lengths), a non-finite value (event,
            step, field), steps of different widths, a padded array larger than ``max_bytes``.
    """
    fn = "pad_ragged"
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral)
                                   or max_length < 1):
        raise ValueError(f"{fn}: max_length must be a positive integer (the padded number of steps) or None; "
                         f"got {max_length!r}")
    if truncating not in ("post", "pre"):
        raise ValueError(f"{fn}: truncating must be 'post' (keep the first steps) or 'pre' (keep the last); "
                         f"got {truncating!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"{fn}: dtype must be a float type such as float32; got {dtype}")
    if isinstance(seqs, Mapping):
        import awkward as ak

        if not seqs:
            raise ValueError(f"{fn}: seqs is an empty dict; give {{name: jagged array}} with at least one field")
        seqs = ak.zip({k: ak.Array(v) if not _is_ak(v) else v for k, v in seqs.items()}, depth_limit=1)
    if _is_ak(seqs):
        names, flats, counts = _from_ak(fn, seqs, fields)
    elif isinstance(seqs, (list, tuple)):
        if fields is not None:
            raise ValueError(f"{fn}: fields= is for awkward records; a list of arrays is already in feature order")
        names, flats, counts = _from_list(fn, seqs)
    else:
        raise ValueError(f"{fn}: seqs must be a list of (len_i, F) arrays, an awkward array or a dict of jagged "
                         f"arrays; got {type(seqs).__name__}")
    return _pad(fn, names, flats, counts, max_length, dtype, truncating, max_bytes)


def _pad(fn, names, flats, counts, max_length, dtype, truncating, max_bytes, warn: bool = True):
    n, F = len(counts), len(names)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{fn}: {empty.size} of {n} sequences have no steps (event {_events(empty)}); the recurrent layers need "
            f"at least one step per sequence: leave them out first (keep = ak.num(seqs, axis=1) > 0; then seqs[keep] "
            f"and y[keep]; in a ROOT file, the cut 'Length$(branch)>0')"
        )
    longest = int(counts.max()) if n else 0
    T = longest if max_length is None else int(max_length)
    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    need = n * T * F * dtype.itemsize
    if need > limit:
        raise ValueError(
            f"{fn}: padding {n} sequences to T={T} steps of {F} features needs {need / 2**20:.1f} MiB as {dtype}, more "
            f"than the limit of {limit / 2**20:.1f} MiB (max_bytes); pass a smaller max_length (the longest sequence "
            f"has {longest} steps) or fewer events"
        )
    lengths = np.minimum(counts, T)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cut = counts > T
    if cut.any():
        if warn:
            warnings.warn(
                f"{fn}: {int(cut.sum())} of {n} sequences are longer than max_length={T} (the longest has {longest} "
                f"steps); kept their {'first' if truncating == 'post' else 'last'} {T} steps "
                f"(truncating={truncating!r}), {int((counts - lengths).sum())} steps left out",
                UserWarning, stacklevel=3,
            )
        if truncating == "pre":
            starts = starts + (counts - lengths)
    # the flat position of every kept step: starts[i] + 0 … lengths[i]-1, in row-major (event, step) order
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    take = np.repeat(starts, lengths) + offsets
    mask = np.arange(T)[None, :] < lengths[:, None]
    X = np.zeros((n, T, F), dtype)
    for j, (name, flat) in enumerate(zip(names, flats)):
        values = np.asarray(flat)[take]
        bad = ~np.isfinite(values) if values.dtype.kind == "f" else None
        if bad is not None and bad.any():
            k = int(np.argmax(bad))
            event = int(np.searchsorted(np.cumsum(lengths), k, side="right"))
            step = int(take[k] - np.concatenate([[0], np.cumsum(counts)])[event])
            raise ValueError(f"{fn}: {name!r} is {values[k]} at step {step} of event {event}; every value must be "
                             f"finite (remove the event or the value first)")
        X[..., j][mask] = values
    return X, lengths.astype(np.int64)
