"""What a forward pass keeps for its backward pass (:class:`_Cache`), and the views between the
layouts: batch-major ``(B, T, ·)`` for the caller, time-major ``(T, B, ·)`` for the reference
kernels, feature-major ``(·, T, B)`` for the fast ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



def _bm(a: np.ndarray) -> np.ndarray:
    """Time-major ``(T, B, ·)`` → batch-major ``(B, T, ·)`` view (and back)."""
    return a.swapaxes(0, 1)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``. Outputs that share memory with a cache are returned this way,
    so that an in-place edit (``h -= y``) raises instead of silently changing what the backward
    pass differentiates; copy them (``h.copy()``) to modify."""
    view = a.view()
    view.flags.writeable = False
    return view


def _fm(a: np.ndarray) -> np.ndarray:
    """Feature-major ``(F, T, B)`` ↔ batch-major ``(B, T, F)`` view."""
    return a.transpose(2, 1, 0)


@dataclass(frozen=True, eq=False)
class _Cache:
    """What a forward pass stores for its backward pass.

    ``layout`` says how the per-step arrays are stored: ``"tbf"`` — time-major ``(T, B, ·)``, by
    the reference kernels; ``"ftb"`` — feature-major ``(·, T, B)``, by the fast kernels;
    ``"packed"`` — ``(·, N)``, the fast kernels' packed sequences of a call with ``lengths`` or
    ``reverse`` (bptt.functional._packed; its layout is the cache's :attr:`arrangement`). The
    properties give batch-major ``(B, T, ·)`` views every way.
    """

    layout: str  # "tbf" (reference kernels), "ftb" (fast kernels; states with slot 0 = initial) or "packed"
    x_s: np.ndarray  # the inputs: (T, B, I) for "tbf", (I, T, B) for "ftb", (I, N) for "packed"
    W: np.ndarray
    U: np.ndarray
    h0: np.ndarray
    gates_s: np.ndarray
    h_s: np.ndarray

    @property
    def spent_by(self) -> str | None:
        """The backward function that spent this cache (``keep_cache=False``), or None."""
        return self.__dict__.get("_spent_by")

    def spend(self, fn: str) -> None:
        """Mark the cache as spent by the backward ``fn``, which may write over its gate values
        (and the LSTM's cell states)."""
        object.__setattr__(self, "_spent_by", fn)

    def _check_unspent(self, name: str, what: str) -> None:
        if self.spent_by:
            raise ValueError(
                f"cache.{name}: this cache was spent by {self.spent_by}(..., keep_cache=False), which may write "
                f"its gradients over the {what}; read cache.{name} before that call, or call it with "
                f"keep_cache=True (the default)"
            )

    @property
    def arrangement(self):
        """The processing order of a forward call with ``lengths`` or ``reverse``
        (bptt.functional._lengths._Arrangement; for the "packed" layout bptt.functional._packed._Packed),
        or None."""
        return self.__dict__.get("_arrangement")

    def _arranged(self, arrangement) -> "_Cache":
        """This cache, recording the forward call's processing order (None: the caller's)."""
        object.__setattr__(self, "_arrangement", arrangement)
        return self

    def _bm(self, a: np.ndarray, states: bool = False) -> np.ndarray:
        """A stored per-step array as a read-only batch-major ``(B, T, ·)`` view (with lengths or
        reverse: a copy in the caller's order, zeros at the padded steps). ``states``: a packed
        array of states (step s's in block s + 1)."""
        if self.layout == "packed":
            return _readonly(self.arrangement.unpack(a, 0, a.shape[0], states))
        view = _bm(a) if self.layout == "tbf" else _fm(a)
        if self.arrangement is not None:
            view = self.arrangement.scatter(view, zero_padded=True)
        return _readonly(view)

    def _states_bm(self, a: np.ndarray) -> np.ndarray:
        """A per-step state array as ``(B, T, H)``; the fast layout drops its slot 0 (the initial state)."""
        if self.layout == "packed":
            return self._bm(a, states=True)
        return self._bm(a if self.layout == "tbf" else a[:, 1:])

    @property
    def dtype(self) -> np.dtype:
        return self.h_s.dtype

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(T, B, H)``."""
        if self.layout == "packed":
            return self.arrangement.T, self.arrangement.B, self.U.shape[0]
        T, B = self.x_s.shape[:2] if self.layout == "tbf" else self.x_s.shape[1:]
        return T, B, self.U.shape[0]

    @property
    def n_inputs(self) -> int:
        """I, the input features per step."""
        return self.W.shape[0]

    @property
    def gates(self) -> np.ndarray:
        """Post-activation gate values at every step, ``(B, T, G·H)`` in the cell's gate order."""
        self._check_unspent("gates", "gate values")
        return self._bm(self.gates_s)

    @property
    def h(self) -> np.ndarray:
        """Hidden state at every step, ``(B, T, H)``."""
        return self._states_bm(self.h_s)
