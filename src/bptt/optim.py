"""Optimizers. Each updates parameter arrays in place from gradient arrays of the same names.

Every optimizer follows PyTorch's update rule for the same hyperparameters (and has PyTorch's
defaults, except SGD's lr: 0.01 here, 1e-3 in ``torch.optim.SGD`` since torch 2.x), so a model trained here and one trained with ``torch.optim`` from the same gradients
take the same steps (the test suite checks this to 1e-12 in float64).

=============  ===========================================================================
class          update of a parameter p with gradient g (all operations elementwise)
=============  ===========================================================================
``SGD``        b ← μ b + g (b = g on the first step);  p ← p − lr · (g + μ b if nesterov else b)
``Adam``       m ← β₁ m + (1−β₁) g;  v ← β₂ v + (1−β₂) g²;  m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);
               p ← p − lr · m̂ / (√v̂ + ε)
``Adagrad``    s ← s + g²;  p ← p − lr · g / (√s + ε)
``RMSprop``    a ← α a + (1−α) g²;  ā ← α ā + (1−α) g (centered);  d = √(a − ā²) + ε (centered)
               or √a + ε;  b ← μ b + g/d, p ← p − lr · b (momentum μ > 0) or p ← p − lr · g/d
``Adadelta``   a ← ρ a + (1−ρ) g²;  Δ = √(u + ε)/√(a + ε) · g;  u ← ρ u + (1−ρ) Δ²;  p ← p − lr · Δ
=============  ===========================================================================

The per-parameter state is keyed by the parameter's name (names are unique model-wide, such as
``"0.W"``); :meth:`Optimizer.state_dict` flattens it to ``{"<slot>/<name>": array}`` plus the
step counter ``"step"``, a flat ``str → ndarray`` dict that safetensors can save, and
:meth:`Optimizer.config` with :func:`make_optimizer` rebuilds the optimizer itself.

Example::

    >>> import numpy as np
    >>> params = {"0.W": np.ones((2, 2)), "0.b": np.zeros(2)}
    >>> grads = {"0.W": np.full((2, 2), 0.5), "0.b": np.ones(2)}
    >>> opt = make_optimizer("adam", lr=0.1)
    >>> opt.step(params, grads)
    >>> round(float(params["0.W"][0, 0]), 6), sorted(opt.state_dict())   # Adam's first step ≈ lr
    (0.9, ['m/0.W', 'm/0.b', 'step', 't/0.W', 't/0.b', 'v/0.W', 'v/0.b'])
    >>> twin = make_optimizer(**opt.config()); twin.load_state_dict(opt.state_dict())
    >>> twin
    Adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-08)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "Adagrad", "RMSprop", "Adadelta", "make_optimizer", "OPTIMIZERS"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _number(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{fn}: {name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite; got {value!r}")
    return value


def _positive(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{fn}: {name} must be a positive finite number; got {value!r}")
    return float(value)


def _unit(fn: str, name: str, value) -> float:
    """A number in [0, 1)."""
    value = _number(fn, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{fn}: {name} must be in [0, 1); got {value!r}")
    return value


def _flag(fn: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{fn}: {name} must be True or False; got {value!r}")
    return bool(value)


class Optimizer:
    """Base class: ``step(params, grads)`` updates every ``params[k]`` in place from ``grads[k]``.

    Subclasses set ``name``, ``slots`` (the names of their per-parameter state arrays) and
    implement ``_update(p, g, state, t)`` for one parameter, where ``state`` maps slot names to
    that parameter's arrays (empty on its first step) and ``t`` is its step number (1 on the first).

    State is kept in each parameter's dtype (float32 or float64). Attributes: ``lr`` and the other
    hyperparameters (set in ``__init__`` only), ``iterations`` (number of ``step`` calls) and
    ``state`` (``{param name: {slot: array}}``).
    """

    name: str = ""
    slots: tuple[str, ...] = ()

    def __init__(self, lr: float):
        self.lr = _positive(type(self).__name__, "lr", lr)
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._steps: dict[str, int] = {}

    # --- the update -------------------------------------------------------------------------
    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update each ``params[k]`` in place from ``grads[k]`` (every key of params must be in grads)."""
        fn = f"{type(self).__name__}.step"
        for k, p in params.items():
            if k not in grads:
                raise ValueError(f"{fn}: grads has no entry for parameter {k!r}; got grads for {sorted(grads)}")
            g = grads[k]
            if not isinstance(p, np.ndarray) or p.dtype not in _FLOAT_DTYPES:
                raise ValueError(f"{fn}: params[{k!r}] must be a float32 or float64 NumPy array; got {type(p).__name__}"
                                 + (f" of dtype {p.dtype}" if isinstance(p, np.ndarray) else ""))
            if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
                got = f"shape {g.shape}, dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(
                    f"{fn}: grads[{k!r}] must be an array of the parameter's shape {p.shape} and dtype {p.dtype}; got {got}"
                )
            state = self.state.get(k)
            if state:
                for slot, a in state.items():
                    if a.shape != p.shape:
                        raise ValueError(
                            f"{fn}: the optimizer state {slot}/{k} has shape {a.shape} but the parameter has {p.shape}; "
                            f"was the state loaded from another model?"
                        )
                    if a.dtype != p.dtype:  # the model was converted with astype: follow it
                        state[slot] = a.astype(p.dtype)
        self.iterations += 1
        for k, p in params.items():
            t = self._steps.get(k, 0) + 1
            self._steps[k] = t
            self._update(p, grads[k], self.state.setdefault(k, {}), t)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], t: int) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    # --- saving and resuming ----------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume exactly, as a flat ``str → ndarray`` dict (copies).

        Keys: ``"step"`` (0-d int64, the number of ``step`` calls), ``"<slot>/<param>"`` for each
        state array, and ``"t/<param>"`` (0-d int64) for each parameter's own step count.
        """
        out: dict[str, np.ndarray] = {"step": np.array(self.iterations, np.int64)}
        for k, slots in self.state.items():
            for slot, a in slots.items():
                out[f"{slot}/{k}"] = a.copy()
        for k, t in self._steps.items():
            out[f"t/{k}"] = np.array(t, np.int64)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied)."""
        fn = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise ValueError(f"{fn}: state must be a dict of arrays from state_dict(); got {type(state).__name__}")
        if "step" not in state:
            raise ValueError(f"{fn}: state has no 'step' entry; pass a dict returned by state_dict()")
        slots: dict[str, dict[str, np.ndarray]] = {}
        steps: dict[str, int] = {}
        for key, value in state.items():
            if key == "step":
                continue
            slot, sep, name = key.partition("/")
            if not sep or not name:
                raise ValueError(f"{fn}: unknown key {key!r}; expected 'step' or '<slot>/<parameter name>'")
            if slot == "t":
                steps[name] = self._count(fn, key, value)
            elif slot in self.slots:
                a = np.array(value)
                if a.dtype not in _FLOAT_DTYPES:
                    raise ValueError(f"{fn}: {key} must be a float32 or float64 array; got dtype {a.dtype}")
                slots.setdefault(name, {})[slot] = a
            else:
                valid = ", ".join(repr(s) for s in self.slots + ("t",))
                raise ValueError(
                    f"{fn}: key {key!r} has slot {slot!r}, which {type(self).__name__} does not keep "
                    f"(its slots: {valid}); was the state saved from another optimizer?"
                )
        self.iterations = self._count(fn, "step", state["step"])
        self.state = slots
        self._steps = steps

    @staticmethod
    def _count(fn: str, key: str, value) -> int:
        a = np.asarray(value)
        if a.size != 1 or a.dtype.kind not in "iu" or int(a.reshape(-1)[0]) < 0:
            raise ValueError(f"{fn}: {key} must be a non-negative integer counter (0-d or 1-element array); got {value!r}")
        return int(a.reshape(-1)[0])

    def config(self) -> dict:
        """The name and every hyperparameter, JSON-serialisable; ``make_optimizer(**config())`` rebuilds."""
        return {"name": self.name, **self._hyper()}

    def _hyper(self) -> dict:
        raise NotImplementedError  # pragma: no cover - abstract

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self._hyper().items()) + ")"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as ``torch.optim.SGD``.

        b ← μ b + g   (b = g on the first step)
        p ← p − lr · b                 (momentum)
        p ← p − lr · (g + μ b)         (nesterov=True)
        p ← p − lr · g                 (momentum = 0, the default)

    Args:
        lr: learning rate > 0 (default 0.01; recent torch.optim.SGD defaults to 1e-3).
        momentum: μ in [0, 1) (default 0).
        nesterov: Nesterov momentum (default False; needs momentum > 0).

    Example::

        >>> import numpy as np
        >>> p = {"W": np.array([1.0, 2.0])}
        >>> SGD(lr=0.1).step(p, {"W": np.array([10.0, -10.0])})
        >>> p["W"]
        array([0., 3.])
    """

    name = "sgd"
    slots = ("momentum_buffer",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        self.momentum = _unit("SGD", "momentum", momentum)
        self.nesterov = _flag("SGD", "nesterov", nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0; got momentum=0.0")

    def _hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, p, g, state, t):
        if self.momentum == 0.0:
            p -= self.lr * g
            return
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.copy()
        else:
            buf *= self.momentum
            buf += g
        d = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``.

        m ← β₁ m + (1−β₁) g          v ← β₂ v + (1−β₂) g²
        p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)

    (ε is added to √v̂, as PyTorch and the paper do; t counts this parameter's steps.)

    Args:
        lr (1e-3), beta1 (0.9), beta2 (0.999): each β in [0, 1); eps (1e-8) > 0.

    Example::

        >>> import numpy as np
        >>> p = {"w": np.array([1.0])}
        >>> Adam(lr=0.01).step(p, {"w": np.array([3.0])})   # the first step moves each weight by ≈ lr
        >>> p["w"]
        array([0.99])
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1 = _unit("Adam", "beta1", beta1)
        self.beta2 = _unit("Adam", "beta2", beta2)
        self.eps = _positive("Adam", "eps", eps)

    def _hyper(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, p, g, state, t):
        if not state:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        step_size = self.lr / (1.0 - self.beta1**t)
        denom = np.sqrt(v)
        denom /= (1.0 - self.beta2**t) ** 0.5
        denom += self.eps
        p -= step_size * (m / denom)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

        s ← s + g²  (s starts at initial_accumulator_value)      p ← p − lr · g / (√s + ε)

    Args:
        lr (0.01) > 0; eps (1e-10) > 0; initial_accumulator_value (0) ≥ 0.
    """

    name = "adagrad"
    slots = ("sum",)

    def __init__(self, lr: float = 0.01, eps: float = 1e-10, initial_accumulator_value: float = 0.0):
        super().__init__(lr)
        self.eps = _positive("Adagrad", "eps", eps)
        self.initial_accumulator_value = _number("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        if self.initial_accumulator_value < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0; got {initial_accumulator_value!r}")

    def _hyper(self):
        return {"lr": self.lr, "eps": self.eps, "initial_accumulator_value": self.initial_accumulator_value}

    def _update(self, p, g, state, t):
        if not state:
            state["sum"] = np.full_like(p, self.initial_accumulator_value)
        s = state["sum"]
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        p -= self.lr * (g / std)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012), with optional momentum and centering, as ``torch.optim.RMSprop``.

        a ← α a + (1−α) g²
        ā ← α ā + (1−α) g;   d = √(a − ā²) + ε         (centered=True)
                              d = √a + ε                (centered=False, the default)
        b ← μ b + g / d;     p ← p − lr · b            (momentum μ > 0; b starts at 0)
                              p ← p − lr · g / d        (momentum = 0, the default)

    Args:
        lr (0.01) > 0; alpha (0.99) in [0, 1); eps (1e-8) > 0; momentum (0) in [0, 1);
        centered (False).
    """

    name = "rmsprop"
    slots = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0, centered: bool = False):
        super().__init__(lr)
        self.alpha = _unit("RMSprop", "alpha", alpha)
        self.eps = _positive("RMSprop", "eps", eps)
        self.momentum = _unit("RMSprop", "momentum", momentum)
        self.centered = _flag("RMSprop", "centered", centered)

    def _hyper(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum, "centered": self.centered}

    def _update(self, p, g, state, t):
        if not state:
            state["square_avg"] = np.zeros_like(p)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
        a = state["square_avg"]
        a *= self.alpha
        a += (1.0 - self.alpha) * (g * g)
        if self.centered:
            ga = state["grad_avg"]
            ga *= self.alpha
            ga += (1.0 - self.alpha) * g
            # a ≥ ā² in exact arithmetic; the clamp only stops rounding from making a NaN
            # (torch would return NaN there), so it changes nothing elsewhere.
            d = np.sqrt(np.maximum(a - ga * ga, 0.0))
        else:
            d = np.sqrt(a)
        d += self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / d
            p -= self.lr * buf
        else:
            p -= self.lr * (g / d)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

        a ← ρ a + (1−ρ) g²
        Δ = √(u + ε) / √(a + ε) · g
        u ← ρ u + (1−ρ) Δ²
        p ← p − lr · Δ

    Args:
        lr (1.0) > 0; rho (0.9) in [0, 1); eps (1e-6) > 0.
    """

    name = "adadelta"
    slots = ("square_avg", "acc_delta")

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6):
        super().__init__(lr)
        self.rho = _unit("Adadelta", "rho", rho)
        self.eps = _positive("Adadelta", "eps", eps)

    def _hyper(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}

    def _update(self, p, g, state, t):
        if not state:
            state["square_avg"], state["acc_delta"] = np.zeros_like(p), np.zeros_like(p)
        a, u = state["square_avg"], state["acc_delta"]
        a *= self.rho
        a += (1.0 - self.rho) * (g * g)
        delta = np.sqrt(u + self.eps)
        delta /= np.sqrt(a + self.eps)
        delta *= g
        u *= self.rho
        u += (1.0 - self.rho) * (delta * delta)
        p -= self.lr * delta


#: Optimizer names (for :func:`make_optimizer`) → classes.
OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Adam, Adagrad, RMSprop, Adadelta)}


def make_optimizer(name: str, **hyper) -> Optimizer:
    """The optimizer called ``name`` (case-insensitive: sgd, adam, adagrad, rmsprop, adadelta).

    ``hyper`` are its hyperparameters (see each class); ``make_optimizer(**opt.config())``
    rebuilds ``opt`` (without its state: use ``load_state_dict`` for that).

    Example::

        >>> make_optimizer("RMSprop", lr=0.001, momentum=0.9)
        RMSprop(lr=0.001, alpha=0.99, eps=1e-08, momentum=0.9, centered=False)
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in OPTIMIZERS:
        raise ValueError(f"make_optimizer: name must be one of {', '.join(OPTIMIZERS)} (case-insensitive); got {name!r}")
    cls = OPTIMIZERS[key]
    allowed = tuple(cls().config())[1:]
    unknown = sorted(set(hyper) - set(allowed))
    if unknown:
        raise ValueError(
            f"make_optimizer: {cls.__name__} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"its hyperparameters are {', '.join(allowed)}"
        )
    return cls(**hyper)
