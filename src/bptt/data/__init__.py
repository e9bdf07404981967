"""Data for bptt: sequence arrays ``X (n, T, F)`` with labels ``y (n,)``, from files or generated.

- :mod:`bptt.data.toy` — the toy time series of TMVA's ``TMVA_RNN_Classification.C``.
- :mod:`bptt.data.root` — ROOT files in TMVA's layout (trees ``sgn``/``bkg``, branches
  ``vars_time{j}``), via uproot; uproot is imported only when a ROOT file is read or written.
- :mod:`bptt.data.arrays` — ``.npz`` files, standardisation, train/test split, batches, and
  :func:`pad_ragged` (:mod:`bptt.data.ragged`): ragged sequences (lists, awkward arrays) padded to
  ``X (n, T, F)`` with their ``lengths``; :mod:`bptt.data.sequences` reads them from jagged ROOT
  branches (``DataLoader.add_sequence``).
- :mod:`bptt.data.loader` — TMVA's ``DataLoader``: trees, variables, weights, cuts and TMVA's split
  (:mod:`bptt.data.splitting`) into :class:`bptt.data.events.Events`; :mod:`bptt.data.expressions`
  reads TTreeFormula expressions, :mod:`bptt.data.inputs` a network's inputs from a tree's columns,
  :mod:`bptt.data.sources` the command line's data options.

Example::

    >>> from bptt.data import make_tutorial_data, train_test_split
    >>> import numpy as np
    >>> sig, bkg = make_tutorial_data(n_events=50, n_steps=3, n_features=4, seed=0)
    >>> X = np.concatenate([sig, bkg]); y = np.r_[np.ones(50), np.zeros(50)]
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.2)
    >>> X_tr.shape, X_te.shape
    ((80, 3, 4), (20, 3, 4))

(The directory also ships ``numerical_example.json``, the published LSTM worked example, as package
data read by :mod:`bptt.example`.)
"""

from .arrays import Standardizer, iterate_batches, pad_ragged, read_npz, train_test_split, write_npz
from .root import read_tmva_root, write_tmva_root
from .toy import make_tutorial_data, write_tutorial_root

__all__ = [
    "make_tutorial_data",
    "write_tutorial_root",
    "read_tmva_root",
    "write_tmva_root",
    "read_npz",
    "write_npz",
    "Standardizer",
    "train_test_split",
    "iterate_batches",
    "pad_ragged",
]
