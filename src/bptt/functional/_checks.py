"""Input checks of the forward and backward calls, and the check that finite inputs gave finite
results (:class:`NonFiniteResultError`)."""

from __future__ import annotations


import numpy as np

from .. import _validation as v
from . import _backend


def _check_forward(fn, x, W, U, b, gates, states, extra=None):
    """Validate a forward call; return ``(x, W, U, b, extra, states)`` as arrays plus B, T, I, H.

    ``gates`` is the number of gate blocks G (4, 3 or 1); ``U`` fixes H, ``x`` fixes B, T and I.
    ``states`` maps initial-state names to values (None → zeros); ``extra`` maps further bias
    names to values.
    """
    x = v.float_array(fn, "x", x, 3, "(B, T, I)")
    U = v.float_array(fn, "U", U, 2, f"(H, {gates}H)")
    B, T, I = x.shape
    H = U.shape[0]
    v.expect_shape(fn, "U", U, (H, gates * H), f"(H, {gates}H) with H = U.shape[0] = {H}")
    W = v.float_array(fn, "W", W, 2, f"(I, {gates}H)")
    v.expect_shape(fn, "W", W, (I, gates * H), f"(I, {gates}H) with I = x.shape[2] = {I}, H = {H} from U")
    b = v.float_array(fn, "b", b, 1, f"({gates}H,)")
    v.expect_shape(fn, "b", b, (gates * H,), f"({gates}H,) with H = {H} from U")
    arrays = {"x": x, "W": W, "U": U, "b": b}
    for name, value in (extra or {}).items():
        arrays[name] = v.float_array(fn, name, value, 1, f"({gates}H,)")
        v.expect_shape(fn, name, arrays[name], (gates * H,), f"({gates}H,) with H = {H} from U")
    for name, value in states.items():
        if value is not None:
            arrays[name] = v.float_array(fn, name, value, 2, "(B, H)")
            v.expect_shape(fn, name, arrays[name], (B, H), f"(B, H) with B = x.shape[0] = {B}, H = {H} from U")
    dtype = v.same_dtype(fn, arrays)
    for name, value in states.items():
        if value is None:
            arrays[name] = np.zeros((B, H), dtype)
    return arrays, (B, T, I, H)


def _check_backward(fn, cache, cache_type, dh, finals, keep_cache=True):
    """Validate a backward call against its cache; return ``dh`` (batch-major, or None) and the
    final-state gradients (zeros where not given). ``keep_cache`` False: the cache is marked spent
    once the call is valid (see :meth:`_Cache.spend`)."""
    if not isinstance(cache, cache_type):
        raise ValueError(
            f"{fn}: cache must be the {cache_type.__name__} returned by the matching forward call; "
            f"got {type(cache).__name__}"
        )
    if not isinstance(keep_cache, (bool, np.bool_)):
        raise ValueError(f"{fn}: keep_cache must be True or False; got {keep_cache!r}")
    if cache.spent_by:
        raise ValueError(
            f"{fn}: this cache was spent by an earlier {cache.spent_by}(..., keep_cache=False), which may "
            f"write its gradients over the cache's arrays; run the forward pass again for a new cache (or "
            f"keep the cache for several backward calls with keep_cache=True, the default)"
        )
    T, B, H = cache.dims
    arrays = {}
    lengths = cache.arrangement is not None  # with lengths dh is read at the real steps only: those are checked
    if dh is not None:
        arrays["dh"] = v.float_array(fn, "dh", dh, 3, "(B, T, H)", finite=not lengths)
        v.expect_shape(fn, "dh", arrays["dh"], (B, T, H), "(B, T, H), the shape of the forward output h")
    for name, value in finals.items():
        if value is not None:
            arrays[name] = v.float_array(fn, name, value, 2, "(B, H)")
            v.expect_shape(fn, name, arrays[name], (B, H), "(B, H), the shape of the final state")
    for name, a in arrays.items():
        if a.dtype != cache.dtype:
            raise ValueError(
                f"{fn}: {name} has dtype {a.dtype} but the forward pass ran in {cache.dtype}; "
                f"convert it with {name}.astype(np.{cache.dtype})"
            )
    if lengths and dh is not None:
        _check_real_steps(fn, arrays["dh"], cache.arrangement, cache.layout == "packed")
    out = [arrays.get("dh")]
    for name in finals:
        out.append(arrays[name].copy() if name in arrays else np.zeros((B, H), cache.dtype))
    if not keep_cache:
        cache.spend(fn)
    return out


def _check_real_steps(fn: str, dh: np.ndarray, arr, packed: bool) -> None:
    """Raise :class:`bptt._validation.NonFiniteError` if ``dh (B, T, H)`` holds NaN or Inf at a real
    step of a call with lengths (``arr``: the cache's arrangement, its ``lengths`` in the caller's
    order; ``packed``: the fast path's layout, whose ``rows`` are the real steps' flat rows),
    naming the first. The padded steps take no gradient, as in PyTorch's packed sequences: what
    dh holds there is never read, and checking only the real steps read 31.5 % of dh on the
    ragged benchmark row."""
    from ._arrays import _batch_major

    B, T, H = dh.shape
    if packed:
        if _backend._fast().rows_finite(_batch_major(dh).reshape(B * T, H), arr.rows):
            return
    real = np.arange(T)[None, :] < arr.lengths[:, None]
    bad = np.argwhere(~np.isfinite(dh) & real[:, :, None])
    if not bad.size:
        return
    where = tuple(int(i) for i in bad[0])
    what = "NaN" if np.isnan(dh[where]) else "Inf"
    raise v.NonFiniteError(
        f"{fn}: dh contains {what} at index {where}, a real step (lengths[{where[0]}] = {int(arr.lengths[where[0]])}); "
        f"every value at the real steps must be finite (check the data or the parameters for divergence)"
    )


