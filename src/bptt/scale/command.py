"""``bptt apply`` with several files or ``--dask``: the options and the command (cli.py calls these).

With one input file and no ``--dask``, ``bptt apply`` writes one output file (bptt.apply); with
several files, or with ``--dask``, ``--out`` is a directory that receives one file per partition
(file × entry range, :mod:`bptt.scale.partitions`), scored in this process or on a Dask cluster
(:mod:`bptt.scale.dask`).
"""

from __future__ import annotations

import os
import sys

__all__ = ["add_options", "apply_many", "is_many"]

#: The options that only mean something when scoring into a directory, and their defaults.
_MANY_ONLY = {"partition_entries": None, "format": "root"}
_DASK_ONLY = {"workers": None, "threads_per_worker": None, "retries": None}


def add_options(parser) -> None:
    """The ``--dask`` group of ``bptt apply``'s options."""
    from .partitions import DEFAULT_PARTITION_ENTRIES

    g = parser.add_argument_group(
        "several files and Dask",
        "With several DATA files, or --dask, --out is a directory that receives one file per partition "
        "(file × entry range), named <file stem>-<first entry>-<stop>.root (or .parquet), each written atomically.")
    g.add_argument("--dask", nargs="?", const="local", default=None, metavar="SCHEDULER",
                   help="score the partitions on a Dask cluster: a local cluster without SCHEDULER (or 'local'), "
                   "else a scheduler's address (tcp://host:8786) or scheduler file (.json); put it after DATA, or "
                   "write --dask=ADDRESS")
    g.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes (default: one per core)")
    g.add_argument("--threads-per-worker", type=int, default=None, help="local cluster: threads per worker (default 1)")
    g.add_argument("--retries", type=int, default=None, help="--dask: times a failed partition is run again (default 2)")
    g.add_argument("--partition-entries", type=int, default=None,
                   help=f"entries per partition (default {DEFAULT_PARTITION_ENTRIES:,}; its outputs are named by it)")
    g.add_argument("--format", choices=("root", "parquet"), default="root",
                   help="output files with several DATA or --dask: ROOT (default) or Parquet (needs pyarrow)")


def _given(args, names: dict) -> list[str]:
    return ["--" + k.replace("_", "-") for k, default in names.items() if getattr(args, k, default) != default]


def is_many(args) -> bool:
    """Whether ``bptt apply``'s arguments ask for a directory of partitions (several files or
    ``--dask``); a directory-only option with one file and no ``--dask`` is refused, not ignored."""
    if args.dask is not None or len(args.data) > 1:
        dask_only = _given(args, _DASK_ONLY)
        if args.dask is None and dask_only:
            raise ValueError(f"{', '.join(dask_only)} only apply with --dask; add --dask, or drop them")
        return True
    given = _given(args, {**_MANY_ONLY, **_DASK_ONLY})
    if given:
        raise ValueError(f"{', '.join(given)} only apply with several DATA files or --dask (one file per partition "
                         f"in --out DIR); add --dask, or drop them")
    return False


def apply_many(args) -> int:
    """``bptt apply MODEL DATA... [--dask [SCHEDULER]] --out DIR``: one file per partition."""
    from ..apply import DEFAULT_STEP_SIZE, score_name_for
    from .partitions import DEFAULT_PARTITION_ENTRIES

    if not os.path.isfile(args.model):
        raise ValueError(f"no such model file: {args.model!r}")
    if args.out is None:
        raise ValueError("several DATA files or --dask write one file per partition: pass --out DIR (a directory)")
    options = dict(
        fmt=args.format, branches=args.branch, score_name=args.score_name or score_name_for(args.model),
        out_tree=args.out_tree, prefix=args.prefix,
        step_size=DEFAULT_STEP_SIZE if args.step_size is None else args.step_size,
        entries_per_partition=DEFAULT_PARTITION_ENTRIES if args.partition_entries is None else args.partition_entries,
        progress=not args.quiet, log=lambda note: print(f"bptt apply: note: {note}", file=sys.stderr),
    )
    if args.dask is None:
        from ..model import load_model
        from .partitions import apply_files

        s = apply_files(load_model(args.model), args.data, args.tree, args.out, **options)
        where = "in this process"
    else:
        from .dask import apply_files_dask

        s = apply_files_dask(args.model, args.data, args.tree, args.out, scheduler=args.dask, workers=args.workers,
                             threads_per_worker=args.threads_per_worker,
                             retries=2 if args.retries is None else args.retries, **options)
        where = f"on {s['workers']} Dask worker{'s' if s['workers'] != 1 else ''}"
    print(f"scored {s['events']:,} events of {len(args.data)} file{'s' if len(args.data) != 1 else ''} in "
          f"{s['partitions']} partition{'s' if s['partitions'] != 1 else ''} {where} in {s['seconds']:.1f} s "
          f"({s['events_per_second']:,.0f} events/s); wrote {len(s['outputs'])} files to {s['out_dir']}")
    return 0
