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

Ragged events (jagged ROOT branches, :meth:`bptt.data.loader.DataLoader.add_sequence`) carry their
``lengths``; ``train_lengths()`` and ``test_lengths()`` are those of the rows of ``train()`` and
``test()``::

    >>> ev = Events(X=np.zeros((4, 3, 2), np.float32), y=np.r_[1, 1, 0, 0], weights=np.ones(4),
    ...             is_train=np.r_[True, False, True, False], lengths=np.r_[3, 1, 2, 3], sequence=["pt", "eta"])
    >>> ev.train_lengths().tolist(), ev.test_lengths().tolist()
    ([3, 2], [1, 3])
    >>> ev.model_inputs()
    [{'name': 'pt', 'size': 1, 'jagged': True}, {'name': 'eta', 'size': 1, 'jagged': True}]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Events", "tmva_split"]


@dataclass
class Events:
    """Events of two classes with weights and a training/test split.

    Attributes:
        X: float32 ``(n, T, F)`` sequences (or ``(n, F)`` for a network without recurrent layers);
            ragged sequences padded with 0 after each one's last real step (``lengths``).
        y: float32 ``(n,)``: 1 signal, 0 background; or ``(n, T)`` per-step targets of ragged
            sequences (a jagged target branch: one label or value per step, 0 at padded steps).
        weights: float64 ``(n,)`` event weights (1 when the inputs give none).
        is_train: bool ``(n,)``: True for the training events, False for the test events.
        variables: ``[(name, size), …]`` in input order: the branch or expression ``name`` gives
            ``size`` numbers per event; concatenated they are one event's ``T·F`` inputs in
            row-major ``(T, F)`` order (TMVA's flattening of ``InputLayout``).
        source: free text naming where the events came from (file and trees), for reports.
        lengths: int64 ``(n,)`` real steps per event (``1 <= lengths[i] <= T``) of ragged
            sequences, or None (every event has T steps).
        sequence: the jagged per-step branches whose values are X's features, in order (empty for
            fixed-layout inputs, which ``variables`` names).
        max_length: the padded length asked for the ragged sequences (longer ones were truncated),
            or None (T is the longest sequence read).
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    is_train: np.ndarray
    variables: list = field(default_factory=list)
    source: str = ""
    lengths: np.ndarray | None = None
    sequence: list = field(default_factory=list)
    max_length: int | None = None

    def __post_init__(self) -> None:
        from .ragged import check_lengths

        n = len(self.X)
        for name in ("weights", "is_train"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (n,):
                raise ValueError(f"Events: {name} must have shape ({n},) like X's first axis; got {arr.shape}")
        y_shape = np.shape(self.y)
        per_step = np.ndim(self.X) == 3 and y_shape == tuple(np.shape(self.X)[:2])
        if y_shape != (n,) and not per_step:
            raise ValueError(f"Events: y must have shape ({n},) (one label per event) or (n, T) = "
                             f"{tuple(np.shape(self.X)[:2])} (one per step); got {y_shape}")
        self.is_train = np.asarray(self.is_train, dtype=bool)
        if self.lengths is not None:
            if np.ndim(self.X) != 3:
                raise ValueError(f"Events: lengths are for (n, T, F) sequences; X has shape {np.shape(self.X)}")
            self.lengths = check_lengths("Events", self.lengths, n, np.shape(self.X)[1])

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

    def train_lengths(self) -> np.ndarray | None:
        """The lengths of :meth:`train`'s rows (None without ragged sequences)."""
        return None if self.lengths is None else self.lengths[self.is_train]

    def test_lengths(self) -> np.ndarray | None:
        """The lengths of :meth:`test`'s rows (None without ragged sequences)."""
        return None if self.lengths is None else self.lengths[~self.is_train]

    def model_inputs(self) -> list[dict] | None:
        """What a network trained on these events reads, for ``Sequential.inputs`` (and so for
        ``bptt apply`` and :class:`bptt.Reader`): ``[{"name", "size"}, …]`` of the variables, or, for
        ragged sequences, one ``{"name": branch, "size": 1, "jagged": True}`` per per-step branch
        (with ``"max_length"`` when the sequences were truncated to it); None without names."""
        if self.sequence:
            extra = {} if self.max_length is None else {"max_length": int(self.max_length)}
            return [{"name": name, "size": 1, "jagged": True, **extra} for name in self.sequence]
        if self.variables:
            return [{"name": name, "size": int(size)} for name, size in self.variables]
        return None


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
