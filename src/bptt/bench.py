"""Kernel benchmark of ``bptt.functional`` against PyTorch, as laid down in BENCHMARKS.md.

For each cell (LSTM, GRU, tanh RNN) and each row of the kernel grid, two figures are measured:

* ``inference``: forward only, no cache kept (``<cell>_forward(..., keep_cache=False)`` when the
  function takes that keyword, the plain call otherwise; PyTorch under ``torch.inference_mode()``);
* ``train``: forward with cache + backward to ``dx`` and every parameter gradient, the cache
  spent by the backward as in a training step (``<cell>_backward(..., keep_cache=False)`` when the
  function takes that keyword; PyTorch: ``out, _ = module(x)``; ``out.backward(dout)``, which
  frees its saved tensors likewise, gradients reset to ``None`` between repeats).

Both implementations run in this one process, interleaved in turns (a few calls of A, a few of B,
...) after a warm-up; each turn opens with untimed calls that let the other library's idle
threads settle (see :func:`_interleaved`); the figure is the median of the timed repeats
(``time.perf_counter``). Each result also
carries the GEMM floor: ``2·B·T·(I+H)·G·H`` flops for a forward pass (G = 4, 3, 1), three times
that for a training step, divided by the measured rate of one 1024³ float32 NumPy matmul.

Three guards against a distorted comparison on a small machine:

* NumPy's OpenBLAS keeps its idle worker threads spinning for about 0.1 s after each call; while
  they hold a core, PyTorch's OpenMP team waits for a scheduler tick (and the other way round),
  so interleaved call by call on 2 cores both sides were measured at ~4 ms per call for rows that
  take 0.2-0.6 ms alone. By default (``--blas-spin short``) the timings therefore run in a child
  process started with ``OPENBLAS_THREAD_TIMEOUT=4`` (idle threads sleep at once; thread counts
  unchanged); ``--blas-spin default`` keeps OpenBLAS's own setting.
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

Peak memory is the resident-memory growth of one training step of the ``large`` row, measured for
bptt and for PyTorch each in a fresh subprocess.

PyTorch is optional: it is imported only when the benchmark runs, never by ``import bptt`` or
``import bptt.bench``; without it (or with ``--no-torch``) bptt is measured alone.

Run ``python -m bptt.bench --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import glob
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .kernels.blas import AVX512_CORES, blas_kernels  # noqa: F401  (AVX512_CORES: re-exported)

__all__ = [
    "CELLS",
    "MODES",
    "ROWS",
    "QUICK_ROWS",
    "Row",
    "build_parser",
    "flops",
    "gemm_rate",
    "main",
    "measure_memory",
]


@dataclass(frozen=True)
class Row:
    """One row of the kernel grid: batch ``B``, steps ``T``, input features ``I``, hidden ``H``."""

    name: str
    B: int
    T: int
    I: int  # noqa: E741
    H: int


#: Cell name → number of gate blocks G.
CELLS: dict[str, int] = {"lstm": 4, "gru": 3, "rnn": 1}
MODES: tuple[str, ...] = ("inference", "train")
ROWS: dict[str, Row] = {
    r.name: r
    for r in (
        Row("tmva-tutorial", 100, 10, 30, 10),
        Row("tmva-test", 64, 5, 5, 10),
        Row("small", 64, 30, 30, 10),
        Row("medium", 256, 30, 30, 64),
        Row("long", 64, 100, 32, 128),
        Row("wide", 128, 50, 64, 256),
        Row("large", 32, 200, 128, 512),
    )
}
QUICK_ROWS: tuple[str, ...] = ("tmva-tutorial", "tmva-test", "small", "medium")
#: The row whose training step the memory figure is taken on.
MEMORY_ROW = "large"

DEFAULT_REPEATS = 20  # the protocol's minimum
QUICK_REPEATS = 10
DEFAULT_RETRIES = 2
DEFAULT_BUDGET = 0.5  # seconds per measurement the repeats are extended to (slower side)
QUICK_BUDGET = 0.02
MAX_REPEATS = 5000
MIN_WARMUP = 3
#: Interleaving in turns (see :func:`_interleaved`): untimed calls that open each turn (seconds,
#: at least one call), and the timed calls that follow (at least this many, and as many as fill
#: about ``TURN_S`` seconds).
SETTLE_S = 0.01
MIN_TURN_CALLS = 3
TURN_S = 0.03
MAX_WARMUP = 1000
GEMM_N = 1024
DTYPE = np.float32
MiB = 1024.0 * 1024.0
#: OpenBLAS's idle-thread spin time is 2**value cycles (default 28, about 0.1 s; minimum 4).
SPIN_ENV = "OPENBLAS_THREAD_TIMEOUT"
SHORT_SPIN = 4


def _row(row: Row | str) -> Row:
    return row if isinstance(row, Row) else ROWS[row]


def flops(cell: str, row: Row | str, mode: str) -> int:
    """GEMM flops of one call: ``2·B·T·(I+H)·G·H`` for inference, three times that for a training step."""
    r = _row(row)
    forward = 2 * r.B * r.T * (r.I + r.H) * CELLS[cell] * r.H
    if mode == "inference":
        return forward
    if mode == "train":
        return 3 * forward
    raise ValueError(f"flops: mode must be one of {', '.join(MODES)}; got {mode!r}")


def gemm_rate(repeats: int = 20, n: int = GEMM_N) -> float:
    """Single-GEMM rate in flop/s: median time of an ``n×n @ n×n`` float32 NumPy matmul (2·n³ flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=DTYPE)
    b = rng.standard_normal((n, n), dtype=DTYPE)
    out = np.empty((n, n), DTYPE)
    for _ in range(MIN_WARMUP):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / float(np.median(times))


