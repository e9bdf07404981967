"""``bptt apply FILES... --dask [SCHEDULER] --out DIR``: the partitions of :mod:`bptt.scale.partitions`
as tasks on a Dask cluster.

- The cluster: a ``distributed.LocalCluster`` of ``workers`` processes with ``threads_per_worker``
  threads each when no scheduler is named (default: one single-threaded worker per core, and
  bptt's time loops on one thread in each, so that N workers use N cores), else the scheduler at an
  address (``tcp://host:8786``) or described by a scheduler file (``scheduler.json``, what
  ``dask scheduler --scheduler-file`` and dask-jobqueue/dask-mpi write).
- The model is shipped once: its file's bytes are scattered to every worker (``broadcast=True``)
  and each task receives that one copy; a worker builds the network from them once
  (:func:`worker_model`, cached by the bytes' SHA-256 per worker thread), never per task.
- Each task writes one partition's file atomically; a task that raises is retried ``retries``
  times (Dask's ``retries=``), a task whose worker dies is run again elsewhere (the scheduler's
  ``allowed-failures``); the temporary files of killed attempts are removed at the end. A partition
  that still fails is named in the error, and the other outputs are complete.
- Progress (a bar of events) and a summary: events, partitions, seconds, events per second.

    >>> from bptt.scale.dask import default_workers
    >>> default_workers() >= 1
    True
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence

from ..apply import DEFAULT_STEP_SIZE
from .partitions import DEFAULT_PARTITION_ENTRIES, Plan, plan, remove_stale_temporaries, summary, write_partition

__all__ = ["apply_files_dask", "connect", "default_workers", "model_bytes", "worker_model"]

_LOCAL = threading.local()
#: Networks built from model bytes in this process, counted (tests check "once per worker").
MODEL_LOADS = {"count": 0}
_LOADS_LOCK = threading.Lock()


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def model_bytes(model) -> bytes:
    """The model file's bytes: read from a path, or written from a ``Sequential`` (what the workers
    receive; a model file is safetensors plus JSON and never runs code when read)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ValueError(f"no such model file: {path!r}; pass a file written by bptt train or Sequential.save")
        with open(path, "rb") as fh:
            return fh.read()
    with tempfile.TemporaryDirectory(prefix="bptt-model-") as d:
        path = model.save(os.path.join(d, "model.bptt"))
        with open(path, "rb") as fh:
            return fh.read()


def worker_model(data: bytes, digest: str | None = None):
    """The network of the model file ``data``, built once per process thread and kept (keyed by
    the bytes' SHA-256, ``digest`` when the caller knows it): what each task calls."""
    digest = digest or hashlib.sha256(data).hexdigest()
    cache = getattr(_LOCAL, "models", None)
    if cache is None:
        cache = _LOCAL.models = {}
    if digest not in cache:
        from ..model import load_model

        with tempfile.TemporaryDirectory(prefix="bptt-model-") as d:
            path = os.path.join(d, "model.bptt")
            with open(path, "wb") as fh:
                fh.write(data)
            cache.clear()  # one model per thread: a new run's model replaces the last one
            cache[digest] = load_model(path)
        with _LOADS_LOCK:
            MODEL_LOADS["count"] += 1
    return cache[digest]


def _score_task(data: bytes, digest: str, the_plan: Plan, part) -> dict:
    """One partition on a worker: the cached network, then :func:`write_partition`."""
    result = write_partition(worker_model(data, digest), the_plan, part)
    try:
        from distributed import get_worker

        result["worker"] = get_worker().address
    except ValueError:  # not inside a worker (a synchronous scheduler)
        result["worker"] = "local"
    return result


def _looks_like_data(scheduler: str) -> bool:
    return scheduler.endswith((".root", ".ROOT")) or (os.path.isfile(scheduler) and not scheduler.endswith(".json"))


