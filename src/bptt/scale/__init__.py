"""Beyond one process: scoring many ROOT files on a Dask cluster (issue 21).

- :mod:`bptt.scale.partitions` — a list of files cut into partitions (file × entry range) and one
  partition scored into its own output file (ROOT or Parquet, written atomically), in one process:
  what every worker runs, and ``bptt apply FILES... --out DIR`` without ``--dask``;
- :mod:`bptt.scale.dask` — the same partitions as tasks on a Dask cluster (a ``LocalCluster`` or a
  scheduler's address): the model shipped to each worker once, failed tasks retried, progress and
  a summary (``bptt apply FILES... --dask [SCHEDULER] --out DIR``);
- :mod:`bptt.scale.scorer` — :class:`~bptt.scale.scorer.Scorer`, scores of a dask-awkward array
  (``uproot.dask``) as a lazy dask-awkward array, for a coffea analysis
  (``events["score"] = scorer(events)``), in the style of coffea's ``ml_tools`` wrappers;
- :mod:`bptt.scale.mpi` — data-parallel training on MPI ranks (``mpiexec -n N bptt train``): the
  weights of one process, rank 0 writing (``pip install bptt[mpi]``; mpi4py imported only under
  mpiexec).

Dask, distributed and dask-awkward are an extra (``pip install bptt[dask]``); nothing here is
imported by ``import bptt``. docs/scaling.md has the measurements and the cost model.
"""

from __future__ import annotations

__all__ = ["Scorer"]


def __getattr__(name: str):
    if name == "Scorer":
        from .scorer import Scorer

        return Scorer
    raise AttributeError(f"module 'bptt.scale' has no attribute {name!r}")
