"""Files cut into partitions, and one partition scored into its own output file.

A *partition* is one input file's tree over an entry range ``[start, stop)``; its output file is
named ``<input stem>-<start>-<stop>.root`` (or ``.parquet``) in the output directory, so the same
inputs and options always give the same names, whichever process or worker scored them. Each output
is written atomically (:func:`bptt._files.atomic_path`): a task that fails, is killed or is retried
never leaves a half-written file under that name.

:func:`plan` checks everything that can be checked before any work starts (files, tree, the
model's branches in every file, the copied branches, the output names) and returns the partitions;
:func:`write_partition` scores one (what a Dask worker runs); :func:`apply_files` runs them all in
this process, one after the other (``bptt apply FILES... --out DIR`` without ``--dask``).

    >>> import os, tempfile
    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> from bptt.data.root import write_tmva_root
    >>> d = tempfile.mkdtemp()
    >>> a = write_tmva_root(os.path.join(d, "a.root"), np.ones((5, 2, 4)), np.zeros((2, 2, 4)))
    >>> model = Sequential.from_tmva("LSTM|3|4|2,RESHAPE|FLAT,LINEAR", "2|4", seed=0)
    >>> model.inputs = [{"name": "vars_time0", "size": 4}, {"name": "vars_time1", "size": 4}]
    >>> s = apply_files(model, [a], "sgn", os.path.join(d, "out"), entries_per_partition=3)
    >>> s["events"], s["partitions"], sorted(os.listdir(os.path.join(d, "out")))
    (5, 2, ['a-0-3.root', 'a-3-5.root'])
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._files import atomic_path
from ..apply import (DEFAULT_STEP_SIZE, InputSpec, ScoreWriter, branches_to_read, input_spec, open_tree,
                     score_chunks, select_branches)
from ..apply.stream import check_step_size

__all__ = ["DEFAULT_PARTITION_ENTRIES", "FORMATS", "Partition", "Plan", "apply_files", "plan",
           "remove_stale_temporaries", "write_partition"]

#: Entries per partition when none is given: 10 chunks of bptt apply's default step, 30 MB of
#: float32 inputs at the tutorial's 10 × 30 per event; seconds of work per task, so that a
#: scheduler's few milliseconds per task do not show (docs/scaling.md).
DEFAULT_PARTITION_ENTRIES = 100_000
#: Output formats and their file extensions.
FORMATS = {"root": ".root", "parquet": ".parquet"}


@dataclass(frozen=True)
class Partition:
    """Entries ``start … stop - 1`` of tree ``tree`` of the ROOT file ``path``."""

    path: str
    tree: str
    start: int
    stop: int

    @property
    def entries(self) -> int:
        return self.stop - self.start

    def output_name(self, fmt: str = "root") -> str:
        """``<input stem>-<start>-<stop>.<ext>``: deterministic, one per partition."""
        stem = os.path.splitext(os.path.basename(self.path))[0]
        return f"{stem}-{self.start}-{self.stop}{FORMATS[fmt]}"


@dataclass(frozen=True)
class Plan:
    """What :func:`plan` found: the partitions, the model's inputs, the copied branches' patterns,
    and the options every partition is written with."""

    partitions: tuple[Partition, ...]
    spec: InputSpec
    out_dir: str
    fmt: str
    branches: tuple[str, ...]
    score_name: str
    out_tree: str | None
    step_size: int
    empty_files: tuple[str, ...]

    @property
    def events(self) -> int:
        return sum(p.entries for p in self.partitions)

    def output(self, part: Partition) -> str:
        return os.path.join(self.out_dir, part.output_name(self.fmt))


def _check_positive(name: str, value, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive number of entries; got {value!r} (pass {option} N)")
    return int(value)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"the output format must be one of {', '.join(FORMATS)}; got {fmt!r} (--format)")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ValueError("Parquet output needs pyarrow; pip install pyarrow (or bptt[dask]), or use --format root") from None
    return fmt


def _out_dir(out_dir) -> str:
    if out_dir is None:
        raise ValueError("several input files or --dask write one file per partition: pass --out DIR (a directory)")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir!r} is a file; with several inputs or --dask, --out is a directory "
                         f"that receives one file per partition")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out_dir!r}: the directory {parent!r} does not exist; create it or give another --out")
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def plan(model, files: Sequence, tree: str | None, out_dir, *, fmt: str = "root", branches: Sequence[str] = (),
         score_name: str = "bptt", out_tree: str | None = None, prefix: str | None = None,
         step_size: int = DEFAULT_STEP_SIZE, entries_per_partition: int | None = DEFAULT_PARTITION_ENTRIES) -> Plan:
    """Check the inputs and cut them into partitions of at most ``entries_per_partition`` entries
    (None: one per file). Every file is opened (its header only) to find its entries and check
    that it has the model's input branches and the ``branches`` to copy; errors name the file.
    ``out_dir`` is created when missing (its parent must exist). A file with no entries gets no
    partition (listed in :attr:`Plan.empty_files`)."""
    files = [os.fspath(f) for f in files]
    if not files:
        raise ValueError("no input file given; pass one or more ROOT files to score")
    seen: dict[str, str] = {}
    for f in files:
        key = os.path.abspath(f)
        if key in seen:
            raise ValueError(f"the input {f!r} is given twice; pass each file once")
        seen[key] = f
    stems: dict[str, str] = {}
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem in stems:
            raise ValueError(
                f"the inputs {stems[stem]!r} and {f!r} have the same name {stem!r}: their outputs "
                f"({stem}-<start>-<stop>) would collide; score them into different --out directories"
            )
        stems[stem] = f
    fmt = _check_format(fmt)
    if not isinstance(score_name, str) or not re.fullmatch(r"[A-Za-z_]\w*", score_name, flags=re.ASCII):
        raise ValueError(f"the score name must be a C++ identifier (letters, digits, _); got {score_name!r}")
    if entries_per_partition is not None:
        entries_per_partition = _check_positive("entries_per_partition", entries_per_partition, "--partition-entries")
    spec = None
    parts: list[Partition] = []
    empty: list[str] = []
    for f in files:
        t = open_tree(f, tree)
        if spec is None:
            spec = input_spec(model, t, prefix)
            step_size = check_step_size(step_size, spec.size)
        try:
            branches_to_read(spec, t.keys())
            copied = select_branches(branches, t.keys())
        except ValueError as exc:
            raise ValueError(f"{f!r}: {exc}") from None
        if score_name in copied:
            raise ValueError(f"the score branch {score_name!r} is also a copied branch; pass another --score-name")
        n = int(t.num_entries)
        if n == 0:
            empty.append(f)
            continue
        size = entries_per_partition or n
        parts += [Partition(f, t.name, a, min(a + size, n)) for a in range(0, n, size)]
    out_dir = _out_dir(out_dir)
    the_plan = Plan(tuple(parts), spec, out_dir, fmt, tuple(branches), score_name, out_tree, step_size, tuple(empty))
    inputs = {os.path.realpath(f) for f in files}
    for part in parts:
        if os.path.realpath(the_plan.output(part)) in inputs:
            raise ValueError(f"the output {the_plan.output(part)!r} would replace an input file; give another --out directory")
    return the_plan


def write_partition(model, the_plan: Plan, part: Partition) -> dict:
    """Score ``part`` and write its output file (atomically). Returns ``{"events", "out", "seconds"}``."""
    t0 = time.perf_counter()
    t = open_tree(part.path, part.tree)
    copied = select_branches(the_plan.branches, t.keys())
    out = the_plan.output(part)
    chunks = score_chunks(model, the_plan.spec, t, copy=copied, score_name=the_plan.score_name,
                          step_size=the_plan.step_size, entry_start=part.start, entry_stop=part.stop)
    if the_plan.fmt == "root":
        events = _write_root(out, the_plan.out_tree or part.tree, chunks)
    else:
        events = _write_parquet(out, chunks)
    if events != part.entries:  # uproot read fewer entries than the file's header said
        raise ValueError(f"{part.path!r}: read {events} entries of {part.start} … {part.stop - 1}; the file may be truncated")
    return {"events": events, "out": out, "seconds": time.perf_counter() - t0}


def _write_root(out: str, tree: str, chunks) -> int:
    with ScoreWriter(out, tree) as writer:
        for _, columns in chunks:
            writer.write(columns)
    return writer.entries


def _write_parquet(out: str, chunks) -> int:
    """One Parquet row group per chunk (memory bounded by the chunk), through a temporary file."""
    import awkward as ak
    import pyarrow.parquet as pq

    events = 0
    with atomic_path(out, suffix=".parquet") as tmp:
        writer = None
        try:
            for _, columns in chunks:
                table = ak.to_arrow_table(ak.zip({k: ak.Array(v) for k, v in columns.items()}, depth_limit=1),
                                          extensionarray=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                events += table.num_rows
        finally:
            if writer is not None:
                writer.close()
    return events


def remove_stale_temporaries(the_plan: Plan) -> list[str]:
    """Remove the temporary files that a killed attempt at one of the plan's partitions left in the
    output directory (``.<output name>.<random><ext>``, :func:`bptt._files.atomic_path`'s names).
    Call it only when no attempt is running. Returns the removed paths."""
    removed = []
    for part in the_plan.partitions:
        name = part.output_name(the_plan.fmt)
        pattern = os.path.join(glob.escape(the_plan.out_dir), f".{glob.escape(name)}.*{FORMATS[the_plan.fmt]}")
        for path in glob.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed


def summary(the_plan: Plan, results: Sequence[dict], seconds: float, workers: int) -> dict:
    """The run's figures: events, partitions, files, seconds, events per second, workers."""
    events = sum(r["events"] for r in results)
    return {
        "events": events, "partitions": len(results), "seconds": seconds,
        "events_per_second": events / seconds if seconds else 0.0, "workers": workers, "out_dir": the_plan.out_dir,
        "outputs": sorted(r["out"] for r in results), "empty_files": list(the_plan.empty_files),
        "variables": [list(v) for v in the_plan.spec.variables],
    }


def apply_files(model, files: Sequence, tree: str | None, out_dir, *, fmt: str = "root",
                branches: Sequence[str] = (), score_name: str = "bptt", out_tree: str | None = None,
                prefix: str | None = None, step_size: int = DEFAULT_STEP_SIZE,
                entries_per_partition: int | None = DEFAULT_PARTITION_ENTRIES, progress: bool = False,
                log=None) -> dict:
    """Score every partition of ``files`` in this process, one after the other, into ``out_dir``
    (one file per partition, the names and contents of :func:`bptt.scale.dask.apply_files_dask`).
    Returns :func:`summary`'s dict."""
    t0 = time.perf_counter()
    the_plan = plan(model, files, tree, out_dir, fmt=fmt, branches=branches, score_name=score_name,
                    out_tree=out_tree, prefix=prefix, step_size=step_size, entries_per_partition=entries_per_partition)
    _notes(the_plan, log)
    from tqdm import tqdm

    results = []
    with tqdm(total=the_plan.events, unit="ev", unit_scale=True, disable=not progress, desc="scoring",
              leave=False) as bar:
        for part in the_plan.partitions:
            results.append(write_partition(model, the_plan, part))
            bar.update(part.entries)
    return summary(the_plan, results, time.perf_counter() - t0, 1)


def _notes(the_plan: Plan, log) -> None:
    if not log:
        return
    if the_plan.spec.note:
        log(the_plan.spec.note)
    for f in the_plan.empty_files:
        log(f"{f!r} has no entries: no output file for it")
