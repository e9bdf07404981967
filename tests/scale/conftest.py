"""Fixtures of the Dask tests: one LocalCluster of two single-threaded worker processes for the
session (started and closed here), three small ROOT files of TMVA's layout, and model files."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.data.root import write_tmva_root
from bptt.model import Sequential

#: Entries of the three inputs: partitions of 100 entries cut them into 100, 100, 30 | 100, 70 | 95.
SIZES = {"a": 230, "b": 170, "c": 95}
STEPS = [f"vars_time{j}" for j in range(3)]


@pytest.fixture(scope="session")
def dask_client():
    """A client of a LocalCluster of 2 worker processes × 1 thread (bptt.scale.dask.connect)."""
    from bptt.scale.dask import connect

    client, cluster = connect(workers=2, threads_per_worker=1)
    try:
        client.wait_for_workers(2, timeout=120)
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Three ROOT files (trees sgn and bkg, vars_time0..2 of 4 floats) and the events of their sgn trees."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(21)
    files, X = [], {}
    for name, n in SIZES.items():
        X[name] = rng.normal(size=(n, 3, 4)).astype(np.float32)
        files.append(write_tmva_root(d / f"{name}.root", X[name], rng.normal(size=(7, 3, 4))))
    return files, X


@pytest.fixture(scope="session")
def make_model():
    """``make_model(path, seed=5, loss="bce", output="LINEAR")``: the tutorial's shape in small (LSTM, flattened,
    dense), saved with its input branches; returns the Sequential."""

    def make(path, seed=5, loss="bce", output="LINEAR"):
        model = Sequential.from_tmva(f"LSTM|3|4|3|0|1,RESHAPE|FLAT,DENSE|3|TANH,{output}", "3|4", seed=seed, loss=loss)
        model.inputs = [{"name": b, "size": 4} for b in STEPS]
        model.save(path)
        return model

    return make


class ModelLoads:
    """How many times each worker built a network from model bytes (bptt.scale.dask.MODEL_LOADS)."""

    def __init__(self, client):
        self.client = client

    def reset(self) -> None:
        def reset():
            from bptt.scale import dask as d

            d.MODEL_LOADS["count"] = 0
            d._LOCAL.__dict__.clear()  # and forget the cached networks

        self.client.run(reset)

    def counts(self) -> dict:
        return self.client.run(lambda: __import__("bptt.scale.dask", fromlist=["MODEL_LOADS"]).MODEL_LOADS["count"])


@pytest.fixture
def model_loads(dask_client):
    """The workers' model builds, counted from zero (their cached networks forgotten)."""
    loads = ModelLoads(dask_client)
    loads.reset()
    return loads
