"""Facts about the cells, defined once: the number of gate blocks and their order.

    >>> GATES["lstm"], GATE_ORDER["gru"]
    (4, ('r', 'z', 'n'))
"""

from __future__ import annotations

#: Gate blocks per cell: the columns of W (I, G·H), U (H, G·H) and b (G·H,) are G blocks of H.
GATES = {"lstm": 4, "gru": 3, "rnn": 1}

#: The order of the gate blocks (TMVA's for the LSTM: input, forget, candidate, output).
GATE_ORDER = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}
