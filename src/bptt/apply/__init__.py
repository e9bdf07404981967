"""Scoring ROOT files with a trained model: TMVA's ``Reader`` and ``TMVAClassificationApplication``.

The work is split into small pieces that each take and return plain data, so that a caller can
run them over a local file (:func:`apply_file`, ``bptt apply``, :class:`bptt.Reader`) or over one
partition of a dask-awkward array (issue 21) alike:

1. :func:`input_spec` — which branches the model reads and the shape of one event: from the
   model's ``inputs`` (``[{"name", "size"}]``, saved by ``bptt train``), or, for a model file
   without them, TMVA's tutorial layout ``{prefix}0, {prefix}1, …`` with the model's sizes;
2. :func:`open_tree` / :func:`read_chunks` — the input tree, read in chunks of entries with uproot
   (memory bounded by the chunk, whatever the file's size);
3. :func:`to_inputs` — a chunk's columns (a dict of NumPy or awkward arrays, or an awkward record
   array) → the model's input array ``(n, T, F)`` (or ``(n, F)``), each variable checked for its
   number of values per event; :func:`read_inputs` also returns the ``lengths`` of a model trained
   on ragged sequences (jagged branches, ``bptt train --sequence``), the chunk padded;
4. :func:`score` — the model's score per event: the signal probability of a ``bce`` model (as
   TMVA's Reader returns the network's sigmoid output), the class probabilities ``(n, C)`` of a
   ``softmax_ce`` model, the raw outputs of an ``mse`` model;
5. :class:`ScoreWriter` — a new ROOT file (written atomically: a failure leaves nothing behind)
   with one TTree holding the copied branches and the score, extended chunk by chunk.

Example::

    >>> import os, tempfile
    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> from bptt.data.root import write_tmva_root
    >>> from bptt.apply import apply_file
    >>> d = tempfile.mkdtemp()
    >>> data = write_tmva_root(os.path.join(d, "data.root"), np.ones((3, 2, 4)), np.zeros((2, 2, 4)))
    >>> model = Sequential.from_tmva("LSTM|3|4|2,RESHAPE|FLAT,LINEAR", "2|4", seed=0)
    >>> model.inputs = [{"name": "vars_time0", "size": 4}, {"name": "vars_time1", "size": 4}]
    >>> summary = apply_file(model, data, "sgn", os.path.join(d, "scored.root"), score_name="lstm")
    >>> summary["events"], summary["branches"]
    (3, ['lstm'])
"""

from __future__ import annotations

from .inputs import InputSpec, branches_to_read, event_shape, input_spec, read_inputs, to_inputs
from .output import ScoreWriter, apply_file
from .reader import Reader
from .stream import (DEFAULT_STEP_SIZE, MAX_CHUNK_VALUES, open_tree, read_chunks, score, score_chunks,
                     score_name_for, select_branches)

__all__ = [
    "DEFAULT_STEP_SIZE", "MAX_CHUNK_VALUES", "InputSpec", "Reader", "ScoreWriter", "apply_file", "branches_to_read",
    "event_shape", "input_spec", "open_tree", "read_chunks", "read_inputs", "score", "score_chunks", "score_name_for",
    "select_branches", "to_inputs",
]
