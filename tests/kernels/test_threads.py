"""BLAS thread control: small problems run single-threaded, and the setting is always restored."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from bptt import _threads, functional as F
from bptt.settings import settings
from bptt.functional import _plan


def numpy_blas_threads() -> int:
    infos = [i for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in (i.get("filepath") or "")]
    return infos[0]["num_threads"] if infos else -1


def test_blas_threads_sets_and_restores():
    before = numpy_blas_threads()
    with _threads.blas_threads(1):
        assert numpy_blas_threads() in (1, -1)
    assert numpy_blas_threads() == before
    with pytest.raises(RuntimeError):
        with _threads.blas_threads(1):
            raise RuntimeError("boom")
    assert numpy_blas_threads() == before


def test_functional_restores_threads_after_small_and_large_calls(monkeypatch):
    before = numpy_blas_threads()
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    W, U, b = np.ones((2, 8)) * 0.1, np.eye(2, 8) * 0.1, np.zeros(8)
    for threshold in (10**12, 0):  # every call "small", then every call "large"
        monkeypatch.setattr(settings, "single_thread_flops", threshold)
        h, cache = F.lstm_forward(x, W, U, b)
        F.lstm_backward(np.ones_like(h), cache)
        assert numpy_blas_threads() == before


@pytest.mark.parametrize("timeout, expected", [(None, 0), ("28", 0), ("18", 0), ("17", 20e6), ("4", 20e6), ("x", 0)])
def test_gemms_below_20_mflop_run_single_threaded_when_blas_threads_sleep_at_once(monkeypatch, request, timeout, expected):
    monkeypatch.setattr(settings, "single_thread_flops", 0)
    if timeout is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", timeout)
    _plan._threads_sleep_at_once.cache_clear()  # read once per process, like OpenBLAS
    request.addfinalizer(_plan._threads_sleep_at_once.cache_clear)  # so later tests read the real setting
    assert _plan._single_thread_flops() == expected
    seen = []
    real = _plan.single_threaded_if
    monkeypatch.setattr(_plan, "single_threaded_if", lambda small: seen.append(small) or real(small))
    rng = np.random.default_rng(1)
    B, T, I, H = 64, 3, 5, 64  # above the hand-written product: a BLAS GEMM per step, 2.1 MFLOP each
    x, W, U, b = (rng.normal(size=s).astype(np.float32) for s in ((B, T, I), (I, 4 * H), (H, 4 * H), (4 * H,)))
    before = numpy_blas_threads()
    h, cache = F.lstm_forward(x, W, U, b)
    F.lstm_backward(np.ones_like(h), cache)
    assert numpy_blas_threads() == before
    # forward: the call, then its loop; backward: the same
    assert seen == [expected > 0] * 4
