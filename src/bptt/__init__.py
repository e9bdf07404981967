"""bptt: recurrent networks (LSTM, GRU, simple RNN) with backpropagation through time by hand.

Modules: :mod:`bptt.functional` (forward/backward primitives), :mod:`bptt.layers`,
:mod:`bptt.gradcheck` (finite-difference checks), :mod:`bptt.optim`, :mod:`bptt.init`.
"""

__version__ = "0.1.0"

from . import functional, gradcheck, init, layers, optim  # noqa: E402

__all__ = ["functional", "gradcheck", "init", "layers", "optim", "__version__"]
