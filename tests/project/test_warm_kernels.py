"""tools/warm_kernels.py, run by make test first: it compiles the kernels only when Numba's cache
holds none of the GRU's, beside the sources or under NUMBA_CACHE_DIR."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "warm_kernels.py"


def load():
    spec = importlib.util.spec_from_file_location("warm_kernels", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cache_is_cold_until_it_holds_a_gru_index_file(tmp_path, monkeypatch):
    wk = load()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not wk.cache_is_warm()  # empty
    nested = tmp_path / "work" / "src" / "bptt" / "kernels" / "fast"  # Numba mirrors the source path
    nested.mkdir(parents=True)
    (nested / "lstm.lstm_forward_loop-200.py311.nbi").write_bytes(b"")
    assert not wk.cache_is_warm()  # another cell's kernels only
    (nested / "gru.gru_forward_loop-120.py311.nbi").write_bytes(b"")
    assert wk.cache_is_warm()


def test_a_warm_cache_runs_nothing(tmp_path, monkeypatch):
    wk = load()
    monkeypatch.setattr(wk, "cache_is_warm", lambda: True)
    monkeypatch.setattr(wk.subprocess, "Popen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    assert wk.main() == 0


def test_a_cold_cache_runs_both_halves_at_once_and_reports_each(monkeypatch, capsys):
    wk = load()
    monkeypatch.setattr(wk, "cache_is_warm", lambda: False)
    monkeypatch.setattr(wk.time, "sleep", lambda s: None)
    started = []

    class Proc:
        def __init__(self, cmd, **kwargs):
            started.append(cmd)
            self.k, self.returncode, self.polls = cmd[-1], None, 3 if cmd[-1] == "gru" else 1

        def poll(self):
            self.polls -= 1
            if self.polls <= 0:
                self.returncode = 1 if self.k == "gru" else 0
            return self.returncode

    monkeypatch.setattr(wk.subprocess, "Popen", Proc)
    assert wk.main() == 0  # the suite reports failures, not the warm-up
    assert [c[-2:] for c in started] == [["-k", "gru"], ["-k", "not gru"]]
    assert all(wk.FILES[0] in c and wk.FILES[1] in c for c in started)
    out = capsys.readouterr().out
    assert "(-k 'not gru' " in out and ", -k 'gru' " in out  # in the order they ended
    assert "some of these tests failed" in out
