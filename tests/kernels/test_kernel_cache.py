"""Numba's disk cache and the kernels' dependencies.

Numba keys a cached function by the contents of the file it is defined in (numba/core/caching.py:
a SHA-256 of the source file), not by the modules whose functions, intrinsics and overloads it
compiles in. An edit to bptt/kernels/microkernel.py or blas.py alone therefore left
bptt.kernels.fast running the old code from the cache (found when a new 16 x 16 tile never ran),
and an edit to fast/common.py alone would leave fast/lstm.py's, gru.py's and rnn.py's kernels so.
Each compiled module records a fingerprint of the modules compiled into it
(bptt.kernels.fingerprint), so that changing them means changing it too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from bptt.kernels import fingerprint as fp


@pytest.mark.parametrize("module", list(fp.DEPENDENCIES))
def test_each_compiled_module_records_the_fingerprint_of_what_it_compiles_in(module):
    name = "bptt.kernels." + module.removesuffix(".py").replace("/", ".")
    recorded = importlib.import_module(name).COMPILED_DEPENDENCIES
    assert recorded == fp.fingerprint(module), (
        f"one of {', '.join(fp.compiled_in(module))} changed: set COMPILED_DEPENDENCIES in bptt/kernels/{module} to "
        f"{fp.fingerprint(module)!r} (python -m bptt.kernels.fingerprint updates every module), so that Numba's "
        "cache of its kernels is rebuilt"
    )


def _kernel_imports(path: Path) -> set[str]:
    """The modules of bptt.kernels that ``path`` imports from (relative imports), as paths
    relative to bptt/kernels: what Numba may compile into its functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            target = base.joinpath(*(node.module or "").split("."))
            if target.with_suffix(".py").is_file() and fp.KERNELS in target.parents:
                found.add(target.with_suffix(".py").relative_to(fp.KERNELS).as_posix())
    return found


@pytest.mark.parametrize("module", list(fp.DEPENDENCIES))
def test_compiled_modules_import_only_their_listed_dependencies(module):
    """A new compiled-in module must join the fingerprint's list."""
    assert _kernel_imports(fp.KERNELS / module) == set(fp.DEPENDENCIES[module])


def _uses_numba(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.Import) and any(a.name.split(".")[0] == "numba" for a in node.names)
               or isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numba"
               for node in ast.walk(tree))


def test_every_compiled_module_that_imports_another_kernel_module_is_listed():
    """A Numba module of bptt.kernels that imports from another kernel module (every module of
    bptt.kernels.fast but its __init__, which only re-exports) must be in the list."""
    listed = set()
    for path in sorted(fp.KERNELS.rglob("*.py")):
        module = path.relative_to(fp.KERNELS).as_posix()
        if path.name != "__init__.py" and _uses_numba(path) and _kernel_imports(path):
            assert module in fp.DEPENDENCIES, module
            listed.add(module)
    assert listed == set(fp.DEPENDENCIES)
    assert {"fast/common.py", "fast/lstm.py", "fast/gru.py", "fast/rnn.py"} <= listed


def test_a_change_to_a_dependency_changes_the_fingerprints_that_compile_it_in(tmp_path, monkeypatch):
    """The fingerprint of a cell's module covers common.py, and through it microkernel.py and
    blas.py; recording a fingerprint changes no other (the record lines are left out)."""
    for module in {m for deps in fp.DEPENDENCIES.values() for m in deps} | set(fp.DEPENDENCIES):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_bytes((fp.KERNELS / module).read_bytes())
    monkeypatch.setattr(fp, "KERNELS", tmp_path)
    fp.update()
    before = {m: fp.fingerprint(m) for m in fp.DEPENDENCIES}
    assert not fp.stale() and {m: fp.recorded(m) for m in fp.DEPENDENCIES} == before
    common = tmp_path / "fast" / "common.py"
    common.write_text(common.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    after = {m: fp.fingerprint(m) for m in fp.DEPENDENCIES}
    cells = {"fast/lstm.py", "fast/gru.py", "fast/rnn.py", "fast/packed.py", "fast/packing.py"}  # every module compiling common.py in
    assert {m for m in fp.DEPENDENCIES if before[m] != after[m]} == set(fp.stale()) == cells
    assert fp.update() == {m: after[m] for m in cells} and not fp.stale()
    assert {m: fp.recorded(m) for m in fp.DEPENDENCIES} == after
    blas = tmp_path / "blas.py"
    blas.write_text(blas.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert set(fp.stale()) == cells | {"fast/common.py"}
