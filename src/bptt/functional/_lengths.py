"""Variable lengths and direction (``lengths=``, ``reverse=``): PyTorch's packed-sequence semantics.

Step t of sequence b is real when ``t < lengths[b]``, padding otherwise. The forward functions
give ``h = 0`` at padded steps; the final states are those after step ``lengths[b] − 1``
(``reverse``: after step 0), and there ``dh_last``/``dc_last`` enter; padded steps receive and
pass no gradient. ``reverse=True`` reads each sequence from its last real step back to step 0.

How: the loops run over the sequences in a *processing order* (:class:`_Arrangement`): column k
of the kernels' arrays holds sequence ``order[k]``, and its processing step s reads the caller's
step ``steps[k, s]`` (s itself, or ``lengths − 1 − s`` in reverse, over the real steps; padded
steps stay where they are). So a reverse sequence is a forward one whose real steps were read
backwards, and both backends run forward loops with lengths only:

* the reference kernels keep the caller's order and mask the padded steps (the oracle);
* the fast kernels sort the sequences by length, longest first, within each part of the batch a
  thread takes (cuDNN's way): at step t the running sequences are a prefix of each part's
  columns, ``ends[t]`` (bptt.kernels.fast.common, "variable lengths"), and the loops do no work
  past it, but for keeping the padded slots at zero. The two parts of a two-thread loop take the
  sequences alternately, longest first, so that both have about the same work.

The inputs are gathered into the processing order once per call (:meth:`_Arrangement.gather`),
and the results scattered back (:meth:`_Arrangement.scatter`): two copies, no per-step work.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _backend


@dataclass(frozen=True, eq=False)
class _Sequences:
    """Validated ``lengths (B,)`` (int64, the caller's order) and ``reverse``."""

    lengths: np.ndarray
    reverse: bool
    T: int

    def arranged(self, plan=None, rounding: int = 1) -> "_Arrangement":
        """The processing order: the caller's (``plan`` None: the reference kernels), or sorted by
        length within the parts of ``plan`` (a ``_plan._LoopPlan``), whose products run over the
        running columns rounded up to a multiple of ``rounding`` (the micro-kernel's tile)."""
        L = self.lengths
        B, T = L.shape[0], self.T
        if plan is None:
            order = np.arange(B)
            ends = None
        else:
            ranked = np.argsort(-L, kind="stable")  # longest first; ties in the caller's order
            split = plan.split
            if split:  # alternately to the two parts while both have room, longest first
                first = min(split, B - split)
                rest, none = ranked[2 * first :], ranked[:0]
                part0 = np.concatenate((ranked[: 2 * first : 2], rest if split > first else none))
                part1 = np.concatenate((ranked[1 : 2 * first : 2], none if split > first else rest))
                order = np.concatenate((part0, part1))
            else:
                order = ranked
            ends = np.empty((T, 4), np.int64)
            bounds = ((0, split), (split, B)) if split else ((0, B), (B, B))
            steps_ = np.arange(T)
            for p, (c0, c1) in enumerate(bounds):
                running = (L[order[c0:c1]][None, :] > steps_[:, None]).sum(axis=1)  # (T,)
                ends[:, 2 * p] = c0 + running
                rounded = -(-running // rounding) * rounding
                ends[:, 2 * p + 1] = np.minimum(c1, c0 + rounded)
        Lk = L[order]
        s = np.arange(T)[None, :]
        steps = np.where(s < Lk[:, None], (Lk[:, None] - 1 - s) if self.reverse else s, s)
        return _Arrangement(self.lengths, self.reverse, order, steps, ends, plan)


def _sequences(fn: str, lengths, reverse, B: int, T: int) -> _Sequences | None:
    """Validate ``lengths`` and ``reverse`` of a forward call over ``(B, T, ·)``; None when every
    sequence runs forward over all T steps (the call is then the one without lengths, bit for bit)."""
    if not isinstance(reverse, (bool, np.bool_)):
        raise ValueError(f"{fn}: reverse must be True or False; got {reverse!r}")
    if lengths is None:
        if not reverse:
            return None
        L = np.full(B, T, np.int64)
    else:
        L = _check_lengths(fn, lengths, B, T)
        if not reverse and bool((L == T).all()):
            return None
    return _Sequences(L, bool(reverse), T)


def _check_lengths(fn: str, lengths, B: int, T: int) -> np.ndarray:
    expected = f"an integer array of shape (B,) = ({B},) with 1 <= lengths[b] <= T = {T}"
    if isinstance(lengths, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{fn}: lengths must be {expected}; got {lengths!r}")
    try:
        a = np.asarray(lengths)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ValueError(f"{fn}: lengths must be {expected}; got {type(lengths).__name__} ({e})") from None
    if a.dtype.kind not in "iu":
        hint = " (convert it with np.asarray(lengths, dtype=np.int64))" if a.dtype.kind == "f" else ""
        raise ValueError(f"{fn}: lengths must be {expected}; got dtype {a.dtype}{hint}")
    if a.shape != (B,):
        raise ValueError(f"{fn}: lengths must be {expected} (one length per sequence of x); got shape {a.shape}")
    if B and (a.min() < 1 or a.max() > T):
        bad = int(np.flatnonzero((a < 1) | (a > T))[0])
        raise ValueError(
            f"{fn}: lengths must be {expected} (x has T = {T} steps; a sequence has at least one); "
            f"got lengths[{bad}] = {int(a[bad])}"
        )
    return a.astype(np.int64)


@dataclass(frozen=True, eq=False)
class _Arrangement:
    """The processing order of one call (see the module docstring): ``order (B,)`` the caller's
    sequence in each column, ``steps (B, T)`` the caller's step of each processing step, ``ends
    (T, 4)`` the fast loops' running columns (None for the reference kernels) and ``plan``, the
    fast loops' plan the order was made for (the backward pass runs with the same)."""

    lengths: np.ndarray
    reverse: bool
    order: np.ndarray
    steps: np.ndarray
    ends: np.ndarray | None
    plan: object

    @property
    def sorted_lengths(self) -> np.ndarray:
        """The lengths in the processing order."""
        return self.lengths[self.order]

    @property
    def padded(self) -> np.ndarray:
        """``(B, T)`` booleans, the caller's order: whether step t of sequence b is padding (the
        same steps in either direction)."""
        return np.arange(self.steps.shape[1])[None, :] >= self.lengths[:, None]

    def gather(self, a: np.ndarray) -> np.ndarray:
        """A caller's ``(B, T, F)`` array in the processing order (a new C-contiguous array): by
        the compiled copy of bptt.kernels.fast once it is loaded, else by NumPy."""
        fast = _backend._fast_kernels
        if fast is None or not a.flags.c_contiguous:
            return a[self.order[:, None], self.steps]
        out = np.empty(a.shape, a.dtype)
        fast.gather_steps(a, self.order, self.steps, out)
        return out

    def scatter(self, a: np.ndarray, zero_padded: bool = False) -> np.ndarray:
        """A ``(B, T, F)`` array in the processing order back in the caller's (a new C-contiguous
        array); ``zero_padded``: with zeros at the padded steps (arrays whose kernels leave them
        as they were). A batch-major view of a fast kernel's feature-major array is copied by
        bptt.kernels.fast.scatter_feature_major (NumPy's fancy indexing over its strided rows
        took 50 ms for the dz of the ragged benchmark row)."""
        fast = _backend._fast_kernels
        fm = a.transpose(2, 1, 0)
        out = np.empty(a.shape, a.dtype)
        if fast is not None and fm.strides[2] == a.itemsize and a.dtype in (np.float32, np.float64):
            fast.scatter_feature_major(fm, 0, self.order, self.steps, out)
        else:
            out[self.order[:, None], self.steps] = a
        if zero_padded:
            out[self.padded] = 0
        return out

    def rows_in(self, a: np.ndarray | None) -> np.ndarray | None:
        """A caller's ``(B, H)`` array (states, their gradients) in the processing order."""
        return None if a is None else a[self.order]

    def rows_out(self, a: np.ndarray) -> np.ndarray:
        """A ``(B, H)`` array in the processing order back in the caller's."""
        out = np.empty_like(a)
        out[self.order] = a
        return out

    def final_slots(self) -> np.ndarray:
        """The slot of each column's final state in a fast-path state array ``(H, T + 1, B)``."""
        return self.sorted_lengths


def _caller_order(grads: dict, arr) -> dict:
    """A backward call's gradients, computed in the processing order of ``arr``, in the caller's;
    the per-step deltas ``dz`` (and ``dc``) only when first read (:class:`_Gradients`)."""
    out = _Gradients()
    for k, g in grads.items():
        if k in ("dh0", "dc0"):
            out[k] = arr.rows_out(g)
        elif k == "dx":
            out[k] = arr.scatter(g)
        elif k in ("dz", "dc"):
            out._later(k, lambda g=g: arr.scatter(g))
        else:
            out[k] = g
    return out


class _Gradients(dict):
    """The gradient dict of a backward call with lengths: a plain dict whose per-step deltas
    (``dz``, and ``dc`` for the LSTM: ``(B, T, G·H)``, the largest arrays of the call) are put
    back into the caller's order when first read, by any access (indexing, ``get``, ``items``,
    ``values``, iteration into ``dict(...)``). A training step reads only ``dx`` and the parameter
    gradients; copying dz back took about as long as the backward loop on the ragged benchmark row."""

    _MISSING = object()

    def _later(self, key, make) -> None:
        self.__dict__.setdefault("_pending", {})[key] = make
        dict.__setitem__(self, key, self._MISSING)

    def _resolve(self, key):
        value = dict.__getitem__(self, key)
        if value is self._MISSING:
            value = self.__dict__["_pending"].pop(key)()
            dict.__setitem__(self, key, value)
        return value

    def __getitem__(self, key):
        return self._resolve(key)

    def get(self, key, default=None):
        return self._resolve(key) if key in self else default

    def __iter__(self):  # not dict's own iterator: dict(grads) and {**grads} then read through __getitem__
        return iter(list(dict.keys(self)))

    def keys(self):
        return dict.keys(self)

    def values(self):
        return [self._resolve(k) for k in dict.keys(self)]

    def items(self):
        return [(k, self._resolve(k)) for k in dict.keys(self)]

    def pop(self, key, *default):
        if key in self:
            value = self._resolve(key)
            dict.pop(self, key)
            return value
        return dict.pop(self, key, *default)

    def copy(self):
        return dict(self.items())

    def __repr__(self):
        return repr(dict(self.items()))

    def __eq__(self, other):
        return dict(self.items()) == other

    __hash__ = None

    def __reduce__(self):
        return (dict, (dict(self.items()),))


def final_state(h, lengths=None, reverse=False) -> np.ndarray:
    """The final state ``(B, H)`` of each sequence from the states ``h (B, T, H)`` of a forward call
    (or ``cache.c`` of the LSTM) with the same ``lengths`` and ``reverse``: ``h[b, lengths[b] − 1]``,
    or ``h[:, 0]`` in reverse (the state after step 0); ``h[:, -1]`` without either. This is the
    state ``dh_last`` (``dc_last``) refers to, and the one PyTorch returns as ``h_n`` (``c_n``)."""
    fn = "final_state"
    h = np.asarray(h)
    if h.ndim != 3:
        raise ValueError(f"{fn}: h must be the (B, T, H) states of a forward call; got shape {h.shape}")
    B, T = h.shape[:2]
    seq = _sequences(fn, lengths, reverse, B, T)
    if seq is None:
        return h[:, -1].copy()
    if seq.reverse:
        return h[:, 0].copy()
    return h[np.arange(B), seq.lengths - 1]


@functools.lru_cache(maxsize=64)
def _all_running(T: int, B: int, split: int) -> np.ndarray:
    ends = np.empty((T, 4), np.int64)
    ends[:, :2] = split or B
    ends[:, 2:] = B
    return ends  # writeable, so that the kernels see one array type either way (never written)


def _ends(T: int, plan, arrangement: "_Arrangement | None") -> np.ndarray:
    """The ``ends`` of the fast loops: the arrangement's, or every column running at every step."""
    return _all_running(T, plan.B, plan.split) if arrangement is None else arrangement.ends


def _rounding(plan, dtype) -> int:
    """The columns a fast loop's products round the running ones up to: the micro-kernel's
    narrowest tile when it may run (its products cover whole tiles only; a few padded columns
    cost less than BLAS's call for a ragged width), else 1."""
    if not plan.own or np.dtype(dtype) != np.float32:
        return 1
    from ._backend import _kernel

    return _kernel("microkernel").TILES[-1][1]