# ──────────────────────────────────────────────────────────────────────────── problems and calls


def make_problem(cell: str, row: Row | str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 inputs of one row: ``x (B, T, I)``, parameters and ``dh (B, T, H)``.

    Weights and biases are drawn as PyTorch initialises them, uniform in ``±1/sqrt(H)``; ``x`` and
    ``dh`` are standard normal. ``b_u`` (the GRU's recurrent bias) is present for every cell; the
    LSTM and RNN do not use it (their PyTorch ``bias_hh`` is set to zero so both compute the same).
    """
    r = _row(row)
    G = CELLS[cell]
    rng = np.random.default_rng(seed)
    k = 1.0 / math.sqrt(r.H)

    def uni(*shape):
        return rng.uniform(-k, k, size=shape).astype(DTYPE)

    return {
        "x": rng.standard_normal((r.B, r.T, r.I), dtype=DTYPE),
        "W": uni(r.I, G * r.H),
        "U": uni(r.H, G * r.H),
        "b": uni(G * r.H),
        "b_u": uni(G * r.H),
        "dh": rng.standard_normal((r.B, r.T, r.H), dtype=DTYPE),
    }


def _bptt_calls(cell: str, p: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(inference, train)`` closures running bptt.functional on problem ``p``."""
    from . import functional as F

    fwd = getattr(F, f"{cell}_forward")
    bwd = getattr(F, f"{cell}_backward")
    args: tuple = (p["x"], p["W"], p["U"], p["b"])
    kwargs: dict[str, Any] = {}
    if cell == "gru":
        args += (p["b_u"],)
        kwargs["reset_after"] = True
    elif cell == "rnn":
        kwargs["activation"] = "tanh"
    infer_kwargs = dict(kwargs)
    if "keep_cache" in inspect.signature(fwd).parameters:
        infer_kwargs["keep_cache"] = False
    spend = {"keep_cache": False} if "keep_cache" in inspect.signature(bwd).parameters else {}
    dh = p["dh"]

    def inference():
        return fwd(*args, **infer_kwargs)

    def train():
        _, cache = fwd(*args, **kwargs)
        return bwd(dh, cache, **spend)

    return inference, train


def _torch_module(torch, cell: str, p: dict[str, np.ndarray]):
    """``torch.nn.LSTM/GRU/RNN`` (batch_first, float32) holding the parameters of ``p``."""
    I, H = p["W"].shape[0], p["U"].shape[0]
    if cell == "lstm":
        m = torch.nn.LSTM(I, H, batch_first=True)
    elif cell == "gru":
        m = torch.nn.GRU(I, H, batch_first=True)
    else:
        m = torch.nn.RNN(I, H, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["W"]).T)
        m.weight_hh_l0.copy_(torch.from_numpy(p["U"]).T)
        m.bias_ih_l0.copy_(torch.from_numpy(p["b"]))
        if cell == "gru":
            m.bias_hh_l0.copy_(torch.from_numpy(p["b_u"]))
        else:
            m.bias_hh_l0.zero_()
    return m


def _torch_calls(torch, cell: str, p: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(inference, train)`` closures running the PyTorch module on problem ``p``.

    The inference closure does not enter ``torch.inference_mode()`` itself: the caller times it
    inside that context (see :func:`_measure`), so the context switch is not part of the figure.
    """
    m = _torch_module(torch, cell, p)
    params = list(m.parameters())
    x_inf = torch.from_numpy(p["x"])
    x = torch.from_numpy(p["x"].copy()).requires_grad_(True)
    dout = torch.from_numpy(p["dh"])

    def inference():
        return m(x_inf)

    def train():
        for q in params:
            q.grad = None
        x.grad = None
        out, _ = m(x)
        out.backward(dout)

    return inference, train


def _first(result):
    """The hidden states ``h`` of a forward result (``(h, cache)``, ``(out, state)`` or ``h``)."""
    return result[0] if isinstance(result, tuple) else result


def _rel_diff(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny))


# ───────────────────────────────────────────────────────────────────────────────────────── timing


def _cpu_seconds() -> tuple[float, float] | None:
    """``(busy CPU seconds of the whole machine, CPU seconds of this process)``, Linux only."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:9]]
        busy = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    t = os.times()
    return busy, t.user + t.system


class _LoadMeter:
    """CPU used by *other* processes while a measurement runs, in cores (busy machine → bad timings)."""

    def __init__(self) -> None:
        self.start = _cpu_seconds()
        self.t0 = time.perf_counter()

    def other_cores(self) -> float | None:
        end = _cpu_seconds()
        wall = time.perf_counter() - self.t0
        if self.start is None or end is None or wall <= 0:
            return None
        return max(0.0, ((end[0] - self.start[0]) - (end[1] - self.start[1])) / wall)


#: Other processes using more than this many cores during a measurement get it flagged (and retried).
BUSY_CORES = 0.25
RETRY_PAUSE = 2.0  # seconds to wait before measuring again on a busy machine
#: A measurement of fewer than :data:`SPREAD_REPEATS` repeats whose repeats spread more than this,
#: p75 / p25 of either library, is retried as a busy one is (steady rows here: 1.02-1.15; in slow
#: phases of the host: up to 1.8). Calls short enough for more repeats spread by jitter of their
#: own (tens of µs: 1.3-1.9), which their medians of hundreds of repeats absorb.
SPREAD_MAX = 1.25
SPREAD_REPEATS = 100


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


def _steadiest(measure: Callable[[], Any], retries: int,
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
        _progress(f"  unsteady measurement ({why}): measuring again in {RETRY_PAUSE:g} s")
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


def _measure(
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
    rel_diff = None
    with ctx:
        if torch_fn is not None and mode == "inference":  # same weights, same numbers: check once
            rel_diff = _rel_diff(_first(bptt_fn()), _first(torch_fn()).numpy())
        (times, warmup, n), other, attempts = _steadiest(lambda: _interleaved(funcs, repeats, budget), retries,
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
        "max_rel_diff": rel_diff,
        "other_load_cores": other,
        "spread": _phase_spread((times, warmup, n)),
        "attempts": attempts,
    }


# ───────────────────────────────────────────────────────────────────────────────────────── memory


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kib() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ≥ 4.0: ``5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _memory_child(cell: str, impl: str, row_name: str) -> None:
    """Body of the memory subprocess: one training step, peak-RSS growth printed as one JSON line.

    Builds the inputs (and the PyTorch module) first and runs one training step of a tiny problem
    so that one-time costs (lazy imports, JIT compilation, thread pools) are paid before the
    baseline is read. Then: baseline RSS, reset of the peak (where Linux allows it), the step,
    peak RSS. Without a resettable peak the growth is measured from the previous peak, a lower
    bound.
    """
    p = make_problem(cell, row_name)
    tiny = make_problem(cell, Row("tiny", 2, 3, 3, 4), seed=1)
    if impl == "torch":
        import torch

        _, warm = _torch_calls(torch, cell, tiny)
        _, step = _torch_calls(torch, cell, p)
    elif impl == "bptt":
        _, warm = _bptt_calls(cell, tiny)
        _, step = _bptt_calls(cell, p)
    else:
        raise ValueError(f"memory: impl must be 'bptt' or 'torch'; got {impl!r}")
    warm()
    del warm, tiny
    gc.collect()
    rss = _proc_status_kib("VmRSS")
    if rss is not None and _proc_status_kib("VmHWM") is not None:
        reset = _reset_peak()
        before = rss if reset else _proc_status_kib("VmHWM")
        step()
        after = _proc_status_kib("VmHWM")
        method = "VmHWM (reset)" if reset else "VmHWM (not reset: lower bound)"
    else:
        before = _maxrss_kib()
        step()
        after = _maxrss_kib()
        method = "ru_maxrss (lower bound)"
    growth = max(0, after - before) * 1024 / MiB
    print(json.dumps({"cell": cell, "impl": impl, "row": row_name, "mib": growth, "method": method}))


def _memory_subprocess(cell: str, impl: str, row: str = MEMORY_ROW, timeout: float = 900) -> dict[str, Any]:
    """Run :func:`_memory_child` in a fresh Python process; return its JSON record."""
    code = "import sys; from bptt.bench import _memory_child; _memory_child(*sys.argv[1:4])"
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])  # so the child imports this very package
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-c", code, cell, impl, row], capture_output=True, text=True, env=env, timeout=timeout
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory subprocess ({cell}, {impl}, {row}) failed with code {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def measure_memory(cell: str, impl: str = "bptt", row: str = MEMORY_ROW) -> float:
    """Resident-memory growth in MiB of one training step of ``row``, in a fresh subprocess.

    ``impl`` is ``"bptt"`` or ``"torch"``. The default row is ``large``; other rows are for tests.
    """
    return float(_memory_subprocess(cell, impl, row)["mib"])


# ─────────────────────────────────────────────────────────────────────────────────── machine info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _openblas_threads() -> int | None:
    """NumPy's OpenBLAS thread count, read from the bundled library (best effort, else None)."""
    base = Path(np.__file__).resolve().parent
    candidates = glob.glob(str(base.parent / "numpy.libs" / "*openblas*")) + glob.glob(
        str(base / ".dylibs" / "*openblas*")
    )
    names = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
             "openblas_get_num_threads")
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def blas_warning(blas: dict[str, Any]) -> str | None:
    """A one-paragraph warning when NumPy's OpenBLAS runs kernels without AVX-512 on a CPU with it."""
    if not blas.get("narrower_than_cpu"):
        return None
    why = (f"OPENBLAS_CORETYPE={blas['OPENBLAS_CORETYPE']} is set in the environment"
           if blas.get("OPENBLAS_CORETYPE") else "OpenBLAS chose them for this CPU")
    return (f"note: NumPy's OpenBLAS runs its {blas['core']} kernels (no AVX-512) on a CPU with AVX-512: {why}. "
            "Its GEMMs, and so bptt's, may run well below this CPU's rate (on an AMD Zen 5: at about half), and "
            "the GEMM rate and floor below are those of these kernels. PyTorch's oneDNN is not affected. Unset OPENBLAS_CORETYPE (or set "
            "it to SkylakeX) before starting Python to compare with OpenBLAS's AVX-512 kernels.")


def machine_info(torch, rate: float) -> dict[str, Any]:
    from . import __version__

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    threads: dict[str, Any] = {
        "openblas": _openblas_threads(),
        "torch": torch.get_num_threads() if torch else None,
        "torch_interop": torch.get_num_interop_threads() if torch else None,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                               "NUMBA_NUM_THREADS")},
    }
    if "numba" in sys.modules:
        with contextlib.suppress(Exception):
            threads["numba"] = sys.modules["numba"].get_num_threads()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "bptt": __version__,
        "threads": threads,
        "blas": blas_kernels(),
        "loadavg_at_start": _loadavg(),
        "gemm_gflops": rate / 1e9,
        "gemm": f"median of {GEMM_N}x{GEMM_N} @ {GEMM_N}x{GEMM_N} float32 numpy matmul",
    }


