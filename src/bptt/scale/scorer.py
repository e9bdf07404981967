"""Scores of a dask-awkward array, lazily: a bptt model inside an existing coffea analysis.

:class:`Scorer` follows coffea's ``ml_tools`` wrappers (``numpy_call_wrapper``): it *prepares* the
awkward inputs (the model's variables → a NumPy array, :func:`bptt.apply.to_inputs`), *runs* the
network, and *post-processes* the NumPy scores back into an awkward array — per partition, through
``dask_awkward.map_partitions``, so the result is a lazy dask-awkward array of one score per event
that composes with the rest of the analysis::

    import uproot
    from bptt.scale import Scorer

    events = uproot.dask({"data/*.root": "Events"})        # lazy, one partition per chunk of entries
    scorer = Scorer("lstm.bptt")                           # the model file of bptt train
    events["lstm"] = scorer(events)                        # still lazy
    selected = events[events.lstm > 0.9]
    counts = dask.compute(dak.num(selected, axis=0))       # only the model's branches are read

On an awkward array or a dict of arrays (one chunk in memory) the same call returns the scores
at once, as a NumPy array (the numbers of :class:`bptt.Reader` and ``bptt apply``).

Like coffea's ``nonserializable_attribute``, the network itself is never pickled: a scorer carries
the model file's bytes (safetensors + JSON, no code runs on load), the graph holds them once as one
``dask.delayed`` value that each worker fetches once, and each worker builds the network from them
once (:func:`bptt.scale.dask.worker_model`) and keeps it for every partition it scores.

Only the branches the model reads are touched, so dask-awkward's column optimisation reads only
those from the files (``dak.report_necessary_columns``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..apply import branches_to_read, read_inputs, score, to_inputs
from .dask import model_bytes, worker_model

__all__ = ["Scorer"]


class Scorer:
    """Score events with a bptt model: ``scorer(events)``.

    Args:
        model: a model file's path (``bptt train``) or a :class:`bptt.model.Sequential`.
        variables: only for a model that does not name its inputs: ``[(name, size), …]`` in
            training order (as :class:`bptt.Reader`'s).
        prefix: the tutorial layout's branch prefix, for a model that does not name its inputs
            but whose layers fix the number of time steps.

    Attributes:
        variables: ``[(name, size), …]``: the variables (branches or TMVA expressions) read.
        shape: the scores' shape per event: ``()`` (one score: the signal probability of a
            ``bce`` model), or ``(C,)`` (class probabilities of a ``softmax_ce`` model).

    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> model = Sequential.from_tmva("DENSE|4|TANH,LINEAR", "1|2", seed=0)
    >>> model.inputs = [{"name": "pt", "size": 1}, {"name": "eta", "size": 1}]
    >>> scorer = Scorer(model)
    >>> scores = scorer({"pt": np.array([25.0, 40.0]), "eta": np.array([-1.2, 0.3])})
    >>> bool(np.array_equal(scores, model.predict_proba(np.array([[25.0, -1.2], [40.0, 0.3]], np.float32))))
    True
    """

    def __init__(self, model, *, variables=None, prefix: str | None = None):
        from ..apply.reader import Reader

        self._bytes = model_bytes(model)
        self._digest = hashlib.sha256(self._bytes).hexdigest()
        reader = Reader(worker_model(self._bytes, self._digest), variables=variables, prefix=prefix)
        if reader.variables is None:
            raise ValueError(
                "Scorer: the model does not name its inputs and its layers do not fix the number of time steps; "
                "pass Scorer(model, variables=[(name, size), …]) in training order"
            )
        self.spec = reader._spec
        shape = self.spec.shape
        if self.spec.jagged:  # a ragged sequence: one real step is enough to see the scores' shape
            shape = (max(shape[0], 1),) + tuple(shape[1:])
        probe = score(reader.model, np.zeros((1,) + shape, reader.model.dtype),
                      np.ones(1, np.int64) if self.spec.jagged else None)
        self.dtype = probe.dtype
        self.shape = tuple(probe.shape[1:])

    @property
    def variables(self) -> list[tuple[str, int]]:
        return list(self.spec.variables)

    @property
    def model(self):
        """The network, built from the model bytes once per process thread (never pickled)."""
        return worker_model(self._bytes, self._digest)

    # ── the three steps of coffea's numpy_call_wrapper

    def prepare(self, columns):
        """Awkward columns (an awkward record array, or a dict of arrays) → the model's input array,
        or ``(X, lengths)`` for a model of ragged sequences (jagged branches:
        :func:`bptt.apply.read_inputs`); only the branches the model reads are looked at (a
        partition's other columns were not read)."""
        if getattr(columns, "fields", None):
            columns = columns[branches_to_read(self.spec, columns.fields)]
        if self.spec.jagged:
            return read_inputs(columns, self.spec, self.model.dtype)
        return to_inputs(columns, self.spec, self.model.dtype)

    def run(self, X) -> np.ndarray:
        """The network's scores of ``X`` (:func:`bptt.apply.score`), or of ``(X, lengths)``."""
        if isinstance(X, tuple):
            return score(self.model, *X)
        return score(self.model, X)

    def postprocess(self, scores: np.ndarray):
        """NumPy scores → an awkward array (class probabilities as a regular ``n * C`` array)."""
        import awkward as ak

        return ak.from_numpy(scores, regulararray=True)

    # ── calls

    def __call__(self, events):
        """Scores of ``events``: a dask-awkward array → a lazy dask-awkward array (one entry per
        event); an awkward array or a dict of arrays → a NumPy array."""
        try:
            import dask_awkward as dak
        except ImportError:  # without the dask extra, only in-memory events
            dak = None
        if dak is not None and isinstance(events, dak.Array):
            import dask

            shipped = dask.delayed(self._bytes, pure=True)  # one node of the graph: fetched once per worker
            return dak.map_partitions(_ScorePartition(self), events, shipped, label="bptt-score")
        return self.run(self.prepare(events))

    def _typetracer(self, events):
        """What a partition's scores look like, for dask-awkward's tracing: the model's branches
        marked as read (so that only they are read), and an array of the scores' type."""
        import awkward as ak

        for branch in branches_to_read(self.spec, events.fields):
            ak.typetracer.touch_data(events[branch])
        form = ak.forms.NumpyForm(ak.types.numpytype.dtype_to_primitive(self.dtype))
        for size in reversed(self.shape):
            form = ak.forms.RegularForm(form, size)
        return ak.typetracer.typetracer_from_form(form)


class _ScorePartition:
    """The function each partition runs: the scorer's steps (a subclass's too) on the worker's
    cached network."""

    def __init__(self, scorer: Scorer):
        # the model bytes travel as the delayed argument, once per worker; not inside the function
        self.cls = type(scorer)
        self.state = {k: v for k, v in scorer.__dict__.items() if k != "_bytes"}

    def __call__(self, events, data):
        import awkward as ak

        scorer = self.cls.__new__(self.cls)
        scorer.__dict__.update(self.state)
        if ak.backend(events) == "typetracer":
            return scorer._typetracer(events)
        scorer._bytes = data
        return scorer.postprocess(scorer.run(scorer.prepare(events)))
