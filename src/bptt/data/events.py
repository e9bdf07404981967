"""A classification data set as TMVA's DataLoader hands it over: events, classes, weights and the
training/test split, with the names of the input variables.

:class:`Events` is what every reader of TMVA-style inputs returns (ROOT trees with a class branch
or cut, several trees per class, named variables and arrays, event weights) and what ``bptt train``
trains on (its training part) and reports on (its test part). ``variables`` says which branch (or
expression) gives which inputs, so that a trained model can read a new file by itself
(``Sequential.inputs``, ``bptt apply``).

Example::

    >>> import numpy as np
    >>> from bptt.data.events import Events, tmva_split
    >>> y = np.r_[np.ones(6), np.zeros(4)].astype(np.float32)
    >>> ev = Events(X=np.zeros((10, 2, 3), np.float32), y=y, weights=np.ones(10),
    ...             is_train=tmva_split(y, seed=100), variables=[("vars_time0", 3), ("vars_time1", 3)])
    >>> ev.n_train, ev.n_test
    (5, 5)
    >>> X_tr, y_tr, w_tr = ev.train()
    >>> X_tr.shape, int(y_tr.sum())
    ((5, 2, 3), 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Events", "tmva_split"]


@dataclass
class Events:
    """Events of two classes with weights and a training/test split.

    Attributes:
        X: float32 ``(n, T, F)`` sequences (or ``(n, F)`` for a network without recurrent layers).
        y: float32 ``(n,)``: 1 signal, 0 background.
        weights: float64 ``(n,)`` event weights (1 when the inputs give none).
        is_train: bool ``(n,)``: True for the training events, False for the test events.
        variables: ``[(name, size), …]`` in input order: the branch or expression ``name`` gives
            ``size`` numbers per event; concatenated they are one event's ``T·F`` inputs in
            row-major ``(T, F)`` order (TMVA's flattening of ``InputLayout``).
        source: free text naming where the events came from (file and trees), for reports.
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    is_train: np.ndarray
    variables: list = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.X)
        for name in ("y", "weights", "is_train"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (n,):
                raise ValueError(f"Events: {name} must have shape ({n},) like X's first axis; got {arr.shape}")
        self.is_train = np.asarray(self.is_train, dtype=bool)

    @property
    def n_train(self) -> int:
        return int(self.is_train.sum())

    @property
    def n_test(self) -> int:
        return int(len(self.is_train) - self.is_train.sum())

    def train(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, weights)`` of the training events, in file order."""
        m = self.is_train
        return self.X[m], self.y[m], self.weights[m]

    def test(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, weights)`` of the test events, in file order."""
        m = ~self.is_train
        return self.X[m], self.y[m], self.weights[m]


def tmva_split(y, seed: int = 100) -> np.ndarray:
    """TMVA's default split (``nTrain_Signal=0:nTest_Signal=0:SplitMode=Random:SplitSeed=100``):
    half of each class, drawn at random, for training; the rest for testing. Returns ``is_train``.
    A shorthand that keeps every event: a class with an odd count gives the extra event to the test
    part, where TMVA leaves it out (:func:`bptt.data.splitting.split_arrays` and the DataLoader
    split as TMVA does)."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    is_train = np.zeros(len(y), bool)
    for label in (1, 0):
        idx = np.flatnonzero(y == label)
        is_train[rng.permutation(idx)[: len(idx) // 2]] = True
    return is_train
