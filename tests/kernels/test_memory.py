"""bptt._memory: glibc keeps freed memory for reuse once the fast kernels are used; opt-out works."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from bptt import _memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")


def run(code: str, **env) -> str:
    import os

    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120).stdout.strip()


def test_applied_once_when_fast_kernels_are_first_used():
    code = (
        "import numpy as np, bptt._memory as m, bptt.functional as F\n"
        "before = m._done\n"
        "F.rnn_forward(np.ones((2, 3, 1)), np.ones((1, 2)), np.eye(2), np.zeros(2))\n"
        "print(before, m._done, m.keep_freed_memory())"
    )
    assert run(code) == "False True True"


def test_opt_out_leaves_glibc_alone():
    code = (
        "import numpy as np, bptt._memory as m, bptt.functional as F\n"
        "F.rnn_forward(np.ones((2, 3, 1)), np.ones((1, 2)), np.eye(2), np.zeros(2))\n"
        "print(m._done, m.keep_freed_memory())"
    )
    assert run(code, BPTT_KEEP_FREED_MEMORY="0") == "False False"


def test_idempotent_in_this_process():
    assert _memory.keep_freed_memory() is _memory.keep_freed_memory()
