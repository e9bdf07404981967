"""Fixtures of the fast path's tests."""

from __future__ import annotations

import pytest

from bptt import _threads


@pytest.fixture(params=["futex", "condition"])
def each_worker(request):
    """:func:`fresh_worker` with the worker sleeping on the futex inside compiled code (Linux), and
    then on a ``threading.Condition`` (the path of other systems; where there is no futex, both
    runs take it): the worker's own tests (test_threads.py) run with each."""
    yield from _fresh(request.param == "futex")


@pytest.fixture
def fresh_worker():
    """The test starts bptt's second thread afresh (the one before is left asleep): the worker is
    one per process, so otherwise only the first test to need it would start it, and a mutation
    run would check its start and its loop against that test alone (docs/mutation.md). The worker
    is the default one of this system."""
    yield from _fresh(None)


def _fresh(futex):
    """A new worker (``futex``: as bptt._threads._Worker takes it) whose futex waits time out after
    60 s: a test waiting seconds for a wake fails rather than pass slowly."""
    from bptt.kernels import sync, worker

    _threads._forget_second_thread()
    _threads._second = _threads._Worker(futex=futex)
    t = worker.TIMEOUT * sync.STRIDE
    _threads._second.flags[t: t + 2] = (60, 0)  # a wake missed is not made good by the next timeout
    yield _threads._second
