"""Fused Numba kernels for the LSTM, GRU and simple RNN: the fast path behind ``bptt.functional``.

One module per cell, beside bptt.kernels.reference's module of the same cell and with its names:

* :mod:`.lstm`, :mod:`.gru`, :mod:`.rnn`: the cell's step kernels ``<cell>_cell_forward`` /
  ``<cell>_cell_backward`` (the stages of the reference, with its labels, in the same order) and
  its loop drivers ``<cell>_forward_loop`` / ``<cell>_backward_loop`` and their variants;
* :mod:`.common`: what the cells share: the float32 activations, the finite check, the recurrent
  product, the dot tiles of the weight gradients, the layout copies;
* :mod:`.packed`: what the cells' loops over the packed layout of calls with ``lengths=`` share;
* :mod:`.packing`: that layout's tables, the packing of inputs into it and the unpacking of
  outputs out of it (compiled into no cell: one compiled call per step of the bookkeeping).

They compile in the micro-kernel (bptt.kernels.microkernel), NumPy's BLAS by address
(bptt.kernels.blas) and the step flags of two threads (bptt.kernels.sync). Every kernel is
re-exported here: ``fast.lstm_forward_loop`` is ``fast.lstm.lstm_forward_loop``.

Layout. Every per-step array is stored **feature-major**, ``(features, T, B)`` (but for the
caller's batch-major ``dh (B, T, H)``, which the backward loops read as it is), and the states
carry one extra leading step, ``h (H, T + 1, B)`` with ``h[:, 0] = h0`` (likewise ``c``): step ``t``
reads slot ``t`` and writes slot ``t + 1``. So

* the gate arithmetic of one step runs over contiguous rows of the batch, vectorised (the batch
  is ≥ 32 on every benchmark row, where H may be as small as 10);
* the input projection of all steps is part of each step's product over the stacked
  ``[x_t; h_{t-1}]`` (``bptt.functional._projection_in_loop``), or, where the hand-written
  product runs the loop, one GEMM before it, ``Wᵀ (G·H, I) @ Xᵀ (I, T·B)``;
* the weight gradients are one GEMM each after the reverse loop: ``dWᵀ = dz (G·H, T·B) @ X``,
  ``dUᵀ = dz (G·H, T·B) @ h[:, :T]ᵀ`` — the first T state slots are h_0 … h_{T-1}.

Kernels index the full 3-D arrays with the step (never 2-D slices, whose unknown strides would
stop LLVM from vectorising), and each inner loop over the batch touches few arrays (beyond a
handful LLVM gives up proving that they do not overlap, and the loop stays scalar): a cell's
arithmetic is split into short passes over the same cached row.

Each cell has a *step* kernel pair (forward and backward, the stages of its reference module in
the same order) and one driver per direction, ``*_forward_loop`` / ``*_backward_loop``, that runs
the whole time loop in one compiled call over the batch columns ``[b0, b1)`` (the sequences are
independent in the loop: ``bptt.functional`` may run two parts on two threads; the step kernels,
for the Python loop, take the whole batch). The forward drivers ``*_units`` instead run as one of
two threads that split the hidden units, meeting after every step (bptt.kernels.sync), and the
LSTM's inference drivers read a time-major ``(T + 1, I + H, B)`` stack. Each driver's recurrent
product (:func:`.common._product`) is

* a hand-written loop vectorised over the batch for small sizes, where a BLAS call per step costs
  more than the product itself;
* bptt's own float32 micro-kernel (``bptt.kernels.microkernel``), where ``bptt.functional``
  chooses it and the shapes suit it;
* NumPy's own BLAS GEMM, called by address from the compiled loop (``bptt.kernels.blas``), for
  the rest: no Python per step, and the LSTM's product accumulates straight into the step's gates.

Where no BLAS symbol can be called, ``bptt.functional`` runs the step kernels from a Python loop
with one ``np.matmul`` per step instead.

Variable lengths. With ``lengths=`` (or ``reverse=True``) the loops run over *packed sequences*
(bptt.functional._packed; the layout is described in :mod:`.packed`): only
the real steps stored, each step's running sequences contiguous, ``(features, N)``. Their drivers
``*_forward_packed`` / ``*_backward_packed`` run one part of the batch each and call the cells'
``*_at`` forms, which index 2-D arrays from a first column per array (the step's block, the next
block, the running columns). The padded loops keep their own cells over ``(·, T + 1, B)`` slots:
under ``fastmath``, LLVM reassociates a cell's arithmetic by how much it can prove about which
arrays a pass reads and writes, and the slot form is the one whose backward gives the same bits
whether it writes dz and dc over the cache or into new arrays (``keep_cache``), which
tests/kernels/test_backends.py holds it to; the column form, with the bases only known at run
time, did not (one ulp apart), so each layout has its cells.

Compiled code is cached on disk (``cache=True``): a new process loads it instead of compiling.
Numba checks only the file a function is defined in, so each module records a fingerprint of the
modules compiled into it (``COMPILED_DEPENDENCIES``, bptt.kernels.fingerprint).
"""

