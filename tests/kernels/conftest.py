"""Fixtures of the fast path's tests."""

from __future__ import annotations

import pytest

from bptt import _threads


@pytest.fixture
def fresh_worker():
    """The test starts bptt's second thread afresh (the one before is left asleep): the worker is
    one per process, so otherwise only the first test to need it would start it, and a mutation
    run would check its start and its loop against that test alone (docs/mutation.md)."""
    _threads._forget_second_thread()
    yield
