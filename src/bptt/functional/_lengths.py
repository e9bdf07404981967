"""Variable lengths and direction (``lengths=``, ``reverse=``): PyTorch's packed-sequence semantics.

Step t of sequence b is real when ``t < lengths[b]``, padding otherwise. The forward functions
give ``h = 0`` at padded steps; the final states are those after step ``lengths[b] − 1``
(``reverse``: after step 0), and there ``dh_last``/``dc_last`` enter; padded steps receive and
pass no gradient. ``reverse=True`` reads each sequence from its last real step back to step 0.

Both backends run forward loops with lengths only, a reverse sequence being a forward one whose
real steps are read backwards:

* the reference kernels keep the caller's order and mask the padded steps (the oracle): column b
  of their arrays is sequence b, whose processing step s reads the caller's step ``steps[b, s]``
  (s itself, or ``lengths − 1 − s`` in reverse, over the real steps; padded steps stay where they
  are), :class:`_Arrangement`;
* the fast kernels run over packed sequences, only the real steps stored, sorted by length
  (bptt.functional._packed).

Shared by the cells' modules: the validation (:func:`_sequences`), the packed layout of a fast
call (:func:`_packed_for`, :func:`_packed_loop_inputs`, :func:`_packed_dh`), the gradient dict
whose per-step deltas are put in the caller's order when read (:class:`_Gradients`), and
:func:`final_state`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True, eq=False)
class _Sequences:
    """Validated ``lengths (B,)`` (int64, the caller's order) and ``reverse``."""

    lengths: np.ndarray
    reverse: bool
    T: int

    @property
    def work_steps(self) -> int:
        """The mean real steps per sequence, rounded up: the T of the padded loop with this much
        work, as the fast path's threading rule (bptt.functional._plan._loop_split) weighs a loop
        over packed sequences, which does no work on padded steps."""
        return -(-int(self.lengths.sum()) // self.lengths.shape[0])

    def arranged(self) -> "_Arrangement":
        """The reference kernels' processing order: the caller's, each sequence's real steps read
        backwards in reverse."""
        L = self.lengths
        s = np.arange(self.T)[None, :]
        steps = np.where(s < L[:, None], (L[:, None] - 1 - s) if self.reverse else s, s)
        return _Arrangement(L, self.reverse, steps)


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


def _reference_order(seq: _Sequences | None) -> "_Arrangement | None":
    """The reference kernels' processing order of a call (None without lengths and reverse)."""
    return None if seq is None else seq.arranged()


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
    """The reference kernels' processing order of one call (see the module docstring): ``steps
    (B, T)`` the caller's step of each processing step of each sequence."""

    lengths: np.ndarray
    reverse: bool
    steps: np.ndarray

    @property
    def sorted_lengths(self) -> np.ndarray:
        """The lengths in the processing order (the caller's)."""
        return self.lengths

    @property
    def padded(self) -> np.ndarray:
        """``(B, T)`` booleans: whether step t of sequence b is padding (the same steps in either
        direction)."""
        return np.arange(self.steps.shape[1])[None, :] >= self.lengths[:, None]

    def gather(self, a: np.ndarray, zero_padded: bool = False) -> np.ndarray:
        """A caller's ``(B, T, F)`` array in the processing order (a new C-contiguous array);
        ``zero_padded``: with zeros at the padded steps (whatever the caller's array holds there)."""
        out = a[np.arange(a.shape[0])[:, None], self.steps]
        if zero_padded:
            out[self.padded] = 0
        return out

    def scatter(self, a: np.ndarray, zero_padded: bool = False) -> np.ndarray:
        """A ``(B, T, F)`` array in the processing order back in the caller's (a new C-contiguous
        array); ``zero_padded``: with zeros at the padded steps."""
        out = np.empty(a.shape, a.dtype)
        out[np.arange(a.shape[0])[:, None], self.steps] = a
        if zero_padded:
            out[self.padded] = 0
        return out

    def rows_in(self, a: np.ndarray | None) -> np.ndarray | None:
        """A caller's ``(B, H)`` array (states, their gradients) in the processing order: itself."""
        return a

    def rows_out(self, a: np.ndarray) -> np.ndarray:
        return a


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


def _packed_for(seq: _Sequences, plan, dtype):
    """The packed layout (bptt.functional._packed) of a fast call with lengths or reverse for the
    loops of ``plan``, or None where the fast loops do not run with lengths: no BLAS callable from
    compiled code (the reference kernels then run)."""
    if plan.blas is None:
        return None
    from ._packed import packed

    return packed(seq, plan, _rounding(plan, dtype), dtype)


def _packed_loop_inputs(xh, W, U, pk, G: int, keep: bool, name: str):
    """``(k0, gates, per_step, A)`` for a packed forward loop over ``xh (I + H, N)``, as
    bptt.functional._arrays._loop_inputs: where the loop's products take the inputs too, ``k0`` 0,
    ``A = [W; U]ᵀ`` and ``gates`` the array they write: ``(G·H, N)`` (``per_step``) when ``keep``,
    else a running ``(G·H, Bp)`` workspace named ``name``; else ``k0`` I, ``A = Uᵀ`` and ``gates``
    the input projection of all steps, one product before the loop."""
    from ._arrays import _fm_input_projection, _loop_matrix, _workspace
    from ._plan import _projection_in_loop

    I, H = W.shape[0], U.shape[0]
    if _projection_in_loop(pk.plan, I, H, G):
        if keep:
            return 0, pk.empty(G * H, xh.dtype), True, _loop_matrix(W, U, 0)
        return 0, _workspace(name, (G * H, pk.Bp), xh.dtype), False, _loop_matrix(W, U, 0)
    N = pk.N
    projection = _fm_input_projection(xh[:I].reshape(I, 1, N), W, G * H, 1, keep=keep).reshape(G * H, N)
    return I, projection, True, _loop_matrix(W, U, I)


def _packed_dh(dh, B: int, T: int, H: int, dtype):
    """``(dh2, use_dh)``: the caller's ``dh (B, T, H)`` as the ``(B·T, H)`` rows a packed backward
    loop reads, or a placeholder never read when None."""
    from ._arrays import _batch_major

    if dh is None:
        return np.empty((1, H), dtype), False
    return _batch_major(dh).reshape(B * T, H), True


def _rounding(plan, dtype) -> int:
    """The columns a fast loop's products round the running ones up to: the micro-kernel's
    narrowest tile when it may run (its products cover whole tiles only; a few padded columns
    cost less than BLAS's call for a ragged width), else 1."""
    if not plan.own or np.dtype(dtype) != np.float32:
        return 1
    from ._backend import _kernel

    return _kernel("microkernel").TILES[-1][1]
