"""bptt: recurrent networks (LSTM, GRU, simple RNN) with backpropagation through time by hand.

Modules: :mod:`bptt.functional` (forward/backward primitives), :mod:`bptt.layers`,
:mod:`bptt.gradcheck` (finite-difference checks), :mod:`bptt.optim`, :mod:`bptt.init`;
:class:`bptt.Reader` (TMVA's Reader: score events and ROOT files with a trained model, from
:mod:`bptt.apply`, imported on first use).
"""

__version__ = "0.1.0"

from . import functional, gradcheck, init, layers, optim  # noqa: E402

__all__ = ["Reader", "functional", "gradcheck", "init", "layers", "optim", "__version__"]


def __getattr__(name: str):
    # bptt.Reader loads the network and uproot only when it is used, not on `import bptt`
    if name == "Reader":
        from .apply.reader import Reader

        return Reader
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")