class NonFiniteResultError(v.NonFiniteError):
    """A result of a forward or backward call holds NaN or Inf although every input was finite: a
    value overflowed its dtype inside the computation. A ``ValueError`` (through
    :class:`bptt._validation.NonFiniteError`, which ``bptt.train.fit`` reports as the network
    diverging)."""


#: The per-step deltas are not checked: a NaN or Inf in ``dz`` reaches ``db``, its sum over the
#: steps and the batch, and one in the LSTM's ``dc`` reaches ``dz`` (a product with it; Inf · 0 is NaN).
_UNCHECKED_GRADIENTS = ("dz", "dc")


def _finite(a: np.ndarray) -> bool:
    """Whether ``a`` holds no NaN and no Inf: the compiled check of bptt.kernels.fast (once loaded)
    for a C- or F-contiguous ``a`` (the batch-major view of a feature-major result is the
    latter), NumPy's for the others."""
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        a = a.T
    if _backend._fast_kernels is not None and a.flags.c_contiguous:
        return not _backend._fast_kernels._has_non_finite(a)
    return bool(np.isfinite(a).all())


def _raise_if_overflowed(fn: str, results: dict, inputs: dict) -> None:
    """Raise :class:`NonFiniteResultError` if one of ``results`` (name → an array that holds it)
    holds NaN or Inf. Every one of ``inputs`` (name → array or None) was checked finite on the
    way in, so that is an overflow; the message names the result, the inputs by their largest
    magnitude and what to do.

    Of a forward pass, the final state ``h_T`` stands for all the states (:func:`_final_or_all`): a
    NaN or Inf in h_t reaches every unit of its sequence at step t + 1 (h_t U: NaN · u, ±Inf · 0
    and Inf − Inf are NaN, ±Inf · u ≠ 0 is ±Inf) and stays non-finite through σ, tanh, identity
    and the cells' gating; only a ReLU maps −Inf to 0, so the ReLU RNN's states are all checked."""
    for name, a in results.items():
        if not _finite(a):
            raise NonFiniteResultError(_overflow_message(fn, name, a, inputs))


#: What to scale down when the named input is the largest (any other: a parameter).
_OVERFLOW_REMEDIES = {
    "x": "standardise the data",
    "dh": "scale the loss down",
    "dh_last": "scale the loss down",
    "dc_last": "scale the loss down",
    "h0": "the initial state",
    "c0": "the initial state",
}


def _overflow_message(fn: str, name: str, a: np.ndarray, inputs: dict) -> str:
    what = "NaN" if np.isnan(a).any() else "Inf"
    dtype = a.dtype
    largest = sorted(((float(np.abs(x).max()), k) for k, x in inputs.items() if x is not None), reverse=True)
    (top, top_name), rest = largest[0], largest[1:4]
    then = f" (then {', '.join(f'{k} {m:.1e}' for m, k in rest)})" if rest else ""
    why = _OVERFLOW_REMEDIES.get(top_name, "the parameters may have diverged: lower the learning rate or clip the gradients")
    remedy = f"scale {top_name} down ({why})" + (" or run in float64" if dtype == np.float32 else "")
    return (
        f"{fn}: the result {name} holds {what} although every input is finite: a value overflowed {dtype} "
        f"(largest finite {np.finfo(dtype).max:.1e}) inside the computation. The largest input is "
        f"{top_name}: largest |value| {top:.1e}{then}; {remedy}"
    )


def _final_or_all(h: np.ndarray, activation: str = "tanh", layout: str = "tbf") -> np.ndarray:
    """The forward states :func:`_raise_if_overflowed` checks: the final state of ``h``, all of it
    for a ReLU. ``layout``: ``"tbf"`` the reference's ``(T, B, H)``, ``"ftb"`` the fast path's
    ``(H, T + 1, B)`` (slot 0 the initial state)."""
    if activation == "relu":
        return h
    return h[-1] if layout == "tbf" else h[:, -1]


def _checked_gradients(fn: str, grads: dict, cache, dh, finals: dict) -> dict:
    """``grads`` once :func:`_raise_if_overflowed` has checked them (not the per-step deltas, see
    :data:`_UNCHECKED_GRADIENTS`) against the backward call's inputs: ``dh``, the final-state
    gradients and what the cache holds of the forward call's inputs."""
    inputs = {"dh": dh, **finals, "x": cache.x_s, "W": cache.W, "U": cache.U, "h0": cache.h0}
    # by key: the per-step deltas of a call with lengths are put in the caller's order when read
    _raise_if_overflowed(fn, {k: grads[k] for k in grads if k not in _UNCHECKED_GRADIENTS}, inputs)
    return grads
