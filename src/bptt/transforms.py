"""TMVA's variable transformations (the ``VarTransform`` booking option): normalise (N),
decorrelate (D), Gaussianise (G), chained in the order written.

A *variable* is one of the values TMVA's DataLoader gives the method for one event: for a
sequence network read with ``AddVariablesArray`` that is each of the ``T·F`` inputs, so a
transformation acts on the flattened ``(n, T·F)`` events (a ``(n, F)`` input is already flat).
Each step is fitted on the training events (after the steps before it, as TMVA's
``TransformationHandler`` prepares them one after the other), stored with the model as JSON
numbers (:meth:`VarTransform.to_dict`) and applied by every prediction.

=====  ======================================================================================
step   what TMVA computes (``tmva/tmva/src/Variable*Transform.cxx``) and bptt with it
=====  ======================================================================================
N      ``x' = 2 (x − min) / (max − min) − 1`` with min and max of each variable over the
       training events (unweighted): the training range maps onto [−1, 1]. A variable that is
       constant on the training events (TMVA: a division by zero, NaN) maps to ``x − min``.
D      ``x' = C^{-1/2} x``, C the (weighted, population) covariance matrix of the training
       events, its inverse square root from the eigen-decomposition ``C = S diag(λ) Sᵀ`` as
       ``S diag(λ^{-1/2}) Sᵀ``; the mean is *not* subtracted (TMVA does not). TMVA skips D above
       200 variables; bptt decorrelates them (a V×V eigen-problem: 300 variables take
       milliseconds) and warns. A singular C (a constant or linearly dependent variable) is an
       error, as it makes TMVA's matrix inversion fail.
G      ``x' = Φ⁻¹(F(x))``: F the weighted cumulative distribution of the variable on the
       training events, clipped to [10⁻⁹, 1 − 10⁻⁹], Φ⁻¹ the inverse normal CDF. *Approximation*:
       TMVA bins F adaptively (at least max(W/2000, 10 w_min) of weight per bin), smooths the
       histogram (``TH1::Smooth``) and interpolates linearly between bin centres; bptt takes
       the mid-point empirical CDF at the distinct values (no smoothing), keeps at most
       :data:`G_MAX_KNOTS` knots at evenly spaced probabilities and interpolates linearly
       between them. Both follow the training distribution to within its binning (here
       1/500 in probability). Beyond the training range F is its end value.
I      the identity (TMVA's ``I``, ``Ident``, ``Identity``).
=====  ======================================================================================

Names as TMVA spells them (N, Norm, Normalise, Normalize; D, Deco, Decorrelate; G, Gauss; I,
Ident, Identity; case-insensitive here), joined by ``,`` or ``+``; ``None`` is no
transformation. ``_AllClasses`` (the default), ``_Signal`` or ``_Background`` after a name
fits that step on the events of that class only (then applies it to every event, as TMVA's
reference class does). TMVA's P (PCA), U (Uniform) and variable subsets ``N(x1,x2)`` are
refused with a message naming them.

Example::

    >>> import numpy as np
    >>> X = np.array([[[0.0, 10.0]], [[2.0, 30.0]], [[1.0, 20.0]]])     # 3 events, T=1, F=2
    >>> VarTransform("N").fit(X).transform(X)[:, 0].tolist()
    [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

from . import _validation as v

__all__ = ["VarTransform", "input_transform_from_config", "parse_var_transform", "normal_quantile", "G_MAX_KNOTS", "TMVA_D_LIMIT"]

#: At most this many knots of each variable's cumulative distribution are kept for G (one per
#: 0.2 % of probability): 300 variables keep at most 150 300 numbers in the model file.
G_MAX_KNOTS = 501
#: TMVA does not decorrelate more than this many variables (``VariableDecorrTransform``).
TMVA_D_LIMIT = 200
#: TMVA's clipping of the cumulative probability in G.
G_EPSILON = 1e-9
#: Events per chunk when transforming (memory stays bounded for large inputs).
_CHUNK = 65536

_NAMES = {
    "N": "N", "NORM": "N", "NORMALISE": "N", "NORMALIZE": "N",
    "D": "D", "DECO": "D", "DECORRELATE": "D",
    "G": "G", "GAUSS": "G",
    "I": "I", "IDENT": "I", "IDENTITY": "I",
}
_UNSUPPORTED = {"P": "PCA", "PCA": "PCA", "U": "Uniform", "UNIFORM": "Uniform"}
_CLASSES = {"ALLCLASSES": None, "SIGNAL": 1, "BACKGROUND": 0}
_KNOWN = "N (normalise), D (decorrelate), G (Gaussianise), I (identity) or None"


def parse_var_transform(text: str) -> list[tuple[str, int | None]]:
    """The steps of a ``VarTransform`` value: ``[(step, class), ...]`` with step one of
    ``"N"``, ``"D"``, ``"G"``, ``"I"`` and class None (all classes), 1 (signal) or 0
    (background). ``"None"`` (or an empty string) gives ``[]``.

    >>> parse_var_transform("N,D"), parse_var_transform("Gauss_Signal+Norm"), parse_var_transform("None")
    ([('N', None), ('D', None)], [('G', 1), ('N', None)], [])
    """
    if not isinstance(text, str):
        raise ValueError(f"VarTransform: expected a string such as 'N' or 'D,G,N'; got {type(text).__name__} {text!r}")
    value = text.strip()
    if value.upper() in ("", "NONE"):
        return []
    steps = []
    for i, token in enumerate(re.split(r"[,+]", value), start=1):
        token = token.strip()
        head = f"VarTransform={value} (transformation {i} {token!r})"
        if not token:
            raise ValueError(f"{head}: empty transformation; write e.g. VarTransform=N,D")
        if "(" in token or ")" in token:
            raise ValueError(
                f"{head}: transforming a subset of the variables is not supported by bptt; write the "
                f"transformation without parentheses (it then acts on every input variable)"
            )
        name, _, cls = token.partition("_")
        key = name.upper()
        if key in _UNSUPPORTED:
            raise ValueError(
                f"{head}: TMVA's {_UNSUPPORTED[key]} transformation ({name}) is not supported by bptt; "
                f"use {_KNOWN}"
            )
        if key not in _NAMES:
            raise ValueError(f"{head}: unknown transformation {name!r}; use {_KNOWN}")
        if cls and cls.upper() not in _CLASSES:
            raise ValueError(
                f"{head}: unknown class {cls!r}; write _AllClasses, _Signal or _Background (or nothing)"
            )
        steps.append((_NAMES[key], _CLASSES[cls.upper()] if cls else None))
    return steps


# ─────────────────────────────────────────────────────────────── the inverse normal CDF

# Wichura's AS241 (PPND16), accurate to about 1e-16: coefficients in ascending powers.
_A = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4,
      4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3)
_B = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3, 2.1213794301586595867e4,
      3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3)
_C = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0,
      1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4)
_D = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
      1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9)
_E = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1,
      2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
      7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15)


def _ratio(num, den, r):
    return np.polynomial.polynomial.polyval(r, num) / np.polynomial.polynomial.polyval(r, den)


def normal_quantile(p) -> np.ndarray:
    """Φ⁻¹(p), the standard normal quantile, for p in (0, 1) (Wichura's algorithm AS241, as ROOT's
    ``TMath::NormQuantile``; TMVA writes it ``√2 · erfinv(2p − 1)``).

    >>> [round(float(z), 6) for z in normal_quantile([0.5, 0.975])]
    [0.0, 1.959964]
    """
    p = np.asarray(p, np.float64)
    if not np.all((p > 0) & (p < 1)):
        raise ValueError("normal_quantile: p must lie in (0, 1)")
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    out[central] = qc * _ratio(_A, _B, 0.180625 - qc * qc)
    tail = ~central
    r = np.sqrt(-np.log(np.minimum(p[tail], 1.0 - p[tail])))
    z = np.where(r <= 5.0, _ratio(_C, _D, r - 1.6), _ratio(_E, _F, r - 5.0))
    out[tail] = np.where(q[tail] < 0, -z, z)
    return out


# ──────────────────────────────────────────────────────────────────────── the chain


def _apply_step(step: dict, Z: np.ndarray) -> np.ndarray:
    """One fitted step on float64 ``Z (n, V)``."""
    kind = step["kind"]
    if kind == "N":
        # TMVA's 2 (x − min) / (max − min) − 1 as written: the training range's ends map onto −1 and
        # 1 exactly (x·scale + offset, the affine form of the export, can miss 1 by an ulp)
        lo, hi = np.asarray(step["min"]), np.asarray(step["max"])
        span = hi - lo
        flat = span == 0
        d = Z - lo
        return np.where(flat, d, 2.0 * d / np.where(flat, 1.0, span) - 1.0)
    if kind == "D":
        return Z @ np.asarray(step["matrix"]).T
    if kind == "G":
        out = np.empty_like(Z)
        for j, (xs, ps) in enumerate(zip(step["x"], step["p"])):
            c = np.clip(np.interp(Z[:, j], xs, ps), G_EPSILON, 1.0 - G_EPSILON)
            out[:, j] = normal_quantile(c)
        return out
    return Z  # "I"


def _normalize_coefficients(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x' = x·scale + offset`` for N: ``2 (x − min) / (max − min) − 1``, or ``x − min`` where max == min."""
    span = hi - lo
    flat = span == 0
    scale = np.where(flat, 1.0, 2.0 / np.where(flat, 1.0, span))
    offset = np.where(flat, -lo, -1.0 - lo * scale)
    return scale, offset