def connect(scheduler: str | None = None, *, workers: int | None = None, threads_per_worker: int | None = None):
    """``(client, cluster)``: a client of a new ``LocalCluster`` (``scheduler`` None or ``"local"``;
    ``cluster`` is then the cluster to close), or of the scheduler at an address or in a scheduler
    file (``cluster`` None). ``workers`` and ``threads_per_worker`` are for a local cluster only."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs Dask's distributed scheduler: pip install 'bptt[dask]' (or dask-awkward "
                         "distributed), or drop --dask to score the files in this process") from None

    local = scheduler in (None, "local")
    if not local and (workers is not None or threads_per_worker is not None):
        raise ValueError(
            f"--workers and --threads-per-worker size a local cluster; the scheduler {scheduler!r} has its own "
            f"workers: drop them, or drop the address for a local cluster"
        )
    if local:
        n = default_workers() if workers is None else workers
        threads = 1 if threads_per_worker is None else threads_per_worker
        for name, value in (("--workers", n), ("--threads-per-worker", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        # one core per worker thread: bptt's time loops on one thread (BPTT_LOOP_THREADS), and the
        # nanny already limits OpenMP/BLAS threads to one (distributed.nanny.pre-spawn-environ)
        env = {"BPTT_LOOP_THREADS": "1"} if threads == 1 else {}
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR, env=env)
        try:
            return Client(cluster), cluster
        except BaseException:
            cluster.close()
            raise
    if _looks_like_data(scheduler):
        raise ValueError(
            f"--dask {scheduler!r} looks like an input file, not a scheduler; put --dask after the input files, "
            f"or write --dask=tcp://host:8786 (or --dask=local)"
        )
    try:
        if scheduler.endswith(".json"):
            if not os.path.isfile(scheduler):
                raise ValueError(f"no such scheduler file: {scheduler!r}")
            return Client(scheduler_file=scheduler, timeout="20s"), None
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise ValueError(
            f"cannot reach the Dask scheduler {scheduler!r} ({type(exc).__name__}: {exc}); start one "
            f"(dask scheduler) or drop the address to run a local cluster"
        ) from None


def apply_files_dask(model, files: Sequence, tree: str | None, out_dir, *, client=None, scheduler: str | None = None,
                     workers: int | None = None, threads_per_worker: int | None = None, retries: int = 2,
                     fmt: str = "root", branches: Sequence[str] = (), score_name: str = "bptt",
                     out_tree: str | None = None, prefix: str | None = None, step_size: int = DEFAULT_STEP_SIZE,
                     entries_per_partition: int | None = DEFAULT_PARTITION_ENTRIES, progress: bool = False,
                     log=None) -> dict:
    """Score ``files`` on a Dask cluster, one output file per partition in ``out_dir`` (the names
    and contents of :func:`bptt.scale.partitions.apply_files`).

    Args:
        model: a model file's path or a ``Sequential``.
        client: a ``distributed.Client`` to use (left open); else ``scheduler`` (an address, a
            scheduler file, or None for a ``LocalCluster`` of ``workers`` × ``threads_per_worker``,
            started and closed here).
        retries: how many times a task that raises is run again before its partition is reported
            as failed.
        Other arguments: as :func:`bptt.scale.partitions.plan`.

    Returns the summary dict (events, partitions, seconds, events_per_second, workers, outputs…).
    Raises ValueError naming the partitions that failed after their retries.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number ≥ 0; got {retries!r} (--retries)")
    data = model_bytes(model)
    digest = hashlib.sha256(data).hexdigest()
    local_model = worker_model(data, digest) if isinstance(model, (str, os.PathLike)) else model
    the_plan = plan(local_model, files, tree, out_dir, fmt=fmt, branches=branches, score_name=score_name,
                    out_tree=out_tree, prefix=prefix, step_size=step_size, entries_per_partition=entries_per_partition)
    if log:
        if the_plan.spec.note:
            log(the_plan.spec.note)
        for f in the_plan.empty_files:
            log(f"{f!r} has no entries: no output file for it")
    cluster, own = None, client is None
    if own:
        client, cluster = connect(scheduler, workers=workers, threads_per_worker=threads_per_worker)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        [shipped] = client.scatter([data], broadcast=True, hash=False)
        run = uuid.uuid4().hex[:8]
        futures = {
            client.submit(_score_task, shipped, digest, the_plan, part, retries=retries, pure=False,
                          key=f"bptt-apply-{part.output_name(the_plan.fmt)}-{run}"): part
            for part in the_plan.partitions
        }
        results, failed = _gather(futures, the_plan, progress, tqdm)
        client.cancel([shipped])
    finally:
        if own:
            client.close()
        if cluster is not None:
            cluster.close()
    remove_stale_temporaries(the_plan)
    if failed:
        shown = "; ".join(f"{p.output_name(the_plan.fmt)} ({p.path} entries {p.start}…{p.stop - 1}): {e}"
                          for p, e in failed[:3])
        more = f"; … ({len(failed)} in all)" if len(failed) > 3 else ""
        raise ValueError(
            f"{len(failed)} of {len(futures)} partitions failed after {retries} retr{'y' if retries == 1 else 'ies'}: "
            f"{shown}{more}; the other {len(results)} outputs in {the_plan.out_dir!r} are complete, and a failed "
            f"partition has no file: fix the cause and run again (outputs are replaced atomically)"
        )
    return summary(the_plan, results, time.perf_counter() - t0, n_workers)


def _gather(futures: dict, the_plan: Plan, progress: bool, tqdm) -> tuple[list[dict], list]:
    """Wait for every task; ``(results, [(partition, error text), …])``, with a bar of events.

    A task whose result was lost (the worker holding it died before the result was fetched: its
    status is then ``"lost"`` and the scheduler computes it again) is waited for, not reported as
    failed; a task that raised, or was cancelled (distributed's CancelledError is an Exception), is
    reported with its error."""
    from distributed import as_completed

    results, failed = [], []
    with tqdm(total=the_plan.events, unit="ev", unit_scale=True, disable=not progress, desc="scoring",
              leave=False) as bar:
        for future in as_completed(list(futures)):
            part = futures[future]
            try:
                results.append(future.result())  # a lost result: computed again and waited for
            except Exception as exc:
                failed.append((part, f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
            bar.update(part.entries)
    failed.sort(key=lambda pe: (pe[0].path, pe[0].start))
    return results, failed