from . import common, gru, lstm, packed, packing, rnn
from .common import (ACTIVATION_CODES, BLOCKS_MAX_BATCH, BLOCKS_MAX_FEATURES, NT_BLOCK, PROJECT_BLOCK_BYTES,
                     _has_non_finite, activate_sigmoid, activate_tanh, add_into, all_finite, from_feature_major,
                     nt_product, project, sigmoid_, tanh_, to_feature_major, transpose_into)
from .packing import from_running, pack_inputs, pack_states, packed_layout, rows_finite, to_running, unpack_real
from .gru import (gru_backward_loop, gru_backward_packed, gru_cell_backward, gru_cell_backward_before_r,
                  gru_cell_forward_after, gru_cell_forward_before_n, gru_cell_forward_before_rz, gru_forward_loop,
                  gru_forward_loop_units, gru_forward_packed, gru_step_backward, gru_step_backward_before_r,
                  gru_step_forward_after, gru_step_forward_before_n, gru_step_forward_before_rz)
from .lstm import (lstm_backward_loop, lstm_backward_packed, lstm_cell_backward, lstm_cell_forward,
                   lstm_cell_forward_inference, lstm_forward_loop, lstm_forward_loop_units, lstm_forward_packed,
                   lstm_inference_loop, lstm_inference_loop_units, lstm_step_backward, lstm_step_forward)
from .rnn import (rnn_backward_loop, rnn_backward_packed, rnn_cell_backward, rnn_cell_forward, rnn_forward_loop,
                  rnn_forward_loop_units, rnn_forward_packed, rnn_step_backward, rnn_step_forward)

__all__ = [
    "common", "lstm", "gru", "rnn", "packed", "packing",
    # common
    "ACTIVATION_CODES", "BLOCKS_MAX_BATCH", "BLOCKS_MAX_FEATURES", "NT_BLOCK", "PROJECT_BLOCK_BYTES",
    "activate_sigmoid", "activate_tanh", "add_into", "all_finite", "from_feature_major", "nt_product", "project",
    "sigmoid_", "tanh_", "to_feature_major", "transpose_into",
    # packing
    "from_running", "pack_inputs", "pack_states", "packed_layout", "rows_finite", "to_running", "unpack_real",
    # lstm
    "lstm_backward_loop", "lstm_backward_packed", "lstm_cell_backward", "lstm_cell_forward",
    "lstm_cell_forward_inference", "lstm_forward_loop", "lstm_forward_loop_units", "lstm_forward_packed",
    "lstm_inference_loop", "lstm_inference_loop_units", "lstm_step_backward", "lstm_step_forward",
    # gru
    "gru_backward_loop", "gru_backward_packed", "gru_cell_backward", "gru_cell_backward_before_r",
    "gru_cell_forward_after", "gru_cell_forward_before_n", "gru_cell_forward_before_rz", "gru_forward_loop",
    "gru_forward_loop_units", "gru_forward_packed", "gru_step_backward", "gru_step_backward_before_r",
    "gru_step_forward_after", "gru_step_forward_before_n", "gru_step_forward_before_rz",
    # rnn
    "rnn_backward_loop", "rnn_backward_packed", "rnn_cell_backward", "rnn_cell_forward", "rnn_forward_loop",
    "rnn_forward_loop_units", "rnn_forward_packed", "rnn_step_backward", "rnn_step_forward",
]
