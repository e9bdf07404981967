"""Weight initialisers. Each takes a shape, a ``numpy.random.Generator`` and a dtype.

Row-vector convention (``z = x W + b``): a weight ``W`` has shape ``(fan_in, fan_out)``, so
``fan_in = shape[0]`` and ``fan_out = shape[-1]`` (for a 1-D shape both are ``shape[0]``).

=====================  =====================================================================
name                   distribution
=====================  =====================================================================
``glorot_uniform``     U(−a, a),  a = √(6 / (fan_in + fan_out))       (Glorot & Bengio 2010)
``glorot_normal``      N(0, σ²),  σ = √(2 / (fan_in + fan_out))       (same variance as above)
``gaussian``           N(0, σ²),  σ = √(2 / fan_in)  by default       (TMVA ``GAUSS``)
``uniform``            U(−a, a),  a = √(2 / fan_in)  by default       (TMVA ``UNIFORM``)
``tmva_xavier``        N(0, σ²) truncated at 2σ, σ = √(6 / (fan_in + fan_out))   (TMVA ``XAVIER``)
``orthogonal``         orthonormal rows or columns                    (Saxe et al. 2014)
``identity``           1 on the diagonal, 0 elsewhere                 (TMVA ``IDENTITY``)
``zeros``              0
=====================  =====================================================================

:func:`get_initializer` turns a name (ours, the ``xavier_*`` aliases, or TMVA's
``WeightInitialization`` names ``XAVIER``, ``XAVIERUNIFORM``, ``GAUSS``, ``UNIFORM``, ``IDENTITY``,
``ZERO``) into a callable ``f(shape, rng, dtype)``.

TMVA's names mean TMVA's distributions, as ``TCpu::Initialize*`` draws them
(``tmva/tmva/src/DNN/Architectures/Cpu/Initialization.hxx``). TMVA stores a weight matrix as
``(out, in)``; its ``n`` (columns) is our ``fan_in = shape[0]`` and its ``m`` (rows) our
``fan_out = shape[-1]``. TMVA gives every weight matrix of a layer (a dense layer's one; a
recurrent layer's input and state matrix of each gate) the chosen initialisation and every bias
0; :func:`initialize_blocks` applies an initialiser gate block by gate block, as TMVA's per-gate
matrices have it.

Example::

    >>> import numpy as np
    >>> f = get_initializer("XAVIERUNIFORM")          # TMVA's name for glorot_uniform
    >>> W = f((30, 40), np.random.default_rng(0), np.float32)
    >>> W.shape, W.dtype, bool(np.abs(W).max() <= np.sqrt(6 / 70))
    ((30, 40), dtype('float32'), True)
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "zeros",
    "glorot_uniform",
    "glorot_normal",
    "gaussian",
    "uniform",
    "orthogonal",
    "recurrent_orthogonal",
    "tmva_xavier",
    "identity",
    "initialize_blocks",
    "get_initializer",
    "INITIALIZERS",
    "TMVA_NAMES",
]


def _fans(shape) -> tuple[int, int]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return int(shape[0]), int(shape[-1])


def _scale(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{fn}: {name} must be a positive finite number; got {value!r}")
    return float(value)


def zeros(shape, rng=None, dtype=np.float32) -> np.ndarray:
    """All zeros (TMVA ``ZERO``); ``rng`` is ignored (accepted so every initialiser has one signature)."""
    return np.zeros(shape, dtype)


def glorot_uniform(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(−a, a) with a = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); fan_in = shape[0].

    Variance a²/3 = 2 / (fan_in + fan_out). TMVA ``XAVIERUNIFORM``, ``torch.nn.init.xavier_uniform_``.
    """
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, σ²) with σ = √(2 / (fan_in + fan_out)); fan_in = shape[0], fan_out = shape[-1].

    The same variance as :func:`glorot_uniform`, untruncated, as ``torch.nn.init.xavier_normal_``.
    (Keras truncates at 2σ; TMVA's ``XAVIER`` is :func:`tmva_xavier`, a different width.)

    Example::

        >>> import numpy as np
        >>> W = glorot_normal((200, 300), np.random.default_rng(0), np.float64)
        >>> round(float(W.std() / np.sqrt(2 / 500)), 2)
        1.0
    """
    fan_in, fan_out = _fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return (rng.standard_normal(size=shape) * std).astype(dtype)


def gaussian(shape, rng: np.random.Generator, dtype=np.float32, std: float | None = None) -> np.ndarray:
    """N(0, std²); by default std = √(2 / fan_in), fan_in = shape[0].

    The default is TMVA's ``GAUSS`` (``TCpu::InitializeGauss``: σ = √(2/n) with n the number of
    input columns of its ``(out, in)`` weight matrix), which is also He-normal initialisation
    (He et al. 2015). Pass ``std`` to choose the width yourself.

    Example::

        >>> import numpy as np
        >>> gaussian((3, 2), np.random.default_rng(0), np.float64, std=0.1).shape
        (3, 2)
    """
    fan_in, _ = _fans(shape)
    std = np.sqrt(2.0 / fan_in) if std is None else _scale("gaussian", "std", std)
    return (rng.standard_normal(size=shape) * std).astype(dtype)


def uniform(shape, rng: np.random.Generator, dtype=np.float32, limit: float | None = None) -> np.ndarray:
    """U(−limit, limit); by default limit = √(2 / fan_in), fan_in = shape[0] (TMVA ``UNIFORM``,
    ``TCpu::InitializeUniform``). Pass ``limit`` to choose the range yourself."""
    fan_in, _ = _fans(shape)
    limit = np.sqrt(2.0 / fan_in) if limit is None else _scale("uniform", "limit", limit)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def tmva_xavier(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """TMVA's ``XAVIER`` (``TCpu::InitializeGlorotNormal``): N(0, σ²) with
    σ = √(6 / (fan_in + fan_out)), every value beyond 2σ drawn again (a normal truncated at ±2σ,
    whose standard deviation is 0.880 σ). Note TMVA's σ: √6, not the √2 of :func:`glorot_normal`.

    Example::

        >>> import numpy as np
        >>> W = tmva_xavier((30, 10), np.random.default_rng(0), np.float64)
        >>> bool(np.abs(W).max() <= 2 * np.sqrt(6 / 40))
        True
    """
    fan_in, fan_out = _fans(shape)
    sigma = math.sqrt(6.0 / (fan_in + fan_out))
    values = rng.standard_normal(size=shape) * sigma
    bad = np.abs(values) > 2 * sigma
    while bad.any():  # about 4.6 % of the draws each round
        values[bad] = rng.standard_normal(size=int(bad.sum())) * sigma
        bad = np.abs(values) > 2 * sigma
    return values.astype(dtype)


def identity(shape, rng=None, dtype=np.float32) -> np.ndarray:
    """1 at ``[i, i]`` for ``i < min(rows, cols)``, 0 elsewhere (TMVA ``IDENTITY``,
    ``TCpu::InitializeIdentity``; a 1-D shape, a bias, is all zeros). ``rng`` is ignored.

    >>> identity((2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(shape) != 2:
        return np.zeros(shape, dtype)
    return np.eye(shape[0], shape[1], dtype=dtype)


def initialize_blocks(fn: Callable[..., np.ndarray], shape, blocks: int, rng: np.random.Generator,
                      dtype=np.float32) -> np.ndarray:
    """``fn`` applied to each of ``blocks`` equal column blocks of a ``(rows, blocks·k)`` weight,
    each block on its own ``(rows, k)`` shape (so with its own fan_out ``k``): a recurrent layer's
    ``W (I, G·H)`` and ``U (H, G·H)`` as TMVA's per-gate ``(H, I)`` and ``(H, H)`` matrices.

    >>> initialize_blocks(identity, (2, 4), 2, None).tolist()
    [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    """
    rows, cols = shape
    if blocks < 1 or cols % blocks:
        raise ValueError(f"initialize_blocks: {cols} columns do not split into blocks={blocks!r} equal blocks")
    k = cols // blocks
    return np.concatenate([fn((rows, k), rng, dtype) for _ in range(blocks)], axis=1)


def orthogonal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """A matrix with orthonormal rows or columns (Saxe et al. 2014), from the QR of a Gaussian."""
    if len(shape) != 2:
        raise ValueError(f"orthogonal: shape must be 2-D (rows, cols); got {tuple(shape)}")
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique, hence uniformly distributed
    return (q if rows >= cols else q.T).astype(dtype)


def recurrent_orthogonal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """For a state weight ``U (H, G·H)``: each gate's ``(H, H)`` block orthogonal on its own."""
    H, GH = shape
    return np.concatenate([orthogonal((H, H), rng, dtype) for _ in range(GH // H)], axis=1)


#: Our initialiser names → functions ``f(shape, rng, dtype)``.
INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "gaussian": gaussian,
    "uniform": uniform,
    "zeros": zeros,
    "orthogonal": orthogonal,
    "tmva_xavier": tmva_xavier,
    "identity": identity,
}

#: TMVA ``WeightInitialization=`` option values → our names.
TMVA_NAMES = {
    "xavier": "tmva_xavier",
    "xavieruniform": "glorot_uniform",
    "gauss": "gaussian",
    "uniform": "uniform",
    "identity": "identity",
    "zero": "zeros",
}


def _lookup(fn: str, arg: str, name) -> Callable[..., np.ndarray]:
    """The initialiser called ``name`` (case-insensitive), or ValueError from ``fn`` about ``arg``."""
    key = name.lower() if isinstance(name, str) else None
    key = TMVA_NAMES.get(key, key)
    if key not in INITIALIZERS:
        valid = sorted(INITIALIZERS) + [n.upper() for n in sorted(TMVA_NAMES)]
        raise ValueError(f"{fn}: {arg} must be one of {', '.join(valid)} (case-insensitive); got {name!r}")
    return INITIALIZERS[key]


def get_initializer(name: str) -> Callable[..., np.ndarray]:
    """The initialiser ``f(shape, rng, dtype)`` called ``name`` (case-insensitive).

    Accepts our names (``glorot_uniform``, ``glorot_normal``, ``xavier_uniform``,
    ``xavier_normal``, ``gaussian``, ``uniform``, ``zeros``, ``orthogonal``, ``tmva_xavier``,
    ``identity``) and TMVA's ``WeightInitialization`` names: ``XAVIER`` → tmva_xavier,
    ``XAVIERUNIFORM`` → glorot_uniform, ``GAUSS`` → gaussian, ``UNIFORM`` → uniform,
    ``IDENTITY`` → identity, ``ZERO`` → zeros.

    Example::

        >>> get_initializer("GAUSS") is gaussian, get_initializer("Xavier") is tmva_xavier
        (True, True)
    """
    return _lookup("get_initializer", "name", name)
