"""Plain NumPy loops over time for the LSTM, GRU and simple RNN: the reference kernels.

These are the kernels every faster implementation is tested against, so they are written to be
read. Arrays are **time-major** here (``(T, B, ·)``), so that each step's slice is contiguous;
``bptt.functional`` transposes at its boundary. Nothing is validated: arrays in, arrays out.

Layout of every cell (the TMVA ``CellForward`` / ``CellBackward`` pair):

* the input projection of all steps, ``xw = x W + b`` (one GEMM), is done by the caller before
  the forward loop; the weight gradients ``dW = xᵀ dz``, ``dU = h_prevᵀ dz`` (one GEMM each) by the
  caller after the backward loop;
* the forward loop does, per step, the recurrent product and the gate arithmetic, and stores what
  the backward loop needs;
* the backward loop walks the steps in reverse and undoes the forward stages in the opposite
  order. Each backward stage carries the label of the forward stage it differentiates, so the
  two can be read against each other.

One module per cell, :mod:`.lstm`, :mod:`.gru`, :mod:`.rnn`, each beside bptt.kernels.fast's module
of the same cell, whose drivers have the same names (``<cell>_forward_loop``,
``<cell>_backward_loop``) and whose step kernels carry the same stage labels.
"""

from . import gru, lstm, rnn
from .gru import gru_backward_loop, gru_forward_loop
from .lstm import lstm_backward_loop, lstm_forward_loop
from .rnn import rnn_backward_loop, rnn_forward_loop

__all__ = ["lstm", "gru", "rnn", "lstm_forward_loop", "lstm_backward_loop", "gru_forward_loop", "gru_backward_loop",
           "rnn_forward_loop", "rnn_backward_loop"]