def _fit_step(kind: str, Z: np.ndarray, w: np.ndarray, spec: str, present: np.ndarray | None = None) -> dict:
    """Fit one step on float64 ``Z (n, V)`` with event weights ``w (n,)``; ``present (n, V)``: the
    values that exist (None: all; with it, each variable is fitted on its present values)."""
    fn = f"VarTransform={spec}"
    if present is not None:
        return _fit_step_present(kind, Z, w, spec, present)
    if kind == "N":
        return {"kind": "N", "min": Z.min(axis=0).tolist(), "max": Z.max(axis=0).tolist()}
    if kind == "D":
        V = Z.shape[1]
        if V > TMVA_D_LIMIT:
            from .tmva._common import TMVAOptionWarning

            warnings.warn(
                f"{fn}: D on {V} variables: TMVA skips decorrelation above {TMVA_D_LIMIT} variables; bptt "
                f"decorrelates them (a {V}×{V} matrix)", TMVAOptionWarning, stacklevel=4,
            )
        W = float(w.sum())
        if not W > 0:
            raise ValueError(f"{fn}: D needs a positive sum of event weights; got {W}")
        mean = (w @ Z) / W
        cov = (Z * w[:, None]).T @ Z / W - np.outer(mean, mean)
        cov = (cov + cov.T) / 2
        lam, S = np.linalg.eigh(cov)
        tol = max(float(lam.max()), 0.0) * V * np.finfo(np.float64).eps * 10
        if lam.min() <= tol:
            flat = [int(j) for j in np.flatnonzero(np.diag(cov) <= tol)]
            what = (f"variables {flat[:10]}{' …' if len(flat) > 10 else ''} (0-based, in the flattened T·F "
                    f"order) are constant" if flat else "some variables are linear combinations of others")
            raise ValueError(
                f"{fn}: D needs an invertible covariance matrix of the training events, but {what}; TMVA's "
                f"decorrelation fails on them too: drop D, or the variables, from the inputs"
            )
        return {"kind": "D", "matrix": ((S / np.sqrt(lam)) @ S.T).tolist()}
    if kind == "G":
        xs_all, ps_all = [], []
        for j in range(Z.shape[1]):
            order = np.argsort(Z[:, j], kind="stable")
            xs, ws = Z[order, j], w[order]
            values, first = np.unique(xs, return_index=True)
            sums = np.add.reduceat(ws, first)
            cum = np.maximum.accumulate(np.cumsum(sums))
            total = cum[-1]
            if not total > 0:
                raise ValueError(f"{fn}: G needs a positive sum of event weights; got {total}")
            prob = (cum - sums / 2) / total  # mid-point of each value's step
            prob = np.maximum.accumulate(np.clip(prob, 0.0, 1.0))
            if len(values) > G_MAX_KNOTS:
                keep = np.unique(np.concatenate([
                    [0, len(values) - 1],
                    np.searchsorted(prob, np.linspace(prob[0], prob[-1], G_MAX_KNOTS)).clip(0, len(values) - 1),
                ]))
                values, prob = values[keep], prob[keep]
            xs_all.append(values.tolist())
            ps_all.append(prob.tolist())
        return {"kind": "G", "x": xs_all, "p": ps_all}
    return {"kind": "I"}


