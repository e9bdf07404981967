"""Compile bptt's Numba kernels into their disk cache on both cores before the suite runs.

    python tools/warm_kernels.py        (make test runs it first)

On a fresh clone (CI) Numba's cache is empty and the suite compiles every kernel the first time a
test calls it, one after another: on the 2-core AMD EPYC of 2026-12-07 the cold suite took 801 s
against 338 s warm, and the kernel tests alone took 169 s (LSTM), 306 s (GRU) and 75 s (RNN) to
compile (two processes at a time). Here the kernel tests that reach every compiled driver (tests/kernels/test_backends.py,
test_lengths_fast.py) run in two processes at once, the GRU's in one and the rest in the other,
so that the suite finds the kernels compiled. Nothing is done when the cache already holds the
GRU's kernels (a warm checkout: a second run costs nothing). A failure here is not reported as
one: the suite runs the same tests and reports it.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = ROOT / "src" / "bptt" / "kernels" / "fast"
FILES = ["tests/kernels/test_backends.py", "tests/kernels/test_lengths_fast.py"]
#: The two halves, each about half of the compile time: the GRU's kernels (two forms, two dtypes)
#: against the LSTM's and the RNN's.
HALVES = ["gru", "not gru"]


def cache_is_warm() -> bool:
    """Whether Numba's cache already holds compiled GRU kernels: beside the source
    (``__pycache__``), or under ``NUMBA_CACHE_DIR`` when it is set."""
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir:
        return bool(glob.glob(os.path.join(cache_dir, "**", "gru.*.nbi"), recursive=True))
    return bool(glob.glob(str(FAST / "__pycache__" / "gru.*.nbi")))


def main() -> int:
    if cache_is_warm():
        return 0
    print("warm_kernels: Numba's cache is empty: compiling the kernels in two processes", flush=True)
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES, "-k", k],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in HALVES]
    codes, took = [], []
    while len(codes) < len(procs):  # each half's time, in the order they end (to balance them)
        for k, p in zip(HALVES, procs):
            if p.returncode is None and p.poll() is not None:
                codes.append(p.returncode)
                took.append(f"-k {k!r} {time.monotonic() - t0:.0f} s")
        time.sleep(0.2)
    note = "" if not any(codes) else " (some of these tests failed: the suite reports them)"
    print(f"warm_kernels: done in {time.monotonic() - t0:.0f} s ({', '.join(took)}){note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