# ───────────────────────────────────────────────────────────────────────────────────────── output


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def format_table(records: list[dict[str, Any]]) -> str:
    head = ["cell", "row", "B", "T", "I", "H", "mode", "bptt ms", "torch ms", "torch/bptt", "floor/bptt"]
    rows = [
        [r["cell"], r["row"], str(r["B"]), str(r["T"]), str(r["I"]), str(r["H"]), r["mode"], _ms(r["bptt_ms"]),
         _ms(r["torch_ms"]), _ratio(r["torch_over_bptt"]), _ratio(r["floor_over_bptt"])]
        for r in records
    ]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    left = {0, 1, 6}  # text columns left-aligned, numbers right-aligned

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def format_memory(mem: list[dict[str, Any]]) -> str:
    out = []
    for m in mem:
        head = f"memory {m['cell']:<4} {m['row']} train step (RSS growth):"
        if m.get("error"):
            out.append(f"{head} failed: {m['error']}")
            continue
        text = f"{head} bptt {m['bptt_mib']:.1f} MiB"
        if m.get("torch_mib") is not None:
            text += f", torch {m['torch_mib']:.1f} MiB, torch/bptt {_ratio(m['torch_over_bptt'])}"
        out.append(text)
    return "\n".join(out)


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temp file in the same directory and ``os.replace``."""
    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".bench-", suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ──────────────────────────────────────────────────────────────────────────────────────── options


def _names(kind: str, choices) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {kind} list (choose from {', '.join(choices)})")
        for s in items:
            if s not in choices:
                raise argparse.ArgumentTypeError(f"unknown {kind} {s!r} (choose from {', '.join(choices)})")
        return list(dict.fromkeys(items))

    return parse


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return n


def _non_negative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return n


def _budget(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds; got {text!r}")
    return v


def _json_path(text: str) -> str:
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"directory {parent!r} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (for mounting as a ``bptt bench`` subcommand)."""
    parser.add_argument("--cells", type=_names("cell", tuple(CELLS)), default=None, metavar="LIST",
                        help=f"comma-separated cells (default: {','.join(CELLS)})")
    parser.add_argument("--rows", type=_names("row", tuple(ROWS)), default=None, metavar="LIST",
                        help=f"comma-separated grid rows (default: all: {','.join(ROWS)})")
    parser.add_argument("--modes", type=_names("mode", MODES), default=None, metavar="LIST",
                        help=f"comma-separated modes (default: {','.join(MODES)})")
    parser.add_argument("--repeats", type=_positive_int, default=None, metavar="N",
                        help=f"minimum timed repeats per measurement (default {DEFAULT_REPEATS}; "
                        f"{QUICK_REPEATS} with --quick); fast rows get more, see --budget")
    parser.add_argument("--budget", type=_budget, default=None, metavar="SECONDS",
                        help=f"extend the repeats of fast rows until the slower side has run about this long "
                        f"(default {DEFAULT_BUDGET}; {QUICK_BUDGET} with --quick; 0: exactly --repeats)")
    parser.add_argument("--json", type=_json_path, default=None, metavar="FILE",
                        help="also write machine info and all results as JSON to FILE (atomically)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: rows {','.join(QUICK_ROWS)}, {QUICK_REPEATS} repeats, short budget")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help=f"measure the RSS growth of a training step of the '{MEMORY_ROW}' row, bptt vs "
                        f"torch, each in a fresh subprocess (default: on when the '{MEMORY_ROW}' row is selected)")
    parser.add_argument("--no-torch", action="store_true", help="measure bptt alone, even if PyTorch is installed")
    parser.add_argument("--retries", type=_non_negative_int, default=None, metavar="N",
                        help=f"measure again (up to N times, default {DEFAULT_RETRIES}; 0 with --quick) when other processes used more than "
                        f"{BUSY_CORES:g} cores meanwhile or the repeats spread more than p75/p25 {SPREAD_MAX:g}; "
                        "the steadiest attempt is kept")
    parser.add_argument("--blas-spin", choices=("short", "default"), default="short",
                        help=f"'short' (default): run the timings in a child process with {SPIN_ENV}={SHORT_SPIN} "
                        "so that NumPy's idle OpenBLAS threads stop spinning at once instead of holding a core "
                        "while PyTorch runs (thread counts unchanged; not applied when the variable is already "
                        "set or PyTorch is not compared); 'default': OpenBLAS's own setting")
    return parser


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "python -m bptt.bench",
        description="Time bptt.functional against PyTorch on the kernel grid of BENCHMARKS.md: "
        "inference and training step per cell and row, interleaved, median of the repeats; "
        "ratio torch/bptt (above 1: bptt faster) and the GEMM floor.",
    )
    return add_arguments(parser)


