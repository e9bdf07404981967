"""Timing of one (cell, row, mode): bptt and PyTorch interleaved in turns, repeated while unsteady.

Both implementations run in one process, interleaved in turns (a few calls of A, a few of B, ...)
after a warm-up; each turn opens with untimed calls that let the other library's idle threads
settle (see :func:`_interleaved`); the figure is the median of the timed repeats
(``time.perf_counter``). Each result also carries the GEMM floor: the flops of the call
(:func:`grid.flops`) divided by the measured GEMM rate (:func:`machine.gemm_rate`).

Guards against a distorted comparison on a small machine (the first, OpenBLAS's spinning idle
threads, is the runner's child process with a short spin: see ``run.py``):

* PyTorch's OpenMP threads (libgomp) spin for milliseconds after each parallel region, and bptt
  needs both cores; its calls right after PyTorch's ran up to 2x slower than alone. Each turn's
  first :data:`SETTLE_S` seconds of calls are therefore not timed, for either side.
* The CPU time used by other processes during each measurement is recorded
  (``other_load_cores``); a measurement disturbed by more than a quarter of a core is repeated
  (``--retries``) and the least disturbed attempt kept, and any remaining ones are flagged.
* A virtual machine also slows down for phases of seconds that no process inside it accounts
  for (neighbours on the host: both libraries' repeats of the large rows fell into two groups,
  22 and 40 ms, and a median of 20 repeats landed in either). A measurement whose repeats spread
  more than :data:`SPREAD_MAX` (p75 / p25, of either library, over fewer than
  :data:`SPREAD_REPEATS` repeats; ``spread`` in the record) is therefore repeated as a busy one
  is, and the steadiest attempt kept; attempts are chosen by their spread, never by the
  libraries' ratio.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from typing import Any, Callable

import numpy as np

from cells import first, rel_diff
from grid import Row, flops
from report import progress

__all__ = ["BUSY_CORES", "MIN_WARMUP", "SPREAD_MAX", "measure", "steadiest"]

MAX_REPEATS = 5000
MIN_WARMUP = 3
#: Interleaving in turns (see :func:`_interleaved`): untimed calls that open each turn (seconds,
#: at least one call), and the timed calls that follow (at least this many, and as many as fill
#: about ``TURN_S`` seconds).
SETTLE_S = 0.01
MIN_TURN_CALLS = 3
TURN_S = 0.03
MAX_WARMUP = 1000

#: Other processes using more than this many cores during a measurement get it flagged (and retried).
BUSY_CORES = 0.25
RETRY_PAUSE = 2.0  # seconds to wait before measuring again on a busy machine
#: A measurement of fewer than :data:`SPREAD_REPEATS` repeats whose repeats spread more than this,
#: p75 / p25 of either library, is retried as a busy one is (steady rows here: 1.02-1.15; in slow
#: phases of the host: up to 1.8). Calls short enough for more repeats spread by jitter of their
#: own (tens of µs: 1.3-1.9), which their medians of hundreds of repeats absorb.
SPREAD_MAX = 1.25
SPREAD_REPEATS = 100


def _cpu_seconds(children: bool = False) -> tuple[float, float] | None:
    """``(busy CPU seconds of the whole machine, CPU seconds of this process)``, Linux only;
    ``children``: the second with the CPU seconds of its finished children added."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:9]]
        busy = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    t = os.times()
    return busy, t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


def other_cores(start, end, wall: float) -> float | None:
    """Cores used by other processes between two :func:`_cpu_seconds` readings ``wall`` seconds
    apart: the machine's busy CPU seconds less this process's (never below 0)."""
    if start is None or end is None or wall <= 0:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / wall)


class _LoadMeter:
    """CPU used by *other* processes while a measurement runs, in cores (busy machine → bad timings);
    ``children``: this process's finished children count as its own (alternating-process runs)."""

    def __init__(self, children: bool = False) -> None:
        self.children = children
        self.start = _cpu_seconds(children)
        self.t0 = time.perf_counter()

    def other_cores(self) -> float | None:
        return other_cores(self.start, _cpu_seconds(self.children), time.perf_counter() - self.t0)


def _spread(times: list[list[float]]) -> float:
    """The largest p75 / p25 of the repeats of each function of an :func:`_interleaved` result."""
    out = 1.0
    for ts in times:
        q25, q75 = np.percentile(ts, [25, 75])
        out = max(out, float(q75 / q25) if q25 > 0 else math.inf)
    return out


def _phase_spread(result) -> float:
    """:func:`_spread` of an :func:`_interleaved` result of fewer than :data:`SPREAD_REPEATS`
    repeats, else 1 (see :data:`SPREAD_MAX`)."""
    times, _, n = result
    return _spread(times) if n < SPREAD_REPEATS else 1.0


def steadiest(measure: Callable[[], Any], retries: int,
              spread: Callable[[Any], float] | None = None) -> tuple[Any, float | None, int]:
    """Run ``measure``; while other processes kept the machine busy (or ``spread`` of the result
    exceeds :data:`SPREAD_MAX`), retry up to ``retries`` times.

    Returns the result of the best attempt (not busy before busy; among busy ones the least CPU
    used by other processes; then the smallest spread), that attempt's load (in cores, None
    where it cannot be read) and the number of attempts made.
    """
    best = None
    attempts = 0
    while True:
        meter = _LoadMeter()
        result = measure()
        other = meter.other_cores()
        attempts += 1
        busy = other is not None and other > BUSY_CORES
        s = spread(result) if spread is not None else 1.0
        key = (busy, other if busy else 0.0, s)
        if best is None or key < best[2]:
            best = (result, other, key)
        if not (busy or s > SPREAD_MAX) or attempts > retries:
            return best[0], best[1], attempts
        why = f"other processes used {other:.1f} cores" if busy else f"repeats spread p75/p25 {s:.2f}"
        progress(f"  unsteady measurement ({why}): measuring again in {RETRY_PAUSE:g} s")
        time.sleep(RETRY_PAUSE)


