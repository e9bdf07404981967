"""Numeric kernels: loops over time and gate arithmetic. Arrays in, arrays out, no checking.

``reference`` (one module per cell: ``reference/lstm.py``, ``gru.py``, ``rnn.py``) holds the plain
NumPy implementation, the one every other kernel is tested against; ``fast`` (``fast/lstm.py``, …,
imported on first use, as it loads Numba) the fused kernels with the same function names, beside
the machinery they compile in: ``microkernel``, ``blas`` and ``sync``.
"""

from . import activations, reference

__all__ = ["activations", "reference"]
