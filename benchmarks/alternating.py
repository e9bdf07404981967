"""Measurements in alternating processes (benchmarks/ragged.py, benchmarks/bidirectional.py).

Each measurement is a fresh child process of the calling script, started with the default
environment, that imports one library only (no PyTorch OpenMP team spinning beside NumPy's
BLAS threads, no variable set), warms up and reports the median of its timed steps; the parent
runs the children in turns and takes the median over the rounds (``timing._LoadMeter(children=True)``
says how much of the machine other processes used meanwhile).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


#: Warm-up before the timed steps: at least this long and 5 steps (compilation from the cache,
#: caches, BLAS threads).
WARMUP_SECONDS = 1.0


def report_median(step: Callable[[], object], repeats: int) -> None:
    """In a child: warm ``step`` up, time ``repeats`` calls and print their median (ms) as JSON."""
    t_end = time.perf_counter() + WARMUP_SECONDS
    n = 0
    while n < 5 or time.perf_counter() < t_end:
        step()
        n += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"ms": 1e3 * statistics.median(times)}))


def run_child(script: str, *args) -> float:
    """Run ``script --child ARGS...`` in a fresh process; its median in ms."""
    cmd = [sys.executable, os.path.abspath(script), "--child", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def torch_step(cell: str, I: int, H: int, x, dout, lengths=None, bidirectional: bool = False):
    """A PyTorch training step of ``nn.LSTM/GRU/RNN(I, H, batch_first=True)``: forward over ``x
    (B, T, I)`` (packed by ``pack_padded_sequence(..., enforce_sorted=False)`` and padded back to T
    with ``lengths``), ``out.backward(dout)``, the gradients set to None first."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T = x.shape[1]
    m = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](I, H, batch_first=True,
                                                                                 bidirectional=bidirectional)
    params = list(m.parameters())
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    dout = torch.from_numpy(dout)
    L = torch.from_numpy(lengths) if lengths is not None else None

    def step():
        for q in params:
            q.grad = None
        xt.grad = None
        if L is None:
            out, _ = m(xt)
        else:
            packed = pack_padded_sequence(xt, L, batch_first=True, enforce_sorted=False)
            out, _ = m(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        out.backward(dout)
        return xt.grad

    return step
