"""Kernel benchmark of ``bptt.functional`` against PyTorch, as laid down in BENCHMARKS.md.

    python benchmarks/run.py [--quick] [--json FILE] [...]     (``make bench BENCH_ARGS="..."``)

For each cell (LSTM, GRU, tanh RNN) and each row of the kernel grid (``grid.py``), two figures
are measured (the calls: ``cells.py``): ``inference``, forward only, and ``train``, forward with
cache + backward to ``dx`` and every parameter gradient. Both libraries run in one process,
interleaved in turns after a warm-up, median of the repeats, measured again while other processes
load the machine or the repeats spread (``timing.py``). Each result carries the GEMM floor:
``2·B·T·(I+H)·G·H`` flops for a forward pass (G = 4, 3, 1), three times that for a training step,
divided by the measured rate of one 1024³ float32 NumPy matmul (``machine.py``). Peak memory is
the resident-memory growth of one training step of the ``large`` row, measured for bptt and for
PyTorch each in a fresh subprocess (``memory.py``). The table and JSON: ``report.py``.

NumPy's OpenBLAS keeps its idle worker threads spinning for about 0.1 s after each call; while
they hold a core, PyTorch's OpenMP team waits for a scheduler tick (and the other way round), so
interleaved call by call on 2 cores both sides were measured at ~4 ms per call for rows that take
0.2-0.6 ms alone. By default (``--blas-spin short``) the timings therefore run in a child process
started with ``OPENBLAS_THREAD_TIMEOUT=4`` (idle threads sleep at once; thread counts unchanged);
``--blas-spin default`` keeps OpenBLAS's own setting.

PyTorch is optional: it is imported only when the benchmark runs, never by importing these
modules; without it (or with ``--no-torch``) bptt is measured alone. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from typing import Any

from cells import bptt_calls, make_problem, torch_calls
from grid import CELLS, MEMORY_ROW, MODES, QUICK_ROWS, ROWS
from machine import GEMM_N, blas_warning, child_env, gemm_rate, loadavg, machine_info
from memory import memory_subprocess
from options import (DEFAULT_BUDGET, DEFAULT_REPEATS, DEFAULT_RETRIES, QUICK_BUDGET, QUICK_REPEATS, SHORT_SPIN,
                     SPIN_ENV, build_parser, canonical_argv)
from report import format_memory, format_table, ms, progress, write_json_atomic
from timing import BUSY_CORES, SPREAD_MAX, measure, steadiest


def _import_torch(no_torch: bool):
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        progress("bench: PyTorch is not installed; measuring bptt alone")
        return None
    return torch


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _run_in_child(args: argparse.Namespace) -> int:
    """Run this benchmark in a fresh process with a short OpenBLAS spin, relaying its output.

    NumPy's OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` when it is loaded, i.e. before any code of
    this module runs, hence the child. Its stdout and stderr are copied line by line to this
    process's ``sys.stdout`` / ``sys.stderr``; its exit code is returned.
    """
    import threading

    env = child_env(**{SPIN_ENV: str(SHORT_SPIN)})
    cmd = [sys.executable, os.path.abspath(__file__), *canonical_argv(args)]
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


def _measure_grid(cells, rows, modes, torch, repeats, budget, rate, retries) -> list[dict[str, Any]]:
    """Every (cell, row, mode) measurement, a progress line each on stderr."""
    records = []
    for cell in cells:
        for name in rows:
            row = ROWS[name]
            p = make_problem(cell, row)
            b_inf, b_train = bptt_calls(cell, p)
            t_inf, t_train = torch_calls(torch, cell, p) if torch else (None, None)
            for mode in modes:
                b_fn, t_fn = (b_inf, t_inf) if mode == "inference" else (b_train, t_train)
                r = measure(cell, row, mode, b_fn, t_fn, torch, repeats, budget, rate, retries)
                records.append(r)
                msg = f"{cell} {name} {mode} ... {ms(r['bptt_ms'])} ms"
                if r["torch_ms"] is not None:
                    msg += f" vs {ms(r['torch_ms'])} ms (torch/bptt {r['torch_over_bptt']:.2f})"
                msg += f", {r['repeats']} repeats"
                if r["attempts"] > 1:
                    msg += f", steadiest of {r['attempts']} attempts"
                if r["other_load_cores"] is not None and r["other_load_cores"] > BUSY_CORES:
                    msg += f"  (busy machine: other processes used {r['other_load_cores']:.1f} cores)"
                elif r["spread"] > SPREAD_MAX:
                    msg += f"  (unsteady: repeats spread p75/p25 {r['spread']:.2f})"
                if r["max_rel_diff"] is not None and r["max_rel_diff"] > 1e-3:
                    msg += f"  WARNING: outputs differ from torch (rel. diff {r['max_rel_diff']:.2e})"
                progress(msg)
            del p, b_inf, b_train, t_inf, t_train
            gc.collect()
    return records


def _measure_memory(cells, torch) -> tuple[list[dict[str, Any]], bool]:
    """The memory records of each cell, and whether any measurement failed."""
    mem = []
    failed = False
    for cell in cells:
        m: dict[str, Any] = {"cell": cell, "row": MEMORY_ROW, "bptt_mib": None, "torch_mib": None,
                             "torch_over_bptt": None}
        try:
            progress(f"memory {cell} {MEMORY_ROW} train step: bptt ...")
            rb = memory_subprocess(cell, "bptt")
            m["bptt_mib"], m["method"] = rb["mib"], rb["method"]
            if torch:
                progress(f"memory {cell} {MEMORY_ROW} train step: torch ...")
                m["torch_mib"] = memory_subprocess(cell, "torch")["mib"]
                m["torch_over_bptt"] = m["torch_mib"] / m["bptt_mib"] if m["bptt_mib"] > 0 else None
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            m["error"] = str(exc)
            failed = True
            progress(f"memory {cell}: {exc}")
        mem.append(m)
    return mem, failed


def _print_results(info, records, mem, repeats, budget, retries) -> None:
    """The machine's lines, the table, the warnings and the memory lines, on stdout."""
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
    if repeats < DEFAULT_REPEATS:
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
    progress("bench: measuring the GEMM rate ...")
    rate, rate_load, _ = steadiest(lambda: gemm_rate(repeats=max(repeats, 10)), retries)
    info = machine_info(torch, rate)
    info["gemm_other_load_cores"] = rate_load
    progress(f"bench: gemm rate {rate / 1e9:.1f} GFLOP/s")
    if rate_load is not None and rate_load > BUSY_CORES:
        progress(f"bench: WARNING: other processes used {rate_load:.1f} cores while the GEMM rate was measured")

    records = _measure_grid(cells, rows, modes, torch, repeats, budget, rate, retries)
    mem, failed = _measure_memory(cells, torch) if memory else ([], False)
    _print_results(info, records, mem, repeats, budget, retries)

    if args.json:
        write_json_atomic(args.json, {
            "schema": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": list(sys.argv[1:] if argv is None else argv),
            "settings": {"cells": cells, "rows": rows, "modes": modes, "repeats": repeats, "budget": budget,
                         "memory": memory, "dtype": "float32", "protocol": repeats >= DEFAULT_REPEATS,
                         "retries": retries, "openblas_thread_timeout": os.environ.get(SPIN_ENV)},
            "machine": info,
            "results": records,
            "memory": mem,
            "loadavg_at_end": loadavg(),
        })
        progress(f"bench: wrote {args.json}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python benchmarks/run.py [options]``; returns the exit code (2 for bad options)."""
    args = build_parser().parse_args(argv)
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
