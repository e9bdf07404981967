"""Output of the kernel benchmark: progress lines on stderr, the results table, the memory lines,
and the JSON file (written atomically)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import Any

__all__ = ["format_memory", "format_table", "ms", "progress", "ratio", "write_json_atomic"]


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ms(v: float | None) -> str:
    """A time in ms, with fewer decimals the larger it is (3 below 1 ms, none from 100 ms); ``—`` for none."""
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def format_table(records: list[dict[str, Any]]) -> str:
    head = ["cell", "row", "B", "T", "I", "H", "mode", "bptt ms", "torch ms", "torch/bptt", "floor/bptt"]
    rows = [
        [r["cell"], r["row"], str(r["B"]), str(r["T"]), str(r["I"]), str(r["H"]), r["mode"], ms(r["bptt_ms"]),
         ms(r["torch_ms"]), ratio(r["torch_over_bptt"]), ratio(r["floor_over_bptt"])]
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
            text += f", torch {m['torch_mib']:.1f} MiB, torch/bptt {ratio(m['torch_over_bptt'])}"
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
