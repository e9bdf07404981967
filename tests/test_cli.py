"""The command line, run as a user would: a new process, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys


def bptt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bptt", *args], capture_output=True, text=True, timeout=120)


def test_example_prints_the_worked_example():
    out = bptt("example")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # Published forward values (rounded as published) appear in both our row and the published row.
    for value in ("0.96083", "0.85195", "0.81775", "0.81757", "0.53631", "0.98118", "0.84993"):
        assert text.count(value) >= 2, value
    for needle in ("dz_i", "dz_f", "dz_g", "dz_o", "dW", "dU", "db", "SGD step (lr = 0.1)"):
        assert needle in text
    # The closing finite-difference table: one row per array, every error below 1e-6.
    rows = [line.split() for line in text.splitlines()[-4:]]
    assert [r[0] for r in rows] == ["x", "W", "U", "b"]
    assert all(float(r[1]) < 1e-6 for r in rows)


def test_no_command_prints_help_and_exits_2():
    out = bptt()
    assert out.returncode == 2
    assert "example" in out.stdout


def test_bad_option_value_is_one_line_exit_2():
    out = bptt("example", "--lr", "-1")
    assert out.returncode == 2
    assert out.stderr.strip() == "bptt example: error: SGD: lr must be a positive finite number; got -1.0"
    assert "Traceback" not in out.stderr


def test_unknown_option_exit_2():
    out = bptt("example", "--frobnicate")
    assert out.returncode == 2
    assert "unrecognized arguments: --frobnicate" in out.stderr
