"""Fixtures of the bptt.io tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="module")
def keras():
    """The test extra's Keras on its torch backend (a missing install fails, not skips)."""
    import keras

    assert keras.backend.backend() == "torch", (
        f"these tests build Keras models on its torch backend; KERAS_BACKEND is {os.environ.get('KERAS_BACKEND')!r}: "
        f"unset it or set it to torch (tests/io/conftest.py sets it to torch unless it is set)"
    )
    return keras
