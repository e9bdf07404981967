"""MPI data-parallel training (issue 21): ``mpiexec -n 2`` runs for real (MPICH from the package
index), against the same training in one process with bptt.train.fit (the oracle: the code without
bptt.scale.mpi). The float64 weights equal one process's within 1e-10 relative after an epoch,
float32 within 1e-5 after one step and the loss curve within 1e-4; with a fixed order (shards)
bit for bit, also across a resume with another number of ranks; a rank that fails ends the job."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from bptt.scale import mpi
from scale import mpi_worker
from scale.mpi_worker import TIMEOUT

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")
MPIEXEC = mpi_worker.mpiexec_path()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'bptt[mpi]')")


def run_mpi(args, n=2, cwd=None):
    t0 = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd)
    return proc, time.monotonic() - t0


def rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every case of mpi_worker.cases() trained on 2 ranks: {name: npz}."""
    out = tmp_path_factory.mktemp("mpi")
    proc, _ = run_mpi([WORKER, str(out), "train"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: np.load(out / f"{name}.npz") for name in mpi_worker.cases()}


def one_process(name, shards=False):
    """The case trained by fit in this process (shards=True: data_parallel(None, shards=S), the
    fixed order's reference in one process)."""
    model, options, S, X, y = mpi_worker.train(name, None)
    if shards:
        with mpi.data_parallel(None, shards=S):
            history = model.fit(X, y, **options)
    else:
        history = model.fit(X, y, **options)
    return model.parameters(), history


def weights(npz):
    return {k[2:]: npz[k] for k in npz.files if k.startswith("p/")}


@pytest.mark.parametrize("name", ["f64_epoch", "f64_weighted_decay_clip", "f64_stateful"])
def test_float64_weights_equal_one_process(trained, name):
    params, history = one_process(name)
    got = weights(trained[name])
    assert set(got) == set(params)
    for k in params:
        assert rel(got[k], params[k]) <= 1e-10, (k, rel(got[k], params[k]))
    np.testing.assert_allclose(trained[name]["loss"], history.loss, rtol=1e-10)
    np.testing.assert_allclose(trained[name]["val_loss"], history.val_loss, rtol=1e-10)
    assert trained[name]["events"].sum() == 230  # training and validation events, once each per epoch


def test_float32_one_step_and_loss_curve(trained):
    params, _ = one_process("f32_one_step")  # one batch of every event: one optimizer step
    got = weights(trained["f32_one_step"])
    assert got["0.W"].dtype == np.float32
    for k in params:
        assert rel(got[k], params[k]) <= 1e-5, k
    _, history = one_process("f32_epochs")
    np.testing.assert_allclose(trained["f32_epochs"]["loss"], history.loss, rtol=0, atol=1e-4)
    np.testing.assert_allclose(trained["f32_epochs"]["val_loss"], history.val_loss, rtol=0, atol=1e-4)
    assert list(trained["f32_epochs"]["events"]) == [115, 115]  # 184 training + 46 validation events, halved


@pytest.mark.parametrize("name", ["f32_fixed", "f64_fixed_stateful"])
def test_fixed_order_bit_identical_to_one_process(trained, name):
    params, history = one_process(name, shards=True)
    got = weights(trained[name])
    for k in params:
        assert np.array_equal(got[k], params[k]), (k, rel(got[k], params[k]))
    assert list(trained[name]["loss"]) == list(history.loss)


def test_dying_rank_ends_the_job_and_keeps_the_checkpoint(tmp_path):
    from bptt.io.model_file import load_checkpoint

    for mode in ("raise", "exit"):
        out = tmp_path / mode
        out.mkdir()
        proc, seconds = run_mpi([WORKER, str(out), "die", mode])
        assert proc.returncode != 0, proc.stderr[-2000:]
        assert seconds < 120
        if mode == "raise":
            assert "error on MPI rank 1 of 2: RuntimeError: planted failure of rank 1 in epoch 2" in proc.stderr
        config, state, arrays = load_checkpoint(out / "run.ckpt")
        assert state["epoch"] == 1  # the checkpoint of the last completed epoch, intact
        assert any(k.startswith("param/") for k in arrays)
