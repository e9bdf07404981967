"""Peak memory of a training step: the resident-memory growth of one step of a grid row (the
``large`` one by default), for bptt and for PyTorch, each measured in a fresh subprocess."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

from cells import bptt_calls, make_problem, torch_calls
from grid import MEMORY_ROW, Row
from machine import child_env

__all__ = ["measure_memory", "memory_subprocess"]

MiB = 1024.0 * 1024.0


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

        _, warm = torch_calls(torch, cell, tiny)
        _, step = torch_calls(torch, cell, p)
    elif impl == "bptt":
        _, warm = bptt_calls(cell, tiny)
        _, step = bptt_calls(cell, p)
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


def memory_subprocess(cell: str, impl: str, row: str = MEMORY_ROW, timeout: float = 900) -> dict[str, Any]:
    """Run :func:`_memory_child` in a fresh Python process; return its JSON record."""
    code = "import sys; from memory import _memory_child; _memory_child(*sys.argv[1:4])"
    proc = subprocess.run(
        [sys.executable, "-c", code, cell, impl, row], capture_output=True, text=True, env=child_env(),
        timeout=timeout,
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
    return float(memory_subprocess(cell, impl, row)["mib"])