def _interleaved(
    funcs: list[Callable[[], Any]], repeats: int, budget: float
) -> tuple[list[list[float]], int, int]:
    """Time ``funcs`` interleaved in turns (A's turn, B's turn, A's turn, ...) after a warm-up.

    Warm-up: at least :data:`MIN_WARMUP` rounds of one call each, continued (up to
    :data:`MAX_WARMUP`) until ``budget / 2`` seconds have passed, so fast rows get many warm-up
    calls. Then, with more than one function, each turn first *settles*: calls that are not timed,
    at least one and until :data:`SETTLE_S` has passed, while the other library's idle threads
    still compete for the cores (libgomp's, PyTorch's OpenMP, spin for milliseconds after each
    parallel region: measured on the medium LSTM row, bptt 3.5-4.2 ms alone and 7.6 ms called
    right after PyTorch, 4.9 ms with ``OMP_WAIT_POLICY=passive``, which in turn slows PyTorch
    itself from 4.0 to 6-7 ms). The turn's timed calls follow: at least :data:`MIN_TURN_CALLS`,
    and as many as fill about :data:`TURN_S`. Each function gets at least ``n`` timed calls:
    ``repeats``, extended for fast rows so that the slowest function gets about ``budget``
    seconds in all (at most :data:`MAX_REPEATS`). Returns the per-function times in seconds, the
    number of warm-up rounds and ``n``.
    """
    perf = time.perf_counter
    warm: list[list[float]] = [[] for _ in funcs]
    start = perf()
    rounds = 0
    while True:
        for f, ts in zip(funcs, warm):
            t0 = perf()
            f()
            ts.append(perf() - t0)
        rounds += 1
        if rounds >= MIN_WARMUP and (perf() - start >= budget / 2 or rounds >= MAX_WARMUP):
            break
    typical = [float(np.median(ts[-MIN_WARMUP:])) for ts in warm]
    slowest = max(typical)
    n = repeats
    if budget > 0 and slowest > 0:
        n = max(repeats, min(MAX_REPEATS, int(budget / slowest)))
    turns = len(funcs) > 1
    per_turn = [max(MIN_TURN_CALLS, math.ceil(TURN_S / max(t, 1e-9))) if turns else n for t in typical]
    times: list[list[float]] = [[] for _ in funcs]
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while any(len(ts) < n for ts in times):
            for f, ts, k in zip(funcs, times, per_turn):
                if turns:  # settle: untimed, at least one call
                    t0 = perf()
                    f()
                    while perf() - t0 < SETTLE_S:
                        f()
                for _ in range(k):
                    t0 = perf()
                    f()
                    ts.append(perf() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, rounds, n


def _stats_ms(ts: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
    return {"median": float(q50), "p25": float(q25), "p75": float(q75), "min": float(min(ts) * 1e3)}


def measure(
    cell: str,
    row: Row,
    mode: str,
    bptt_fn: Callable[[], Any],
    torch_fn: Callable[[], Any] | None,
    torch,
    repeats: int,
    budget: float,
    rate: float,
    retries: int = 0,
) -> dict[str, Any]:
    """One (cell, row, mode) measurement → a result record (times in ms)."""
    funcs = [bptt_fn] + ([torch_fn] if torch_fn is not None else [])
    ctx = torch.inference_mode() if (torch_fn is not None and mode == "inference") else contextlib.nullcontext()
    diff = None
    with ctx:
        if torch_fn is not None and mode == "inference":  # same weights, same numbers: check once
            diff = rel_diff(first(bptt_fn()), first(torch_fn()).numpy())
        (times, warmup, n), other, attempts = steadiest(lambda: _interleaved(funcs, repeats, budget), retries,
                                                        spread=_phase_spread)
    fl = flops(cell, row, mode)
    floor_ms = fl / rate * 1e3
    b = _stats_ms(times[0])
    t = _stats_ms(times[1]) if torch_fn is not None else None
    return {
        "cell": cell,
        "row": row.name,
        "B": row.B,
        "T": row.T,
        "I": row.I,
        "H": row.H,
        "mode": mode,
        "repeats": n,
        "warmup": warmup,
        "bptt_ms": b["median"],
        "torch_ms": t["median"] if t else None,
        "torch_over_bptt": t["median"] / b["median"] if t else None,
        "flops": fl,
        "floor_ms": floor_ms,
        "floor_over_bptt": floor_ms / b["median"],
        "floor_over_torch": floor_ms / t["median"] if t else None,
        "bptt_p25_ms": b["p25"],
        "bptt_p75_ms": b["p75"],
        "bptt_min_ms": b["min"],
        "torch_p25_ms": t["p25"] if t else None,
        "torch_p75_ms": t["p75"] if t else None,
        "torch_min_ms": t["min"] if t else None,
        "max_rel_diff": diff,
        "other_load_cores": other,
        "spread": _phase_spread((times, warmup, n)),
        "attempts": attempts,
    }