def _fit_step_present(kind: str, Z: np.ndarray, w: np.ndarray, spec: str, present: np.ndarray) -> dict:
    """N or G fitted variable by variable on the values that exist (``present``): N takes their
    min and max (0 and 0, the identity, for a variable no event has), G their distribution (a
    variable no event has maps to 0)."""
    if kind == "N":
        lo = np.where(present, Z, np.inf).min(axis=0)
        hi = np.where(present, Z, -np.inf).max(axis=0)
        none = ~present.any(axis=0)
        return {"kind": "N", "min": np.where(none, 0.0, lo).tolist(), "max": np.where(none, 0.0, hi).tolist()}
    if kind == "G":
        xs_all, ps_all = [], []
        for j in range(Z.shape[1]):
            rows = present[:, j]
            if not rows.any():
                xs_all.append([0.0])
                ps_all.append([0.5])
                continue
            one = _fit_step("G", Z[rows, j : j + 1], w[rows], spec)
            xs_all.append(one["x"][0])
            ps_all.append(one["p"][0])
        return {"kind": "G", "x": xs_all, "p": ps_all}
    return _fit_step(kind, Z, w, spec)


class VarTransform:
    """TMVA's ``VarTransform`` chain (module docstring): :meth:`fit` on the training events,
    :meth:`transform` any events of the same shape.

    Args:
        spec: the ``VarTransform`` value, e.g. ``"N"``, ``"D,G,N"``, ``"G_Signal"`` or ``"None"``.

    Attributes (after :meth:`fit`):
        shape_: one event's shape, ``(T, F)`` or ``(F,)``; steps_: the fitted steps (JSON-ready dicts).
    """

    def __init__(self, spec: str = "None"):
        self.steps = parse_var_transform(spec)
        self.spec = spec.strip()
        self.shape_: tuple[int, ...] | None = None
        self.steps_: list[dict] | None = None

    @property
    def fitted(self) -> bool:
        return self.steps_ is not None

    @property
    def n_variables(self) -> int | None:
        return None if self.shape_ is None else int(np.prod(self.shape_))

    def __repr__(self) -> str:
        state = f", fitted on {self.n_variables} variables" if self.fitted else ", not fitted"
        return f"VarTransform({self.spec!r}{state})"

    def _flat(self, fn: str, X) -> np.ndarray:
        X = v.float_array(fn, "X", X, np.ndim(X) if np.ndim(X) >= 2 else 2, "(n, T, F) or (n, F)")
        return X

    def fit(self, X, y=None, sample_weight=None, lengths=None) -> "VarTransform":
        """Fit every step on the events ``X (n, T, F)`` or ``(n, F)`` (``y``: 1 signal / 0
        background, needed for ``_Signal``/``_Background`` steps; ``sample_weight``: TMVA's event
        weights, used by D and G). Returns self.

        ``lengths (n,)`` (sequences of different lengths, :mod:`bptt.sequences`): the variables of
        step t of an event exist only when ``t < lengths[event]``, so each variable is fitted on
        the events where it is real (N: their min and max; G: their distribution; a variable no
        training event has is left as it is by N and mapped to 0 by G); padded values are never
        read. D needs every variable of every event (a covariance matrix) and is refused when an
        event has padded steps."""
        fn = f"VarTransform({self.spec!r}).fit"
        X = self._flat(fn, X)
        n = len(X)
        if n < 2:
            raise ValueError(f"{fn}: needs at least 2 training events (TMVA's minimum); got {n}")
        present = self._present(fn, X, lengths)
        Z = X.reshape(n, -1)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1)
        if len(w) != n or not np.all(np.isfinite(w)):
            raise ValueError(f"{fn}: sample_weight must hold {n} finite weights, one per event; got {np.shape(sample_weight)}")
        steps: list[dict] = []
        current = np.asarray(Z, np.float64) if present is None else np.where(present, Z.astype(np.float64), 0.0)
        for kind, cls in self.steps:
            mask = slice(None)
            if cls is not None:
                mask = self._class_mask(fn, kind, cls, y, n)
            if kind == "D" and present is not None:
                raise ValueError(
                    f"{fn}: D decorrelates the T·F variables of whole events, but lengths leave steps of some events "
                    f"padded (no value there): drop D from VarTransform, or train without lengths"
                )
            step = _fit_step(kind, current[mask], w[mask], self.spec, None if present is None else present[mask])
            steps.append(step)
            current = _apply_step(step, current)
        if not np.all(np.isfinite(current if present is None else current[present])):
            raise FloatingPointError(f"{fn}: the transformed training events hold NaN or Inf")
        self.shape_, self.steps_ = tuple(int(s) for s in X.shape[1:]), steps
        return self

    @staticmethod
    def _present(fn: str, X: np.ndarray, lengths) -> np.ndarray | None:
        """``(n, T·F)`` bool: the variables each event has (None: all of them)."""
        if lengths is None:
            return None
        if X.ndim != 3:
            raise ValueError(f"{fn}: lengths need events of shape (n, T, F); got X of shape {X.shape}")
        from .sequences import check_lengths, step_mask

        n, T, F = X.shape
        L = check_lengths(fn, lengths, n, T)
        if (L == T).all():
            return None
        return np.repeat(step_mask(L, T), F, axis=1)

    @staticmethod
    def _class_mask(fn: str, kind: str, cls: int, y, n: int) -> np.ndarray:
        """The events of class ``cls`` (1 signal, 0 background) for a step fitted on one class."""
        name = f"{kind}_{'Signal' if cls else 'Background'}"
        if y is None:
            raise ValueError(f"{fn}: the step {name} needs y (the classes)")
        labels = np.asarray(y)
        if labels.shape not in ((n,), (n, 1)):
            raise ValueError(
                f"{fn}: the step {name} fits on the events of one class and needs one class per event, y of shape "
                f"({n},); got y of shape {labels.shape} (per-step targets have no class per event: use _AllClasses)"
            )
        mask = labels.reshape(-1) == cls
        if int(np.sum(mask)) < 2:
            raise ValueError(f"{fn}: the step {kind} of class {cls} needs at least 2 events of that class")
        return mask

    def transform(self, X) -> np.ndarray:
        """The transformed events, the shape and dtype of ``X``; computed in float64, in chunks."""
        fn = f"VarTransform({self.spec!r}).transform"
        if self.steps_ is None:
            raise ValueError(f"{fn}: not fitted; call fit(X_train) first (bptt.tmva's training plan does it)")
        X = self._flat(fn, X)
        if tuple(X.shape[1:]) != self.shape_:
            raise ValueError(
                f"{fn}: X must have events of shape {self.shape_} ({self.n_variables} variables, the shape "
                f"seen in fit), i.e. (n, {', '.join(map(str, self.shape_))}); got shape {X.shape}"
            )
        if not self.steps_:
            return X
        flat = X.reshape(len(X), -1)
        out = np.empty(flat.shape, X.dtype)
        for i in range(0, len(flat), _CHUNK):
            Z = flat[i : i + _CHUNK].astype(np.float64)
            for step in self.steps_:
                Z = _apply_step(step, Z)
            out[i : i + _CHUNK] = Z
        return out.reshape(X.shape)

    def fit_transform(self, X, y=None, sample_weight=None) -> np.ndarray:
        return self.fit(X, y, sample_weight).transform(X)

    def affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(A (V, V), c (V,))`` with ``transform(x) = x A + c`` on flattened events when every
        step is linear (N, D, I); None when the chain holds G. (The ONNX export uses it.)"""
        if self.steps_ is None:
            raise ValueError(f"VarTransform({self.spec!r}).affine: not fitted")
        V = self.n_variables
        A, c = np.eye(V), np.zeros(V)
        for step in self.steps_:
            if step["kind"] == "N":
                scale, offset = _normalize_coefficients(np.asarray(step["min"]), np.asarray(step["max"]))
                A, c = A * scale, c * scale + offset
            elif step["kind"] == "D":
                M = np.asarray(step["matrix"]).T
                A, c = A @ M, c @ M
            elif step["kind"] == "G":
                return None
        return A, c

    # ── files

    def to_dict(self) -> dict:
        """A JSON-serialisable record (:meth:`from_dict` rebuilds the fitted transform)."""
        return {"spec": self.spec, "shape": None if self.shape_ is None else list(self.shape_), "steps": self.steps_}

    @classmethod
    def from_dict(cls, d: dict) -> "VarTransform":
        """The transform of :meth:`to_dict`, checked (a model file is data, never code)."""
        fn = "VarTransform.from_dict"
        if not isinstance(d, dict) or set(d) != {"spec", "shape", "steps"}:
            raise ValueError(f"{fn}: expected a dict with keys spec, shape, steps; got {d!r:.200}")
        t = cls(d["spec"])
        if d["steps"] is None:
            return t
        shape, steps = d["shape"], d["steps"]
        if not (isinstance(shape, list) and 1 <= len(shape) <= 2 and all(isinstance(s, int) and s > 0 for s in shape)):
            raise ValueError(f"{fn}: shape must be 1 or 2 positive integers; got {shape!r}")
        V = math.prod(shape)
        if not isinstance(steps, list) or [s.get("kind") if isinstance(s, dict) else None for s in steps] != [
            k for k, _ in t.steps
        ]:
            raise ValueError(f"{fn}: the fitted steps do not match VarTransform={t.spec}")
        for s in steps:
            _check_step(fn, s, V)
        t.shape_, t.steps_ = tuple(shape), steps
        return t


def _check_step(fn: str, s: dict, V: int) -> None:
    def vector(key, n=V):
        a = np.asarray(s.get(key), dtype=np.float64) if isinstance(s.get(key), list) else None
        if a is None or a.shape != (n,) or not np.all(np.isfinite(a)):
            raise ValueError(f"{fn}: step {s['kind']} needs {key!r}: {n} finite numbers")
        return a

    if s["kind"] == "N":
        lo, hi = vector("min"), vector("max")
        if np.any(hi < lo):
            raise ValueError(f"{fn}: step N has max < min")
    elif s["kind"] == "D":
        m = s.get("matrix")
        a = np.asarray(m, np.float64) if isinstance(m, list) and all(isinstance(r, list) for r in m) else None
        if a is None or a.shape != (V, V) or not np.all(np.isfinite(a)):
            raise ValueError(f"{fn}: step D needs 'matrix': {V}×{V} finite numbers")
    elif s["kind"] == "G":
        xs, ps = s.get("x"), s.get("p")
        if not (isinstance(xs, list) and isinstance(ps, list) and len(xs) == len(ps) == V):
            raise ValueError(f"{fn}: step G needs 'x' and 'p': one knot list per variable ({V})")
        for x, p in zip(xs, ps):
            x, p = np.asarray(x, np.float64), np.asarray(p, np.float64)
            if not (x.ndim == 1 and x.shape == p.shape and 1 <= len(x) <= G_MAX_KNOTS + 2
                    and np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)
                    and np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) >= 0)):
                raise ValueError(f"{fn}: step G's knots must be increasing x with probabilities p in [0, 1]")
    elif s["kind"] != "I":
        raise ValueError(f"{fn}: unknown step kind {s['kind']!r}")


def input_transform_from_config(config: dict):
    """The fitted input transformation a model configuration records
    (:meth:`bptt.model.Sequential.config`): a VarTransform (key ``"var_transform"``), a
    Standardizer (key ``"standardizer"``, also in model files written before VarTransform), or None."""
    if config.get("var_transform"):
        if config.get("standardizer"):
            raise ValueError("Sequential.from_config: a configuration holds either standardizer or var_transform, not both")
        return VarTransform.from_dict(config["var_transform"])
    if config.get("standardizer"):
        from .data.arrays import Standardizer

        return Standardizer.from_dict(config["standardizer"])
    return None