# ─────────────────────────────────────────────────────────────────────────────────────────── run


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _import_torch(no_torch: bool):
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        _progress("bench: PyTorch is not installed; measuring bptt alone")
        return None
    return torch


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _canonical_argv(args: argparse.Namespace) -> list[str]:
    """Options equivalent to the parsed ``args`` (to hand them on to a child process)."""
    out: list[str] = []
    for name in ("cells", "rows", "modes"):
        if getattr(args, name):
            out += [f"--{name}", ",".join(getattr(args, name))]
    if args.repeats is not None:
        out += ["--repeats", str(args.repeats)]
    if args.budget is not None:
        out += ["--budget", repr(args.budget)]
    if args.json is not None:
        out += ["--json", os.path.abspath(args.json)]
    if args.quick:
        out.append("--quick")
    if args.memory is not None:
        out.append("--memory" if args.memory else "--no-memory")
    if args.no_torch:
        out.append("--no-torch")
    if args.retries is not None:
        out += ["--retries", str(args.retries)]
    return out + ["--blas-spin", args.blas_spin]


def _run_in_child(args: argparse.Namespace) -> int:
    """Run this benchmark in a fresh process with a short OpenBLAS spin, relaying its output.

    NumPy's OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` when it is loaded, i.e. before any code of
    this module runs, hence the child. Its stdout and stderr are copied line by line to this
    process's ``sys.stdout`` / ``sys.stderr``; its exit code is returned.
    """
    import threading

    env = dict(os.environ)
    env[SPIN_ENV] = str(SHORT_SPIN)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "bptt.bench", *_canonical_argv(args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1)

    def relay(src_stream, name):
        for line in src_stream:
            dst = getattr(sys, name)
            dst.write(line)
            dst.flush()

    threads = [threading.Thread(target=relay, args=(proc.stderr, "stderr"), daemon=True)]
    threads[0].start()
    try:
        relay(proc.stdout, "stdout")
        code = proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    threads[0].join()
    return code


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run the benchmark for parsed ``args``; print progress to stderr, the table to stdout.

    With ``--blas-spin short`` (the default), PyTorch compared and ``OPENBLAS_THREAD_TIMEOUT``
    unset, the run happens in a child process that has it set (see :func:`_run_in_child`).
    """
    if (args.blas_spin == "short" and not args.no_torch and os.environ.get(SPIN_ENV) is None
            and _torch_installed()):
        return _run_in_child(args)
    cells = args.cells or list(CELLS)
    rows = args.rows or list(QUICK_ROWS if args.quick else ROWS)
    modes = args.modes or list(MODES)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    budget = args.budget if args.budget is not None else (QUICK_BUDGET if args.quick else DEFAULT_BUDGET)
    memory = args.memory if args.memory is not None else (MEMORY_ROW in rows)
    retries = args.retries if args.retries is not None else (0 if args.quick else DEFAULT_RETRIES)

    torch = _import_torch(args.no_torch)
    _progress("bench: measuring the GEMM rate ...")
    rate, rate_load, _ = _steadiest(lambda: gemm_rate(repeats=max(repeats, 10)), retries)
    info = machine_info(torch, rate)
    info["gemm_other_load_cores"] = rate_load
    _progress(f"bench: gemm rate {rate / 1e9:.1f} GFLOP/s")
    if rate_load is not None and rate_load > BUSY_CORES:
        _progress(f"bench: WARNING: other processes used {rate_load:.1f} cores while the GEMM rate was measured")

    records = []
    for cell in cells:
        for name in rows:
            row = ROWS[name]
            p = make_problem(cell, row)
            b_inf, b_train = _bptt_calls(cell, p)
            t_inf, t_train = _torch_calls(torch, cell, p) if torch else (None, None)
            for mode in modes:
                b_fn, t_fn = (b_inf, t_inf) if mode == "inference" else (b_train, t_train)
                r = _measure(cell, row, mode, b_fn, t_fn, torch, repeats, budget, rate, retries)
                records.append(r)
                msg = f"{cell} {name} {mode} ... {_ms(r['bptt_ms'])} ms"
                if r["torch_ms"] is not None:
                    msg += f" vs {_ms(r['torch_ms'])} ms (torch/bptt {r['torch_over_bptt']:.2f})"
                msg += f", {r['repeats']} repeats"
                if r["attempts"] > 1:
                    msg += f", steadiest of {r['attempts']} attempts"
                if r["other_load_cores"] is not None and r["other_load_cores"] > BUSY_CORES:
                    msg += f"  (busy machine: other processes used {r['other_load_cores']:.1f} cores)"
                elif r["spread"] > SPREAD_MAX:
                    msg += f"  (unsteady: repeats spread p75/p25 {r['spread']:.2f})"
                if r["max_rel_diff"] is not None and r["max_rel_diff"] > 1e-3:
                    msg += f"  WARNING: outputs differ from torch (rel. diff {r['max_rel_diff']:.2e})"
                _progress(msg)
            del p, b_inf, b_train, t_inf, t_train
            gc.collect()

    mem = []
    failed = False
    if memory:
        for cell in cells:
            m: dict[str, Any] = {"cell": cell, "row": MEMORY_ROW, "bptt_mib": None, "torch_mib": None,
                                 "torch_over_bptt": None}
            try:
                _progress(f"memory {cell} {MEMORY_ROW} train step: bptt ...")
                rb = _memory_subprocess(cell, "bptt")
                m["bptt_mib"], m["method"] = rb["mib"], rb["method"]
                if torch:
                    _progress(f"memory {cell} {MEMORY_ROW} train step: torch ...")
                    m["torch_mib"] = _memory_subprocess(cell, "torch")["mib"]
                    m["torch_over_bptt"] = m["torch_mib"] / m["bptt_mib"] if m["bptt_mib"] > 0 else None
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                m["error"] = str(exc)
                failed = True
                _progress(f"memory {cell}: {exc}")
            mem.append(m)

    protocol = repeats >= DEFAULT_REPEATS
    th = info["threads"]
    print(f"bptt {info['bptt']}, numpy {info['numpy']}, torch {info['torch'] or '—'}; "
          f"{info['cpu_model']}, {info['cores']} cores")
    print(f"threads: openblas {th['openblas'] or '?'}, torch {th['torch'] or '—'}"
          f" (interop {th['torch_interop'] or '—'}); gemm rate {info['gemm_gflops']:.1f} GFLOP/s "
          f"({GEMM_N}³ float32 numpy matmul)")
    print(f"median of >= {repeats} interleaved repeats (budget {budget:g} s); torch/bptt > 1: bptt faster; "
          f"floor = GEMM flops / gemm rate; {SPIN_ENV}={os.environ.get(SPIN_ENV, 'unset')}")
    blas = info.get("blas") or {}
    print(f"blas: {blas.get('library') or '?'} {blas.get('version') or ''}, {blas.get('core') or '?'} kernels"
          + (f" (OPENBLAS_CORETYPE={blas['OPENBLAS_CORETYPE']})" if blas.get("OPENBLAS_CORETYPE") else "")
          + (f"; time loops call {blas['loop_gemm']} from compiled code" if blas.get("loop_gemm")
             else "; time loops call np.matmul per step (no cblas GEMM symbol bptt can call)"))
    warning = blas_warning(blas)
    if warning:
        print(warning)
    if not protocol:
        print(f"note: fewer than {DEFAULT_REPEATS} repeats: a smoke test, not a BENCHMARKS.md measurement")
    print()
    print(format_table(records))
    busy = [r["other_load_cores"] for r in records if (r["other_load_cores"] or 0) > BUSY_CORES]
    if busy:
        print(f"warning: other processes used up to {max(busy):.1f} of {info['cores']} cores during "
              f"{len(busy)} of {len(records)} measurements: those timings are not reliable")
    unsteady = [r for r in records if r["spread"] > SPREAD_MAX and (r["other_load_cores"] or 0) <= BUSY_CORES]
    if unsteady:
        names = ", ".join(" ".join((r["cell"], r["row"], r["mode"])) for r in unsteady)
        print(f"warning: the repeats of {len(unsteady)} of {len(records)} measurements spread more than "
              f"p75/p25 {SPREAD_MAX:g} in each of up to {retries + 1} attempts (the machine's speed changed "
              f"meanwhile): {names}")
    if (info["gemm_other_load_cores"] or 0) > BUSY_CORES:
        print(f"warning: other processes used {info['gemm_other_load_cores']:.1f} cores while the GEMM rate was "
              "measured: the floor figures are not reliable")
    if mem:
        print()
        print(format_memory(mem))

    if args.json:
        write_json_atomic(args.json, {
            "schema": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": list(sys.argv[1:] if argv is None else argv),
            "settings": {"cells": cells, "rows": rows, "modes": modes, "repeats": repeats, "budget": budget,
                         "memory": memory, "dtype": "float32", "protocol": protocol, "retries": retries,
                         "openblas_thread_timeout": os.environ.get(SPIN_ENV)},
            "machine": info,
            "results": records,
            "memory": mem,
            "loadavg_at_end": _loadavg(),
        })
        _progress(f"bench: wrote {args.json}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m bptt.bench [options]``; returns the exit code (2 for bad options)."""
    args = build_parser().parse_args(argv)
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
