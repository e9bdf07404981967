"""``bptt.Reader``: TMVA's ``TMVA::Reader`` for a bptt model, in Python.

TMVA's application macro books a method from its weight file, declares the variables with
``AddVariable`` in the training order, and calls ``EvaluateMVA`` per event. Here the model file
already names its variables (``Sequential.inputs``, saved by ``bptt train``), so a Reader needs
only the model::

    >>> import numpy as np
    >>> from bptt import Reader
    >>> from bptt.model import Sequential
    >>> model = Sequential.from_tmva("DENSE|4|TANH,LINEAR", "1|2", seed=0)
    >>> model.inputs = [{"name": "pt", "size": 1}, {"name": "eta", "size": 1}]
    >>> reader = Reader(model)
    >>> reader.variables
    [('pt', 1), ('eta', 1)]
    >>> p = reader.evaluate({"pt": 25.0, "eta": -1.2})             # one event → a float
    >>> batch = reader.evaluate({"pt": np.array([25.0, 40.0]), "eta": np.array([-1.2, 0.3])})
    >>> bool(p == batch[0]), batch.shape
    (True, (2,))

The scores are those of :func:`bptt.apply.score` (the signal probability of a ``bce`` model), the
same numbers as ``bptt apply`` writes and as ``model.predict_proba`` on the same events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from .inputs import InputSpec, check_fits, event_shape, input_spec, read_inputs
from .stream import DEFAULT_STEP_SIZE, open_tree, score, score_chunks, score_name_for, select_branches

__all__ = ["Reader"]


def _check_variables(variables) -> tuple[tuple[str, int], ...]:
    """``variables`` given to the Reader: names (one value each) or ``(name, size)`` pairs."""
    out = []
    for item in variables if isinstance(variables, (list, tuple)) else [None]:
        if isinstance(item, str) and item:
            out.append((item, 1))
            continue
        ok = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and item[0]
        if ok and isinstance(item[1], (int, np.integer)) and not isinstance(item[1], bool) and item[1] > 0:
            out.append((item[0], int(item[1])))
            continue
        raise ValueError(
            f"Reader: variables must be a list of names or (name, size) pairs with size ≥ 1, in the "
            f"training order (TMVA's AddVariable / AddVariablesArray); got {variables!r}"
        )
    if not out:
        raise ValueError("Reader: variables must not be empty; give the model's input variables in training order")
    return tuple(out)


class Reader:
    """Scores events with a trained model, one at a time, in batches, or a whole ROOT file.

    Args:
        model: a :class:`bptt.model.Sequential`, or the path of a model file (``bptt train``).
        variables: only for a model that does not name its inputs (a model trained in Python, or
            a file from before ``inputs`` were stored): its variables in training order, as names
            (one value each) or ``(name, size)`` pairs — TMVA's ``AddVariable`` /
            ``AddVariablesArray``. Without them, TMVA's tutorial layout ``{prefix}0, {prefix}1, …``.
        prefix: the tutorial layout's branch prefix (default ``"vars_time"``), for a model that
            does not name its inputs.
        name: the score's name in :meth:`iterate_file`'s chunks (default: the model file's stem, or
            ``"bptt"``; TMVA's Reader names a method's output by its title).

    Attributes:
        model: the network.
        variables: ``[(name, size), …]``, or None until a file is read when the model does not
            name its inputs and its layers do not fix their number.
    """

    def __init__(self, model, *, variables=None, prefix: str | None = None, name: str | None = None):
        from ..model import Sequential, load_model

        path = None
        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise ValueError(f"Reader: no such model file: {path!r}; pass a file written by bptt train or Sequential.save")
            model = load_model(path)
        elif not isinstance(model, Sequential):
            raise ValueError(f"Reader: model must be a bptt Sequential or a model file's path; got {type(model).__name__}")
        self.model = model
        self.name = name or (score_name_for(path) if path else "bptt")
        self._prefix = prefix
        self._spec: InputSpec | None = None
        if variables is not None:
            given = _check_variables(variables)
            if model.inputs:
                saved = tuple((d["name"], int(d["size"])) for d in model.inputs)
                if given != saved:
                    raise ValueError(
                        f"Reader: variables={list(given)} differ from the model file's inputs {list(saved)}; "
                        f"drop variables= (the model file says what it reads)"
                    )
            self._spec = InputSpec(given, event_shape(model, sum(s for _, s in given)))
            check_fits(model, self._spec.shape)
        else:
            try:
                self._spec = input_spec(model, None, prefix)
            except ValueError:
                if model.inputs:
                    raise
                self._spec = None  # the tutorial layout's number of steps comes from the first file read

    @property
    def variables(self) -> list[tuple[str, int]] | None:
        return None if self._spec is None else list(self._spec.variables)

    def _need_spec(self) -> InputSpec:
        if self._spec is None:
            raise ValueError(
                "Reader: the model does not name its inputs and its layers do not fix the number of time steps; "
                "pass Reader(model, variables=[(name, size), …]) in training order, or read a file first "
                "(evaluate_file / iterate_file take the steps from the tree)"
            )
        return self._spec

    # ── events and batches

    def evaluate(self, data):
        """The score of one event or of a batch.

        ``data``: one event as a dict ``{name: number or list/array of the variable's values}`` (or an
        awkward Record) → a float (an array of class probabilities for a ``softmax_ce`` model); a
        batch as a dict ``{name: array with one row per event}`` (NumPy, or awkward for
        ``std::vector`` branches) or an awkward record array → an ndarray ``(n,)``.
        """
        import awkward as ak

        spec = self._need_spec()
        if isinstance(data, ak.Record):
            data, single = {f: data[f] for f in data.fields}, True
            data = {k: (v.to_list() if isinstance(v, ak.Array) else v) for k, v in data.items()}
            if not spec.jagged:
                data = {k: np.asarray(v)[None] for k, v in data.items()}
        elif isinstance(data, ak.Array):
            single = False
        elif isinstance(data, Mapping):
            single = self._is_event(data, spec)
            if single and not spec.jagged:
                data = {k: np.asarray(v)[None] for k, v in data.items()}
        else:
            raise ValueError(
                f"Reader.evaluate: pass one event or a batch as a dict {{name: values}} (or an awkward record "
                f"array); got {type(data).__name__}"
            )
        if single and spec.jagged:  # one event's lists of per-step values
            data = {k: ak.Array([np.asarray(v, dtype=np.float64).reshape(-1).tolist()]) for k, v in data.items()}
        out = score(self.model, *read_inputs(data, spec, self.model.dtype))
        return out[0].item() if single and out.ndim == 1 else out[0] if single else out

    @staticmethod
    def _is_event(data: Mapping, spec: InputSpec) -> bool:
        """One event (every value a number, or a list for an array variable) or a batch (arrays with one
        row per event); a dict that mixes both is refused."""
        import awkward as ak

        votes = {}
        sizes = dict(spec.variables)
        for key, value in data.items():
            size = sizes.get(key)
            if isinstance(value, ak.Array):
                votes[key] = False
                continue
            try:
                ndim = np.ndim(value)
            except ValueError:  # ragged lists: a batch of variable-length values
                ndim = 2
            if spec.jagged and size is not None:
                votes[key] = ndim <= 1  # one event's per-step values, or a batch of lists
            elif ndim == 0:
                votes[key] = True
            elif ndim == 1 and size is not None and size > 1:
                votes[key] = True  # one event's array (a batch of arrays is 2-D or ragged)
            elif ndim == 1 and size is None:
                continue  # a column read by an expression: its shape does not say
            else:
                votes[key] = False
        kinds = set(votes.values())
        if len(kinds) > 1:
            one = sorted(k for k, v in votes.items() if v)
            many = sorted(k for k, v in votes.items() if not v)
            raise ValueError(
                f"Reader.evaluate: {', '.join(one)} hold one event's values but {', '.join(many)} hold arrays of "
                f"events; give every variable as one event's value, or every variable as an array with one row per event"
            )
        return kinds == {True} or not kinds and all(np.ndim(v) == 0 for v in data.values())

    # ── files

    def iterate_file(self, path, tree: str | None = None, *, branches: Sequence[str] = (),
                     step_size: int = DEFAULT_STEP_SIZE, entry_start=None, entry_stop=None) -> Iterator[dict]:
        """Chunks of a ROOT file's tree, scored: one dict per chunk of at most ``step_size`` entries, with
        the ``branches`` copied from the tree (names or glob patterns) and the score under
        :attr:`name`. Memory is bounded by the chunk, whatever the file's size."""
        t = open_tree(path, tree)
        spec = self._spec if self._spec is not None else input_spec(self.model, t, self._prefix)
        copied = select_branches(branches, t.keys())
        for _, columns in score_chunks(self.model, spec, t, copy=copied, score_name=self.name, step_size=step_size,
                                       entry_start=entry_start, entry_stop=entry_stop):
            yield columns

    def evaluate_file(self, path, tree: str | None = None, *, step_size: int = DEFAULT_STEP_SIZE, entry_start=None,
                      entry_stop=None) -> np.ndarray:
        """The scores of every entry of ``tree`` (or of ``entry_start`` … ``entry_stop - 1``), in entry order,
        read in chunks of ``step_size`` entries."""
        parts = [c[self.name] for c in self.iterate_file(path, tree, step_size=step_size, entry_start=entry_start,
                                                          entry_stop=entry_stop)]
        return np.concatenate(parts) if parts else np.zeros((0,), self.model.dtype)
