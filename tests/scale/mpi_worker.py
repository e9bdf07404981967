"""Run by tests/scale/test_mpi.py under ``mpiexec -n 2`` (not a test module): trainings inside
bptt.scale.mpi.data_parallel; rank 0 writes each one's weights and history to an npz file.

    python mpi_worker.py OUT_DIR train      several networks and options (the cases of cases())
    python mpi_worker.py OUT_DIR die MODE   rank 1 fails in epoch 2 (MODE raise: an exception;
                                            exit: os._exit), after epoch 1's checkpoint
"""

from __future__ import annotations

import os
import sys

import numpy as np

from bptt.model import Sequential
from bptt.scale.mpi import abort_on_error, data_parallel, world

TIMEOUT = 240  # seconds: a whole mpiexec run in the tests (a hang in a collective would wait forever)


def mpiexec_path() -> str | None:
    """The mpiexec beside this Python (pip's mpich), else the one on PATH, else None."""
    import shutil

    for path in (os.path.join(os.path.dirname(sys.executable), "mpiexec"), shutil.which("mpiexec")):
        if path and os.path.exists(path):
            return path
    return None


LSTM = "LSTM|6|3|5|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR"
STATEFUL = "LSTM|6|3|5|1|0,LINEAR"


def data(n=230, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5, 3))
    y = (X[:, :, 0].mean(1) + 0.3 * rng.normal(size=n) > 0).astype(float)
    w = rng.uniform(-0.2, 2.0, size=n)
    return X, y, w


def cases():
    """name -> (layout, dtype, fit options, shards); the test trains the same in one process."""
    common = dict(batch_size=32, learning_rate=1e-2, early_stopping=None, verbose=False)
    return {
        "f64_epoch": (LSTM, "float64", dict(common, epochs=1), None),
        "f64_weighted_decay_clip": (LSTM, "float64", dict(common, epochs=2, weight_decay=1e-3, clip_norm=0.5,
                                                          weighted=True), None),
        "f64_stateful": (STATEFUL, "float64", dict(common, epochs=2), None),
        "f32_one_step": (LSTM, "float32", dict(common, epochs=1, batch_size=230, validation_split=0.0), None),
        "f32_epochs": (LSTM, "float32", dict(common, epochs=3), None),
        "f32_fixed": (LSTM, "float32", dict(common, epochs=2), 4),
        "f64_fixed_stateful": (STATEFUL, "float64", dict(common, epochs=2), 2),
    }


def train(name, comm, shards_override=None):
    layout, dtype, options, shards = cases()[name]
    options = dict(options)
    X, y, w = data()
    if options.pop("weighted", False):
        options["sample_weight"] = w
    model = Sequential.from_tmva(layout, "5|3", seed=0, dtype=np.dtype(dtype))
    return model, options, shards, X, y


def main(out: str, what: str, mode: str | None = None) -> None:
    comm = world()
    rank = comm.Get_rank()
    with abort_on_error(comm, "mpi_worker"):
        if what == "train":
            for name in cases():
                model, options, shards, X, y = train(name, comm)
                with data_parallel(comm, shards=shards) as dp:
                    history = model.fit(X, y, **options)
                if rank == 0:
                    np.savez(os.path.join(out, name + ".npz"), loss=history.loss, val_loss=history.val_loss,
                             events=np.array(dp.events_per_rank), **{"p/" + k: p for k, p in model.parameters().items()})
        elif what == "die":
            model, options, _, X, y = train("f64_epoch", comm)
            calls = {"n": 0}
            backward = model.backward

            def failing_backward(dout):  # rank 1, epoch 2 (6 batches of 32 per rank and epoch), third batch
                calls["n"] += 1
                if rank == 1 and calls["n"] == 9:
                    if mode == "exit":
                        os._exit(3)
                    raise RuntimeError("planted failure of rank 1 in epoch 2")
                return backward(dout)

            model.backward = failing_backward
            with data_parallel(comm) as dp:
                model.fit(X, y, **dict(options, epochs=3), checkpoint=os.path.join(out, "run.ckpt"))
        else:
            raise ValueError(f"mpi_worker: unknown task {what!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
