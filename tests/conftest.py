"""Fixtures shared across the test areas.

The suite is grouped by area: ``core/`` (the cells' numbers: gradients, parity with PyTorch, the
worked example, layers, losses, metrics), ``kernels/`` (the fast path's drivers, planning,
threads, memory, settings), ``train/`` (fit, optimizers, the network, scikit-learn), ``io/``
(data, ROOT files, model files, ONNX, weight conversion), ``tmva/`` (booking strings, the network
and training they describe, the tutorial), ``cli/`` (the commands, the README's code) and
``project/`` (the benchmark harness, the import graph). ``problems.py`` holds the random problems
the kernel tests share (``pythonpath`` includes ``tests``). Files named ``test_mutants_*`` were
written to kill surviving mutants (docs/mutation.md).

Tests reach the fast path's internals through ``bptt.settings`` (``settings.override(...)`` or
``monkeypatch.setattr(settings, ...)``), not by patching module constants.
"""

from __future__ import annotations

import faulthandler
import os

import pytest


@pytest.fixture(autouse=True)
def _mutant_watchdog():
    """Under mutation testing (tools/mutation.py sets ``BPTT_TEST_WATCHDOG`` for the modules that
    need it), a test of a mutant still running after that many seconds ends its process with a
    traceback: a mutant that leaves a thread waiting forever burns no CPU time, mutmut's only
    limit. Never armed otherwise (nor in mutmut's own runs of the unmutated code)."""
    seconds = os.environ.get("BPTT_TEST_WATCHDOG")
    if not seconds or "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        yield
        return
    faulthandler.dump_traceback_later(float(seconds), exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_sessionfinish(session, exitstatus):
    """Under the same watchdog, the process's exit too: a mutant that leaves a non-daemon thread
    waiting would keep the process alive after its tests (and mutmut's pipe open)."""
    seconds = os.environ.get("BPTT_TEST_WATCHDOG")
    if seconds and "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        faulthandler.dump_traceback_later(float(seconds), exit=True)


@pytest.fixture(scope="module")
def torch_one_thread():
    """One intra-op thread for PyTorch, restored afterwards: the reference problems are tiny, and
    on a loaded machine the thread pool's synchronisation costs ten times the arithmetic."""
    import torch  # a declared test dependency ([test] extra): imported, never skipped
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(n)


@pytest.fixture
def write_jagged():
    """``write_jagged(path, {tree: {branch: [row, ...]}})``: a ROOT file whose branches are
    variable-length (counted ``float[n]``, read by uproot as TMVA's ``std::vector<float>``)."""
    import awkward as ak
    import uproot

    def write(path, trees: dict[str, dict[str, list]]):
        with uproot.recreate(path) as f:
            for name, branches in trees.items():
                t = f.mktree(name, {b: "var * float32" for b in branches})
                t.extend({b: ak.Array(rows) for b, rows in branches.items()})

    return write
