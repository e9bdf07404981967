"""bptt.settings: the three environment variables read once, the rest attributes, override()."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bptt.settings import OwnKernel, Settings, from_environment, override, settings


def test_environment_is_read_into_settings():
    s = from_environment({"BPTT_BACKEND": "reference", "BPTT_LOOP_THREADS": "1", "BPTT_KEEP_FREED_MEMORY": "0"})
    assert (s.backend, s.loop_threads, s.keep_freed_memory) == ("reference", 1, False)
    assert from_environment({}) == Settings()
    assert from_environment({"BPTT_LOOP_THREADS": "2"}).loop_threads == 2


@pytest.mark.parametrize(
    "name, value, allowed",
    [("BPTT_BACKEND", "cuda", "fast, reference"), ("BPTT_LOOP_THREADS", "4", "1, 2"), ("BPTT_KEEP_FREED_MEMORY", "no", "0, 1")],
)
def test_a_wrong_environment_value_names_the_variable(name, value, allowed):
    with pytest.raises(ValueError, match=rf"the environment variable {name} must be one of {allowed}; got '{value}'"):
        from_environment({name: value})


def test_the_environment_is_read_once_at_import():
    code = "import os; from bptt.settings import settings; os.environ['BPTT_LOOP_THREADS'] = '2'; print(settings.loop_threads)"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "BPTT_LOOP_THREADS": "1"},
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "1", run.stderr


def test_override_restores_even_on_error():
    before = (settings.own_kernel, settings.small_step_fmas)
    with pytest.raises(RuntimeError):
        with override(own_kernel=0, small_step_fmas=7) as s:
            assert s.own_kernel is OwnKernel.OFF and settings.small_step_fmas == 7
            raise RuntimeError
    assert (settings.own_kernel, settings.small_step_fmas) == before


def test_override_refuses_unknown_names_and_backends():
    with pytest.raises(ValueError, match=r"override: unknown settings \['own_kernal'\]"):
        with override(own_kernal=OwnKernel.OFF):
            pass
    with pytest.raises(ValueError, match=r"backend must be one of fast, reference; got 'gpu'"):
        with override(backend="gpu"):
            pass


def test_settings_decide_the_fast_path():
    """A setting takes effect on the next call."""
    from bptt.functional import _plan

    with override(own_kernel=OwnKernel.OFF):
        assert not _plan._own_kernel_on()
    with override(own_kernel=OwnKernel.ALL):
        assert _plan._own_kernel_on()
    with override(loop_threads=1):
        assert _plan._loop_split(200, 256, 128, 4, "float32") == 0
