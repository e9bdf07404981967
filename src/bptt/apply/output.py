"""The output: :class:`ScoreWriter` (a new ROOT file, written atomically) and :func:`apply_file`
(``bptt apply``: a file in, a scored file out, in chunks)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Sequence

import numpy as np

from .._files import atomic_path
from .inputs import input_spec
from .stream import DEFAULT_STEP_SIZE, check_step_size, open_tree, score_chunks, select_branches

__all__ = ["ScoreWriter", "apply_file"]


class ScoreWriter:
    """A new ROOT file with one TTree extended chunk by chunk; the file appears at ``path`` only
    when the writer closes without error (atomic: a failure leaves an existing file untouched and
    no partial file behind).

    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "s.root")
    >>> with ScoreWriter(p, "Events") as w:
    ...     w.write({"score": np.array([0.5, 0.25], np.float32)})
    >>> import uproot; uproot.open(p)["Events"]["score"].array(library="np").tolist()
    [0.5, 0.25]
    """

    def __init__(self, path, tree: str, types: dict | None = None):
        self.path, self.tree, self.types = os.fspath(path), tree, types
        self._stack: contextlib.ExitStack | None = None
        self._file = None
        self.entries = 0

    def __enter__(self):
        import uproot

        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path, suffix=".root"))
            self._file = stack.enter_context(uproot.recreate(tmp))
            self._stack = stack.pop_all()
        return self

    def write(self, columns: dict) -> None:
        """Append one chunk: ``{branch: array}``, each with the chunk's number of entries."""
        if self.tree not in self._file:
            self._file.mktree(self.tree, self.types or {k: _branch_type(v) for k, v in columns.items()})
        n = len(next(iter(columns.values())))
        if n:
            self._file[self.tree].extend(columns)
            self.entries += n

    def __exit__(self, kind, exc, tb):
        # the ROOT file closes first, then the temporary file replaces the target, or is removed
        return self._stack.__exit__(kind, exc, tb)


def _branch_type(values):
    import awkward as ak

    if isinstance(values, np.ndarray):
        return np.dtype((values.dtype, values.shape[1:])) if values.ndim > 1 else values.dtype
    return values.type.content if isinstance(values, ak.Array) else np.asarray(values).dtype


def apply_file(model, data, tree: str | None, out, *, branches: Sequence[str] = (), score_name: str = "bptt",
               out_tree: str | None = None, prefix: str | None = None, step_size: int = DEFAULT_STEP_SIZE,
               progress: bool = False, log=None) -> dict:
    """Score every entry of ``tree`` in ``data`` and write ``out``: a ROOT file with the tree
    ``out_tree`` (default: the input tree's name) holding the ``branches`` copied from the input
    (names or glob patterns) and the score branch ``score_name``, entry for entry (a friend tree
    of the input when no branch is copied). Streams ``step_size`` entries at a time. ``log``:
    called with one-line notes (the inputs' fallback). Returns a summary dict (events, seconds,
    events_per_second, out, tree, branches, variables)."""
    t0 = time.perf_counter()
    data, out = os.fspath(data), os.fspath(out)
    if not out.endswith(".root"):
        raise ValueError(f"the output must be a .root file; got {out!r} (pass --out <name>.root)")
    if os.path.exists(out) and os.path.exists(data) and os.path.samefile(out, data):
        raise ValueError(f"the output {out!r} is the input file; pass --out <another file>")
    if not isinstance(score_name, str) or not re.fullmatch(r"[A-Za-z_]\w*", score_name, flags=re.ASCII):
        raise ValueError(f"the score name must be a C++ identifier (letters, digits, _); got {score_name!r}")
    t = open_tree(data, tree)
    spec = input_spec(model, t, prefix)
    if spec.note and log:
        log(spec.note)
    check_step_size(step_size, spec.size)
    copied = select_branches(branches, t.keys())
    if score_name in copied:
        raise ValueError(f"the score branch {score_name!r} is also a copied branch; pass another --score-name")
    name = out_tree or t.name
    total = int(t.num_entries)
    types = None
    if total == 0:  # no chunk to take the types from
        types = {**{b: _empty_type(t[b]) for b in copied}, score_name: np.dtype(model.dtype)}
    bar = _progress(total, progress)
    try:
        with ScoreWriter(out, name, types) as writer:
            for _, columns in score_chunks(model, spec, t, copy=copied, score_name=score_name, step_size=step_size):
                writer.write(columns)
                bar.update(len(columns[score_name]))
            if total == 0:
                writer.write({k: np.zeros((0,), v) for k, v in types.items()})
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return {
        "events": total, "seconds": seconds, "events_per_second": total / seconds if seconds else 0.0,
        "out": out, "tree": name, "branches": copied + [score_name], "variables": [list(v) for v in spec.variables],
    }


def _empty_type(branch):
    dtype = branch.interpretation.numpy_dtype
    return dtype.newbyteorder("=") if dtype.shape == () else np.dtype((dtype.base.newbyteorder("="), dtype.shape))


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, disable=not enabled, desc="scoring", leave=False)
