"""Numeric kernels: loops over time and gate arithmetic. Arrays in, arrays out, no checking.

``reference`` holds the plain NumPy implementation, the one every other kernel is tested against.
"""

from . import activations, reference

__all__ = ["activations", "reference"]
