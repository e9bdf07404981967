"""bptt._env.env: os.environ.get, read from os.environ's own mapping."""

from __future__ import annotations

import os

import pytest

from bptt._env import env

NAME = "BPTT_TEST_ENV_VARIABLE"


def test_follows_every_change_through_os_environ(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    assert env(NAME) is None and env(NAME, "d") == "d"
    monkeypatch.setenv(NAME, "2")
    assert env(NAME) == "2" and env(NAME, "d") == "2"
    os.environ[NAME] = "välue"  # non-ASCII round-trips through the encoded mapping
    assert env(NAME) == "välue"
    del os.environ[NAME]
    assert env(NAME, "1") == "1"
    monkeypatch.setenv(NAME, "")
    assert env(NAME, "1") == ""


@pytest.mark.parametrize("value", [None, "0"])
def test_falls_back_to_a_replaced_environment(monkeypatch, value):
    replaced = {} if value is None else {NAME: value}
    monkeypatch.setattr(os, "environ", replaced)
    assert env(NAME, "d") == (value or "d")


def test_decides_the_fast_path(monkeypatch):
    """A variable the fast path reads takes effect on the next call."""
    from bptt.functional import _own_kernel_on

    monkeypatch.setenv("BPTT_OWN_KERNEL", "0")
    assert not _own_kernel_on()
    monkeypatch.setenv("BPTT_OWN_KERNEL", "1")
    assert _own_kernel_on()
