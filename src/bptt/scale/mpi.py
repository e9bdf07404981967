"""Data-parallel training on MPI (issue 21): ``mpiexec -n N bptt train ...``.

Every rank reads the same events and draws the same validation split and the same batch order
(the same seed); each global batch of ``batch_size`` events is cut into ``shards`` contiguous
parts by position (shard ``s`` of ``S`` holds positions ``[s·B/S, (s+1)·B/S)`` of the batch) and
each rank computes the parts it owns. A part's loss and gradient are scaled so that the parts add
up to the one-process batch's (the mean over the batch, or ``Σ w ℓ / weight_total`` with event
weights, as :func:`bptt.train.fit` computes it); the flattened gradients are summed over the ranks
in one preallocated buffer, and every rank then takes the same optimizer step (clipping and weight
decay on the summed gradient), so the weights stay identical on every rank: a digest of them is
compared across the ranks after every epoch, and a difference stops the run. The validation loss is
summed over the ranks' parts of each validation batch; losses are gathered and added in rank order,
so that every rank takes the same early-stopping decision.

Two reductions:

- the default (``shards=None``: one part per rank): ``MPI_Allreduce(SUM)``, whose summation order
  is MPI's own: weights equal one process's to rounding (float64: about 1e-15 relative per step);
- a fixed order (``shards=S``, ``--mpi-shards S``): the batch is cut into S parts whatever the
  number of ranks N (N must divide S; each rank computes S/N of them), the parts' gradients are
  gathered on every rank (``MPI_Allgather``) and added in part order. The weights then depend on S
  only: a run on 1, 2 or S ranks with the same S, or resumed with another N, gives bit-identical
  weights.

Rank 0 reports, writes the checkpoints and the model; the others write nothing. A checkpoint holds
no per-rank state (the batch order comes from the seed and the epoch), so a run resumes with the
same or another number of ranks. An exception on one rank ends the whole job
(:func:`abort_on_error`: ``MPI_Abort`` with a one-line message) instead of leaving the other ranks
waiting in a collective; a rank that dies is seen by ``mpiexec``, which ends the job; the last
checkpoint, written atomically, stays intact.

mpi4py is imported only by :func:`world`, called when a launcher is detected
(:func:`launched_by_mpiexec`) or ``--mpi`` is given: ``import bptt`` never imports it. MPICH and
mpi4py come with ``pip install bptt[mpi]``. docs/scaling.md has the measurements and the cost model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys

import numpy as np

__all__ = ["DataParallel", "abort_on_error", "data_parallel", "launched_by_mpiexec", "train_command", "world"]

#: Variables that MPI launchers put in the environment of the processes they start (MPICH's and
#: Intel MPI's hydra and Slurm's PMI: PMI_*; Open MPI: OMPI_COMM_WORLD_*; PMIx: PMIX_RANK).
LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def launched_by_mpiexec(environ=None) -> bool:
    """True when one of :data:`LAUNCHER_VARIABLES` is set: this process was started by mpiexec
    (or srun); a plain run sets none of them, and then mpi4py is not imported."""
    environ = os.environ if environ is None else environ
    return any(environ.get(name) for name in LAUNCHER_VARIABLES)


def world():
    """``MPI.COMM_WORLD`` (imports mpi4py, which initialises MPI)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ValueError(
            f"MPI training needs mpi4py and an MPI library ({exc}): pip install 'bptt[mpi]' (mpi4py and MPICH)"
        ) from None
    return MPI.COMM_WORLD


def _digest(arrays) -> bytes:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()[:16]


