"""``mpiexec -n 2 bptt train``: the report, and resume with another number of ranks (a 2-rank
checkpoint resumed in one process and a 1-process checkpoint resumed on 2 ranks give the
uninterrupted run's weights bit for bit with --mpi-shards 2); and what a plain run does: no
mpi4py import, the launcher's variables, the checked options."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bptt.cli import main
from bptt.data.toy import write_tutorial_root
from bptt.layers.dense import Dense
from bptt.layers.dropout import Dropout
from bptt.model import Sequential
from bptt.scale import mpi

from scale.mpi_worker import TIMEOUT, mpiexec_path

MPIEXEC = mpiexec_path()

LAYOUT = ["--config", "net.toml", "--plots", "", "--quiet"]
#: restore_best off: the model is the last epoch's, so that epoch 2 shows in the weights.
CONFIG = """[model]
layout = "LSTM|4|5|4|0|0,LINEAR"
input_layout = "4|5"
[training]
restore_best = false
learning_rate = 0.01
batch_size = 16
"""


def mpi_train(args, cwd):
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "bptt", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def params(path):
    return Sequential.load(path).parameters()


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'bptt[mpi]')")
def test_resume_with_another_number_of_ranks(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_tutorial_root(str(tmp_path / "data.root"), n_events=60, n_steps=4, n_features=5)
    (tmp_path / "net.toml").write_text(CONFIG)
    train = ["train", data, *LAYOUT, "--mpi-shards", "2"]
    # 2 ranks for epoch 1, then one process for epoch 2
    proc = mpi_train([*train, "--epochs", "1", "--checkpoint", "two.ckpt", "--out", "two1.bptt"], tmp_path)
    assert "on 60 events (2 MPI ranks, 30 events each, 2 parts per batch added in a fixed order)" in proc.stdout
    assert proc.stdout.count("trained 1 epochs") == 1  # rank 0 alone reports
    assert main([*train, "--epochs", "2", "--resume", "two.ckpt", "--out", "two_then_one.bptt"]) == 0
    # one process for epoch 1, then 2 ranks for epoch 2
    assert main([*train, "--epochs", "1", "--checkpoint", "one.ckpt", "--out", "one1.bptt"]) == 0
    mpi_train([*train, "--epochs", "2", "--resume", "one.ckpt", "--out", "one_then_two.bptt"], tmp_path)
    # uninterrupted, one process: the same S parts; and without them (fit alone)
    assert main([*train, "--epochs", "2", "--out", "straight.bptt"]) == 0
    assert main(["train", data, *LAYOUT, "--epochs", "2", "--out", "plain.bptt"]) == 0
    capsys.readouterr()
    straight, plain = params("straight.bptt"), params("plain.bptt")
    for other in ("two_then_one.bptt", "one_then_two.bptt"):
        got = params(other)
        for k in straight:
            assert np.array_equal(got[k], straight[k]), (other, k)
    for k in plain:
        assert np.abs(straight[k] - plain[k]).max() <= 1e-5 * np.abs(plain[k]).max(), k
    assert not np.array_equal(params("two1.bptt")["0.W"], straight["0.W"])  # epoch 2 did train


def test_plain_runs_never_import_mpi4py(tmp_path):
    data = write_tutorial_root(str(tmp_path / "data.root"), n_events=20, n_steps=4, n_features=5)
    code = ("import sys, bptt, bptt.train, bptt.scale.mpi; from bptt.cli import main; "
            f"main([{data!r}, '--layout', 'LSTM|2|5|4|0|0,LINEAR', '--input-layout', '4|5', '--epochs', '1', "
            f"'--quiet', '--plots', '', '--out', {str(tmp_path / 'm.bptt')!r}]); print('mpi4py' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in mpi.LAUNCHER_VARIABLES}
    proc = subprocess.run([sys.executable, "-c", code.replace("main([", "main(['train', ")], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert "MPI" not in proc.stdout


def test_launcher_variables():
    assert not mpi.launched_by_mpiexec({})
    assert not mpi.launched_by_mpiexec({"PMI_SIZE": ""})
    assert mpi.launched_by_mpiexec({"PMI_SIZE": "2", "PMI_RANK": "0"})  # MPICH's hydra
    assert mpi.launched_by_mpiexec({"OMPI_COMM_WORLD_SIZE": "4"})  # Open MPI


@pytest.mark.parametrize("shards", [0, -2, 2.0, True, "2"])
def test_shards_checked(shards):
    with pytest.raises(ValueError, match=f"shards must be a positive multiple of the number of MPI ranks \\(1\\); got {shards!r}"):
        mpi.DataParallel(None, shards=shards)


def test_dropout_refused_and_data_parallel_not_nested():
    rng = np.random.default_rng(0)
    model = Sequential([Dense(3, 4, dtype=np.float64, seed=0), Dropout(0.5, seed=0), Dense(4, 1, dtype=np.float64, seed=1)])
    X, y = rng.normal(size=(20, 3)), (rng.random(20) > 0.5).astype(float)
    with mpi.data_parallel(None, shards=2):
        with pytest.raises(ValueError, match="Dropout with a rate above 0; each rank would draw its own masks"):
            model.fit(X, y, epochs=1, verbose=False, standardize=False)
        with pytest.raises(ValueError, match="already inside a data_parallel block"):
            with mpi.data_parallel(None):
                pass
    model.layers[1].rate = 0.0  # the identity: nothing drawn
    with mpi.data_parallel(None, shards=2):
        model.fit(X, y, epochs=1, verbose=False, standardize=False)
    from bptt import train

    assert train._data_parallel is None  # the block is left as it was found


def test_one_process_parts_equal_fit():
    """S parts in one process (the fixed order's arithmetic) against fit: float64 within 1e-12,
    a partial last batch (23 events: 3 batches of 10, 10, 3) and 3 parts of a batch of 10."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(29, 4, 2)), (rng.random(29) > 0.5).astype(float)
    models = [Sequential.from_tmva("GRU|3|2|4|0|0,LINEAR", "4|2", seed=0, dtype=np.float64) for _ in range(2)]
    options = dict(epochs=2, batch_size=10, learning_rate=1e-2, verbose=False, early_stopping=None)
    expected = models[0].fit(X, y, **options)
    with mpi.data_parallel(None, shards=3) as dp:
        got = models[1].fit(X, y, **options)
    assert dp.events_per_rank == [29]
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    np.testing.assert_allclose(got.val_loss, expected.val_loss, rtol=1e-12)
    for k, p in models[0].parameters().items():
        np.testing.assert_allclose(models[1].parameters()[k], p, rtol=1e-12, atol=1e-15)
