"""Keras as a test reference (tests/io/test_interop.py, tests/io/test_bidirectional_io.py): the
cells bptt maps, a recurrent layer of each, random weights. The ``keras`` fixture is in
tests/io/conftest.py; Keras runs on its torch backend (set before Keras is first imported)."""

from __future__ import annotations

import numpy as np

#: (cell, reset_after): the Keras recurrent layers bptt reads and writes.
KERAS_CASES = [("lstm", True), ("gru", True), ("gru", False), ("rnn", True)]


def keras_layer(keras, cell, reset_after, units, **kw):
    """Keras's LSTM, GRU (``reset_after``) or SimpleRNN of ``units`` units."""
    if cell == "lstm":
        return keras.layers.LSTM(units, **kw)
    if cell == "gru":
        return keras.layers.GRU(units, reset_after=reset_after, **kw)
    return keras.layers.SimpleRNN(units, **kw)


def randomize(keras_layer_, seed):
    """Random weights everywhere (biases included) so every block and bias is exercised."""
    rng = np.random.default_rng(seed)
    keras_layer_.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in keras_layer_.get_weights()])