class DataParallel:
    """The ranks' shares of each batch and the sums over the ranks, for :func:`bptt.train.fit`
    (active inside :func:`data_parallel`).

    Args:
        comm: an mpi4py communicator (None: one process, which with ``shards`` computes the same
            parts as N ranks would: the reference of the fixed order).
        shards: None (one part per rank, summed by ``MPI_Allreduce``) or the number of parts of
            each batch, added in a fixed order (a multiple of the number of ranks).
    """

    def __init__(self, comm=None, *, shards: int | None = None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        if shards is not None and (
            isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1 or shards % self.size
        ):
            raise ValueError(
                f"shards must be a positive multiple of the number of MPI ranks ({self.size}); got {shards!r}: "
                f"give e.g. --mpi-shards {self.size}, or leave it out for MPI's own reduction"
            )
        self.fixed = shards is not None
        self.shards = int(shards) if self.fixed else self.size
        per = self.shards // self.size
        self.mine = range(self.rank * per, (self.rank + 1) * per)
        self.events = 0  # events (training and validation) this rank computed in the last epoch
        self.events_per_rank: list[int] = []
        self._buffers = None
        self._started = False
        self._epoch_events = 0
        self._by_position = False
        self._states = None  # a stateful network's carried states, one per part of this rank

    # ── what fit asks

    def prepare(self, model, verbose: bool, checkpoint):
        """``(verbose, checkpoint)`` for this rank's fit: rank 0 reports and writes checkpoints.
        Refuses what the parts cannot compute as one process does."""
        drop = [type(layer).__name__ for layer in model.layers if getattr(layer, "rate", 0) and hasattr(layer, "get_rng_state")]
        if drop:
            raise ValueError(
                f"MPI training: the network has {', '.join(drop)} with a rate above 0; each rank would draw its "
                f"own masks and the weights would not be one process's: set the dropout rate to 0 or train in one process"
            )
        stateful = any(getattr(layer, "stateful", False) for layer in model.layers)
        self._started = False
        self._states = None
        self._epoch_events = 0
        self._by_position = stateful
        return bool(verbose) and self.rank == 0, checkpoint if self.rank == 0 else None

    def span(self, shard: int, n: int, batch_size: int) -> tuple[int, int]:
        """Positions ``[lo, hi)`` of part ``shard`` in a batch of ``n ≤ batch_size`` events: equal
        parts of the batch, or for a stateful network the part's positions in a full batch (row k
        of every batch stays on one rank, with its carried state)."""
        basis = batch_size if self._by_position else n
        lo = min(shard * basis // self.shards, n)
        return lo, min((shard + 1) * basis // self.shards, n)

    def batch(self, model, Xt, Yt, Wt, idx, batch_size: int) -> float:
        """Forward and backward of this rank's parts of the batch ``idx``; leaves the gradient of
        the whole batch (summed over the ranks) in ``model.gradients()`` and returns the batch's loss."""
        grads = model.gradients()
        if self._buffers is None or self._buffers[0].shape[1] != sum(g.size for g in grads.values()):
            self._allocate(grads, model.dtype)
        send, recv, losses, all_losses = self._buffers
        if not self._started:
            self._agree("the weights and the training data at the start", [*model.parameters().values(), Yt,
                                                                          np.asarray(Xt.shape)])
            self._started = True
        n = len(idx)
        for j, shard in enumerate(self.mine):
            lo, hi = self.span(shard, n, batch_size)
            losses[j] = 0.0
            if hi <= lo:
                send[j] = 0
                continue
            part = idx[lo:hi]
            self._epoch_events += hi - lo
            from .._validation import NonFiniteError

            try:
                self._swap_in(model, j)
                out = model.forward(Xt[part], training=True)
                if Wt is None:
                    loss, dout = model.loss.value_and_grad(out, Yt[part])
                    loss, dout = loss * (hi - lo) / n, dout * ((hi - lo) / n)
                else:
                    loss, dout = model.loss.value_and_grad(out, Yt[part], Wt[part], weight_total=n)
                model.backward(dout)
                self._swap_out(model, j)
            except NonFiniteError:  # every rank then sees a NaN gradient and stops with fit's message
                losses[j], send[j] = np.nan, np.nan
                continue
            losses[j] = loss
            self._flatten(model.gradients(), send[j])
        total = self._sum(send, recv, losses, all_losses)
        self._unflatten(total, grads)
        return float(self._ordered_sum(all_losses))

    def validation_loss(self, model, Xv, Yv, batch_size: int, Wv=None) -> float:
        """The loss on the validation part as :func:`bptt.train._batched_loss` gives it, each rank
        computing its parts of each validation batch (stateful layers start from zeros and carry
        their state from batch to batch; the state they held is put back)."""
        held, train_states = [layer.get_state() for layer in model.layers], self._states
        model.reset_states()
        self._states = None
        part = np.zeros(len(self.mine))
        w_total = None if Wv is None else Wv.sum()
        for i in range(0, len(Xv), batch_size):
            n = min(batch_size, len(Xv) - i)
            for j, shard in enumerate(self.mine):
                lo, hi = self.span(shard, n, batch_size)
                if hi <= lo:
                    continue
                self._swap_in(model, j)
                out = model.forward(Xv[i + lo : i + hi], training=False)
                self._swap_out(model, j)
                self._epoch_events += hi - lo
                if Wv is None:
                    part[j] += model.loss(out, Yv[i + lo : i + hi]) * (hi - lo)
                else:
                    part[j] += model.loss(out, Yv[i + lo : i + hi], Wv[i + lo : i + hi], weight_total=w_total)
        for layer, state in zip(model.layers, held):
            layer.set_state(state)
        self._states = train_states
        total = self._ordered_sum(self._gather(part))
        return total / len(Xv) if Wv is None else total

    def end_epoch(self, model, epoch: int) -> None:
        """After an epoch: the ranks' weights compared (a digest of them), the events each computed."""
        self._agree(f"the weights after epoch {epoch}", list(model.parameters().values()))
        self._states = None  # the next epoch starts from zeros, as fit's
        self.events = self._epoch_events
        self.events_per_rank = [int(e) for e in self._gather(np.array([self._epoch_events], np.float64))]
        self._epoch_events = 0

    def share_text(self) -> str:
        """``"2 MPI ranks, 1,600 events each"`` (training and validation events per rank and epoch)."""
        counts = sorted(set(self.events_per_rank)) or [0]
        each = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"
        ranks = f"{self.size} MPI rank{'s' if self.size != 1 else ''}"
        order = f", {self.shards} parts per batch added in a fixed order" if self.fixed else ""
        return f"{ranks}, {each} events each{order}"

    def _swap_in(self, model, j: int) -> None:
        """A stateful network's carried state of part ``j`` (when a rank computes several parts)."""
        if self._by_position and len(self.mine) > 1:
            states = (self._states or {}).get(j)
            for k, layer in enumerate(model.layers):
                layer.set_state(states[k] if states else {})

    def _swap_out(self, model, j: int) -> None:
        if self._by_position and len(self.mine) > 1:
            self._states = self._states or {}
            self._states[j] = [layer.get_state() for layer in model.layers]

    # ── the sums over the ranks

    def _allocate(self, grads, dtype) -> None:
        size = sum(g.size for g in grads.values())
        k = len(self.mine)
        send = np.zeros((k, size), dtype)
        recv = np.zeros((self.shards, size), dtype) if self.fixed else send
        self._buffers = (send, recv, np.zeros(k), np.zeros(self.shards))

    @staticmethod
    def _flatten(grads, row) -> None:
        at = 0
        for g in grads.values():
            row[at : at + g.size] = g.reshape(-1)
            at += g.size

    @staticmethod
    def _unflatten(row, grads) -> None:
        at = 0
        for g in grads.values():
            g[...] = row[at : at + g.size].reshape(g.shape)
            at += g.size

    def _sum(self, send, recv, losses, all_losses):
        """The gradient of the whole batch (a row of a buffer); ``all_losses`` filled in part order."""
        if self.comm is None:
            recv[...] = send
            all_losses[...] = losses
        else:
            self.comm.Allgather(losses, all_losses)
            if self.fixed:
                self.comm.Allgather(send, recv)
            else:
                from mpi4py import MPI

                self.comm.Allreduce(MPI.IN_PLACE, send, op=MPI.SUM)
                return send[0]
        total = recv[0]  # the parts added one after the other, in part order
        for s in range(1, len(recv)):
            total += recv[s]
        return total

    def _gather(self, values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, np.float64)
        if self.comm is None:
            return values.copy()
        out = np.zeros(len(values) * self.size)
        self.comm.Allgather(values, out)
        return out

    @staticmethod
    def _ordered_sum(values) -> float:
        total = 0.0
        for x in values:
            total += float(x)
        return total

    def _agree(self, what: str, arrays) -> None:
        """Stop every rank (the same ValueError on each) when the ranks' ``arrays`` differ."""
        if self.comm is None:
            return
        digests = self.comm.allgather(_digest(arrays))
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise ValueError(
                f"MPI training: {what} differ between rank 0 and rank{'s' if len(differ) > 1 else ''} "
                f"{', '.join(map(str, differ))}: every rank must read the same events with the same options and "
                f"seed; if they did, MPI's sum differed between ranks: give --mpi-shards {self.size} (a fixed order)"
            )


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def ranks_on_this_node(comm) -> int:
    """How many of ``comm``'s ranks run on this node (a collective call)."""
    if comm is None:
        return 1
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


@contextlib.contextmanager
def data_parallel(comm=None, *, shards: int | None = None, blas_threads: int | None = None):
    """Inside the block, :func:`bptt.train.fit` (and ``model.fit``, TMVA's multi-phase plans)
    trains data-parallel over ``comm``'s ranks; yields the :class:`DataParallel`. Every rank must
    enter the block and call fit with the same data and options.

    ``blas_threads``: NumPy's BLAS threads per rank (and bptt's second kernel thread, off at 1);
    None: 1 when the ranks on this node are at least its cores or with ``shards`` (a fixed order
    is bit for bit the same on any number of ranks only when every process computes with the same
    threads), else unchanged."""
    from .. import train
    from .._threads import blas_threads as limit

    if train._data_parallel is not None:
        raise ValueError("data_parallel: already inside a data_parallel block; nest none")
    dp = DataParallel(comm, shards=shards)
    if blas_threads is None and (dp.fixed or ranks_on_this_node(comm) >= _cores()):
        blas_threads = 1  # a fixed order: the same arithmetic in every process (threads may split sums)
    dp.blas_threads = blas_threads
    train._data_parallel = dp
    try:
        with limit(dp.blas_threads) if dp.blas_threads else contextlib.nullcontext():
            yield dp
    finally:
        train._data_parallel = None


@contextlib.contextmanager
def abort_on_error(comm, what: str = "bptt train"):
    """An exception on one rank ends every rank's job: its message on stderr (one line, naming the
    rank) and ``MPI_Abort`` (exit code 2 for ValueError and other usage errors, 130 for Ctrl-C, else 1)
    rather than the other ranks waiting for it in a collective forever."""
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (None, 0) and comm is not None and comm.Get_size() > 1:
            comm.Abort(exc.code if isinstance(exc.code, int) else 1)
        raise
    except BaseException as exc:
        if comm is None or comm.Get_size() <= 1:
            raise
        code = 130 if isinstance(exc, KeyboardInterrupt) else 2 if isinstance(exc, (ValueError, FloatingPointError, OSError)) else 1
        print(f"{what}: error on MPI rank {comm.Get_rank()} of {comm.Get_size()}: {type(exc).__name__}: {exc}; "
              f"ending all ranks (the last checkpoint, if any, is intact)", file=sys.__stderr__, flush=True)
        comm.Abort(code)


def train_command(args, command) -> int:
    """``bptt train`` under mpiexec: ``command(args)`` (cli's train) on every rank inside
    :func:`data_parallel`, with ``args.data_parallel`` set; rank 0 alone prints and writes."""
    comm = world() if args.mpi or launched_by_mpiexec() else None  # --mpi-shards alone: one process, S parts
    with abort_on_error(comm):
        quiet = contextlib.ExitStack()
        if comm is not None and comm.Get_rank() != 0:  # the same notes and progress on every rank: rank 0's are enough
            devnull = quiet.enter_context(open(os.devnull, "w"))
            quiet.enter_context(contextlib.redirect_stdout(devnull))
            quiet.enter_context(contextlib.redirect_stderr(devnull))
        with quiet, data_parallel(comm, shards=args.mpi_shards) as dp:
            if dp.blas_threads == 1 and dp.rank == 0:
                why = "--mpi-shards" if dp.fixed else f"{dp.size} MPI ranks on {_cores()} cores"
                print(f"bptt train: note: {why}: 1 BLAS thread per rank", file=sys.stderr)
            args.data_parallel = dp
            code = command(args)
        if code and comm is not None and comm.Get_size() > 1:  # an error the command reported itself
            sys.stderr.flush()
            comm.Abort(code)
        return code
