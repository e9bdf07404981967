#!/usr/bin/env python3
"""Mutation testing of bptt's Python modules (not the compiled kernels) with mutmut.

    python tools/mutation.py run [--profile full|ci] [--module src/bptt/X.py] [--jobs N] [--save FILE]
                                 [--results FILE] [NAME...]
    python tools/mutation.py report RESULTS.json [--survivors]
    python tools/mutation.py check RESULTS.json --baseline docs/mutation/results.json
    python tools/mutation.py show [--profile full|ci] NAME...

``make mutation`` and ``make mutation-ci`` call these; docs/mutation.md is the kept report.

``run`` mutates each module of the profile (``MODULES`` or ``CI_MODULES`` below) in a run of its
own: src/, tests/, README.md and pyproject.toml (with a [tool.mutmut] table for that module and
its tests) are copied into build/mutation/<profile>/<module>/ and ``mutmut run`` runs there, so a
run sees one snapshot of the tree however the checkout changes meanwhile. For each mutant mutmut
runs only those of the module's tests that called the mutated function while it collected its
stats. Progress is printed every 20 s (mutmut itself draws a spinner), then the score per module;
build/mutation/<profile>/results.json holds the results (``--save`` copies it elsewhere) and, for
the full profile, survivors.md the surviving mutants with their diffs.

``check`` is CI's guard: every mutant that the baseline lists as killed, in a function whose
source hash is the same as in the baseline, must be killed (or time out) again; one that now
survives fails the check (exit 1). Functions edited since the baseline are listed, not judged.

results.json: per module and function, the function's source hash (mutmut's) and one letter per
mutant, mutant n at position n: K killed, S survived, T timeout, N no tests, ? suspicious, ...
(``status_letters`` in the file). Mutants reported as equivalent are listed with their reason in
docs/mutation/equivalent/<module>.txt (``name reason`` per line; one file per module, e.g.
data-arrays.txt for src/bptt/data/arrays.py).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "docs" / "mutation" / "equivalent"

# Each module is mutated in a run of its own, against its own tests: the test files written for it
# (and the doctests of its file), not every test that happens to import it. That keeps a run to
# minutes: the README's end-to-end test, the command line's subprocess tests and the sklearn
# estimator checks would run for nearly every mutant. Globs take in test files added later;
# tests/<area>/test_mutants_<module>*.py are the tests written to kill surviving mutants. An entry
# "!node-id-prefix" deselects tests (pytest's --deselect). Left out for time: test_training_glue.py
# (its fixture trains the tutorial at full size; its fit tests train for 40 epochs).
OPTIONS_TESTS = ["tests/tmva/test_tmva*.py", "tests/tmva/test_option*.py", "tests/tmva/test_mutants_tmva*.py",  # TMVA options → network → fit
                 "!tests/tmva/test_tmva_fuzz.py", "!tests/tmva/test_tmva_booking_strings.py"]  # seconds per mutant: left out
MODULES: dict[str, list[str]] = {
    "src/bptt/tmva/layout.py": [*OPTIONS_TESTS],
    "src/bptt/tmva/options.py": [*OPTIONS_TESTS],
    "src/bptt/tmva/_common.py": [*OPTIONS_TESTS],
    "src/bptt/tmva/layers.py": [*OPTIONS_TESTS, "tests/train/test_model.py", "tests/train/test_mutants_model*.py"],
    "src/bptt/tmva/network.py": [*OPTIONS_TESTS, "tests/tmva/test_mutants_tutorial*.py"],
    "src/bptt/tmva/tutorial.py": [*OPTIONS_TESTS, "tests/tmva/test_mutants_tutorial*.py"],
    "src/bptt/train.py": ["tests/train/test_train.py", "tests/tmva/test_option*.py", "tests/train/test_stateful.py",
                          "tests/train/test_fit_weights.py",
                          "tests/train/test_lengths_fit.py", "tests/train/test_fit_tbptt.py",  # issue 20: lengths, tbptt
                          "tests/tmva/test_tmva_optimizer_keys.py",  # optimizer_options
                          "tests/train/test_mutants_train_paths.py"],  # MPI in one process, losses, old checkpoints
    "src/bptt/model.py": ["tests/train/test_model.py", "tests/train/test_train.py", "tests/io/test_onnx.py",
                          "tests/train/test_stateful.py", "tests/train/test_fit_weights.py",
                          "tests/train/test_lengths_fit.py", "tests/io/test_model_inputs.py"],  # issue 20: lengths, jagged inputs
    "src/bptt/metrics.py": ["tests/core/test_metrics.py", "tests/core/test_plots.py", "tests/core/test_results.py",
                            "tests/core/test_weights.py"],
    "src/bptt/results.py": ["tests/core/test_results*.py"],
    "src/bptt/data/arrays.py": ["tests/io/test_data.py", "tests/train/test_train.py"],
    "src/bptt/data/root.py": ["tests/io/test_root*.py", "tests/io/test_data.py"],
    "src/bptt/data/expressions.py": ["tests/io/test_expressions*.py", "tests/io/test_mutants_expressions*.py"],
    "src/bptt/data/splitting.py": ["tests/io/test_loader.py", "tests/io/test_mutants_loader*.py"],  # not _root: file reads
    "src/bptt/io/model_file.py": ["tests/train/test_model.py", "tests/train/test_train.py"],
    "src/bptt/losses.py": ["tests/core/test_losses.py", "tests/core/test_weights.py"],
    "src/bptt/optim.py": ["tests/train/test_optim.py", "tests/train/test_train.py"],
    "src/bptt/regularization.py": ["tests/train/test_optim.py", "tests/train/test_train.py"],
    # issue 20: lengths and per-step targets through fit, fit's data checks (moved out of train.py,
    # so train.py's tests too), truncated BPTT
    "src/bptt/sequences.py": ["tests/train/test_lengths_fit.py", "tests/train/test_train.py",
                              "tests/train/test_model.py"],
    "src/bptt/_fit_data.py": ["tests/train/test_train.py", "tests/tmva/test_option*.py", "tests/train/test_stateful.py",
                              "tests/train/test_fit_weights.py", "tests/train/test_lengths_fit.py",
                              "tests/train/test_mutants_train.py"],
    "src/bptt/tbptt.py": ["tests/train/test_tbptt.py", "tests/train/test_fit_tbptt.py"],
    # bptt's second thread and the BLAS holds (2026-12-07)
    "src/bptt/_threads.py": ["tests/kernels/test_threads.py", "tests/kernels/test_loop_threads.py",
                             "tests/core/test_parallel_directions.py"],  # one_core, the two directions at once
    # the packed layout of calls with lengths (issue 20), its bookkeeping in compiled calls since 2026-12-07
    "src/bptt/functional/_packed.py": ["tests/kernels/test_lengths_fast.py", "tests/core/test_lengths_parity.py",
                                       "tests/core/test_overflow.py"],  # the final states' overflow check
}

#: Modules whose mutants can leave a thread waiting forever (no CPU time burnt, so mutmut's CPU
#: limit never ends them): each test of theirs is ended after this many seconds (tests/conftest.py).
WATCHDOG_SECONDS = {"src/bptt/_threads.py": 10}  # its tests take under 2 s each

# CI's short fixed subset: a fixed list of modules and test files, fast and deterministic (a few
# minutes on 2 cores), and, where given, only the mutants matching mutmut name globs. Its baseline
# is docs/mutation/results-ci.json, a run of this same subset (make mutation-ci-baseline).
PARSER_TESTS = ["tests/tmva/test_tmva_dense_widths.py", "tests/tmva/test_tmva_optimizer_keys.py",
                "tests/tmva/test_tmva_shapes.py", "tests/tmva/test_tmva_ascii_numbers.py"]  # the parser's own, fast
CI_MODULES: dict[str, list[str]] = {
    "src/bptt/tmva/layout.py": ["tests/tmva/test_tmva.py", "tests/tmva/test_mutants_tmva*.py", *PARSER_TESTS],
    "src/bptt/tmva/options.py": ["tests/tmva/test_tmva.py", "tests/tmva/test_mutants_tmva*.py", *PARSER_TESTS],
    "src/bptt/metrics.py": ["tests/core/test_metrics.py", "tests/core/test_plots.py", "tests/core/test_results.py",
                            "tests/core/test_weights.py"],
}
CI_MUTANTS: dict[str, list[str]] = {}
PROFILES = {"full": MODULES, "ci": CI_MODULES}

STATUS_CODE = {  # mutmut's status → one letter in results.json
    "killed": "K", "survived": "S", "timeout": "T", "no tests": "N", "suspicious": "?",
    "segfault": "X", "skipped": "s", "not checked": "-",
    "caught by type check": "C", "check was interrupted by user": "I",
}
CODE_STATUS = {v: k for k, v in STATUS_CODE.items()}
COLUMNS = ["killed", "survived", "equivalent", "timeout", "suspicious", "no tests", "not checked"]


def _expand(patterns: list[str], base: Path) -> list[str]:
    out: list[str] = []
    for p in patterns:
        hits = sorted(glob.glob(p, root_dir=base)) if any(c in p for c in "*?[") else [p]
        for h in hits:
            if (base / h).exists() and h not in out:
                out.append(h)
    return out


def _mutants_tests(module: str) -> list[str]:
    return [f"tests/*/test_mutants_{Path(module).stem}*.py"]


def module_config(profile: str, module: str, base: Path = ROOT) -> dict:
    """mutmut's configuration for one module's run."""
    entries = PROFILES[profile][module] + _mutants_tests(module)
    tests = [t for t in entries if not t.startswith("!")]
    deselect = [a for t in entries if t.startswith("!") for a in ("--deselect", t[1:])]
    # The module's own file too: its doctests are tests (pytest runs with --doctest-modules).
    selection = _expand(tests, base) + ([module] if _has_doctest(base / module) else [])
    return {
        "source_paths": ["src"],
        "only_mutate": [module],
        "also_copy": ["README.md"],
        "pytest_add_cli_args_test_selection": selection,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", *deselect],
        # Torch (imported by some test files) does not survive a fork of a process that used it:
        # mutmut's fork server keeps pytest's process out of the main one.
        "process_isolation": "forkserver",
        "use_git_change_detection": False,
    }


def _slug(module: str) -> str:
    return module.removeprefix("src/bptt/").removesuffix(".py").replace("/", "-")


def _has_doctest(path: Path) -> bool:
    return path.exists() and ">>> " in path.read_text(encoding="utf-8")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def _pyproject_with(config: dict) -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # drop a [tool.mutmut] table the project may have; the profile's replaces it
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    lines = ["", "[tool.mutmut]"] + [f"{k} = {_toml_value(v)}" for k, v in config.items()]
    return text.rstrip() + "\n" + "\n".join(lines) + "\n"


NUMBA_CACHE = BUILD / "numba-cache"


def _copy_numba_cache(src_root: Path, dst_root: Path) -> None:
    """numba's on-disk kernels (``__pycache__/*.nbi``, ``*.nbc``) from one src tree to another.

    They are valid for a copy of the same sources with the same modification times, which all
    copies here keep: the runs share one compilation instead of each compiling the kernels.
    """
    for f in list(src_root.rglob("__pycache__/*.nb[ic]")):
        target = dst_root / f.relative_to(src_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def prepare(profile: str, module: str) -> Path:
    work = BUILD / profile / _slug(module)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    if NUMBA_CACHE.exists():
        _copy_numba_cache(NUMBA_CACHE, work / "src")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns(".hypothesis", "__pycache__"))
    shutil.copy2(ROOT / "README.md", work / "README.md")
    config = module_config(profile, module, work)
    (work / "pyproject.toml").write_text(_pyproject_with(config), encoding="utf-8")
    return work


_STATUS_RE = re.compile(r"(\d+)/(\d+)\s+🎉 (\d+) 🫥 (\d+)\s+⏰ (\d+)\s+🤔 (\d+)\s+🙁 (\d+)")
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _stream(proc: subprocess.Popen, every: float = 20.0) -> str:
    """Echo mutmut's output without its spinner: each phase once, progress every ``every`` s."""
    assert proc.stdout is not None
    last_print, last_phase, last_status = 0.0, None, None
    tail: list[str] = []
    buf = b""
    t0 = time.monotonic()

    def emit(piece: str) -> None:
        nonlocal last_print, last_phase, last_status
        piece = piece.strip()
        if not piece:
            return
        tail.append(piece)
        del tail[:-200]
        m = _STATUS_RE.search(piece)
        if m:
            last_status = m
            now = time.monotonic()
            if now - last_print >= every or m.group(1) == m.group(2):
                done, total, killed, notests, timeout, susp, survived = m.groups()
                print(f"[mutation {now - t0:6.0f} s] {done}/{total} mutants: killed {killed}, survived {survived}, "
                      f"timeout {timeout}, suspicious {susp}, no tests {notests}", flush=True)
                last_print = now
            return
        if piece[0] in _SPINNER:
            phase = piece[1:].strip()
            if phase != last_phase:
                print(f"[mutation {time.monotonic() - t0:6.0f} s] {phase}", flush=True)
                last_phase = phase
            return
        print(piece, flush=True)

    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for p in parts:
            emit(p.decode("utf-8", "replace"))
    emit(buf.decode("utf-8", "replace"))
    if last_status is not None:
        done, total, killed, notests, timeout, susp, survived = last_status.groups()
        print(f"[mutation {time.monotonic() - t0:6.0f} s] {done}/{total} mutants: killed {killed}, survived {survived}, "
              f"timeout {timeout}, suspicious {susp}, no tests {notests}", flush=True)
    return "\n".join(tail)


def _mutmut_bin() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    return str(exe) if exe.exists() else "mutmut"


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def collect_module(work: Path, module: str) -> dict:
    """One module's results: per function, its source hash and one letter per mutant."""
    meta_path = work / "mutants" / (module + ".meta")
    functions: dict[str, dict] = {}
    summary = {c: 0 for c in STATUS_CODE}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        by_function: dict[str, dict[int, str]] = {}
        for key, code in meta["exit_code_by_key"].items():
            fname, _, n = key.rpartition(".")[2].partition("__mutmut_")
            status = _status(code)
            summary[status] += 1
            by_function.setdefault(fname, {})[int(n)] = STATUS_CODE[status]
        for fname in sorted(by_function):
            numbered = by_function[fname]
            letters = "".join(numbered.get(i, "-") for i in range(1, max(numbered) + 1))
            functions[fname] = {"hash": meta["hash_by_function_name"].get(fname, ""), "status": letters}
    return {"summary": {k: v for k, v in summary.items() if v}, "functions": functions}


def results_header(profile: str) -> dict:
    return {
        "tool": f"mutmut {_mutmut_version()}",
        "profile": profile,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "machine": _cpu_model(),
        "seconds": 0.0,
        "status_letters": {v: k for k, v in STATUS_CODE.items()},
        "modules": {},
    }


def _status(code) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores"


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """``name  reason`` lines of docs/mutation/equivalent/*.txt (``#`` starts a comment)."""
    out: dict[str, str] = {}
    for f in sorted(path.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def mutants(results: dict):
    """(module, mutant name, status) for every mutant of ``results``."""
    for mod, data in results["modules"].items():
        dotted = mod[len("src/"):-len(".py")].replace("/", ".")
        for fname, f in data["functions"].items():
            for i, letter in enumerate(f["status"], 1):
                yield mod, f"{dotted}.{fname}__mutmut_{i}", CODE_STATUS.get(letter, "not checked")


def table(results: dict, equivalent: dict[str, str]) -> str:
    rows: dict[str, dict[str, int]] = {m: {c: 0 for c in COLUMNS} for m in results["modules"]}
    for mod, name, status in mutants(results):
        if status == "survived" and name in equivalent:
            status = "equivalent"
        if status in ("segfault", "caught by type check", "check was interrupted by user", "skipped"):
            status = "suspicious"
        rows[mod][status] += 1
    cols = [c for c in COLUMNS if c != "not checked" or any(r[c] for r in rows.values())]
    head = "| module | mutants | " + " | ".join(cols) + " | score |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    total = {c: 0 for c in COLUMNS}
    for mod, r in rows.items():
        for c in COLUMNS:
            total[c] += r[c]
        lines.append(_row(mod.removeprefix("src/bptt/"), r, cols))
    lines.append(_row("**all**", total, cols))
    return "\n".join(lines)


def _row(name: str, r: dict[str, int], cols: list[str]) -> str:
    n = sum(r.values())
    judged = n - r["equivalent"] - r["not checked"]
    score = f"{100 * (r['killed'] + r['timeout']) / judged:.1f} %" if judged else "–"
    return f"| {name} | {n} | " + " | ".join(str(r[c]) for c in cols) + f" | {score} |"


def _diff_lines(work: Path, names: list[str], paths: dict[str, str] | None = None) -> dict[str, str]:
    """The changed lines of each mutant (``- old`` / ``+ new``), read from the run's mutants/."""
    out: dict[str, str] = {}
    cwd = os.getcwd()
    os.chdir(work)
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        for name in names:
            try:
                diff = get_diff_for_mutant(name, path=(paths or {}).get(name))
            except Exception as exc:  # noqa: BLE001 - a report line, not a failure
                out[name] = f"(no diff: {exc})"
                continue
            changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
            out[name] = "\n".join(changed)
    finally:
        os.chdir(cwd)
    return out


def survivors_markdown(results: dict, profile: str, equivalent: dict[str, str]) -> str:
    """Each survivor with the lines it changes, marked equivalent (with the reason) or to kill;
    the mutants that no test reaches, one line per function."""
    survivors = [(mod, name) for mod, name, status in mutants(results) if status == "survived"]
    untested: dict[str, dict[str, int]] = {}
    for mod, name, status in mutants(results):
        if status == "no tests":
            fname = name.rpartition(".")[2].partition("__mutmut_")[0]
            untested.setdefault(mod, {}).setdefault(fname, 0)
            untested[mod][fname] += 1
    diffs: dict[str, str] = {}
    for mod in results["modules"]:
        work = BUILD / profile / _slug(mod)
        mine = [n for m, n in survivors if m == mod]
        if mine and (work / "mutants").exists():
            diffs.update(_diff_lines(work, mine, {n: mod for n in mine}))
    out: list[str] = []
    for mod in results["modules"]:
        mine = [n for m, n in survivors if m == mod]
        if not mine and mod not in untested:
            continue
        out.append(f"\n#### {mod.removeprefix('src/bptt/')}\n")
        for fname, n in untested.get(mod, {}).items():
            out.append(f"- `{fname}`: {n} mutants that no test of this module reaches in-process — to kill")
        for name in mine:
            verdict = f"equivalent: {equivalent[name]}" if name in equivalent else "to kill"
            out.append(f"- `{name.rpartition('.')[2]}` — {verdict}")
            if name in diffs:
                out.append("  ```diff\n" + "\n".join("  " + ln for ln in diffs[name].splitlines()) + "\n  ```")
    return "\n".join(out)


def run_module(profile: str, module: str, jobs: int, names: list[str]) -> tuple[int, Path, float]:
    work = prepare(profile, module)
    cfg = module_config(profile, module, work)
    print(f"\n[mutation] {module}: tests {' '.join(cfg['pytest_add_cli_args_test_selection'])} "
          f"(in {work.relative_to(ROOT)})", flush=True)
    # Tests that start `python -m bptt` in a subprocess must import the same mutated tree as the test
    # process (not the checkout's src/ of the editable install). The directory has to exist before
    # mutmut starts: Python remembers a missing sys.path entry as one with nothing in it.
    src = work / "mutants" / "src"
    src.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(src)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    if module in WATCHDOG_SECONDS:
        env["BPTT_TEST_WATCHDOG"] = str(WATCHDOG_SECONDS[module])
    cmd = [_mutmut_bin(), "run", "--max-children", str(jobs), *names]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    tail = _stream(proc)
    rc = proc.wait()
    seconds = time.monotonic() - t0
    if rc != 0:
        print(tail[-4000:], file=sys.stderr)
        print(f"[mutation] mutmut run failed on {module} (exit {rc})", file=sys.stderr)
    _copy_numba_cache(src, NUMBA_CACHE)
    return rc, work, seconds


def _store_module(out: Path, results: dict, module: str, entry: dict, fresh: bool) -> dict:
    """Write one module's entry into ``out`` and return the results now there.

    Runs of single modules (``--module``) may go on at the same time (one per engineer or helper):
    each re-reads the file under a lock and replaces only its own module, so none loses another's
    entry; the file is replaced atomically.
    """
    import fcntl

    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not fresh and out.exists():
            current = json.loads(out.read_text(encoding="utf-8"))
            current.update({k: v for k, v in results.items() if k != "modules"})
            results = current
        results["modules"][module] = entry
        results["seconds"] = round(sum(m.get("seconds", 0) for m in results["modules"].values()), 1)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    return results


def cmd_run(args) -> int:
    profile = args.profile
    modules = list(PROFILES[profile])
    if args.module:
        unknown = [m for m in args.module if m not in modules]
        if unknown:
            raise SystemExit(f"not in profile {profile}: {unknown}; its modules: {modules}")
        modules = args.module
    out = Path(args.results) if args.results else BUILD / profile / "results.json"
    # A run of some modules updates their entries of the last results and keeps the others'.
    results = json.loads(out.read_text(encoding="utf-8")) if args.module and out.exists() else results_header(profile)
    results.update({k: v for k, v in results_header(profile).items() if k not in ("modules", "seconds")})
    failed = []
    print(f"[mutation] profile {profile}: {len(modules)} modules, {args.jobs} at a time; mutmut {_mutmut_version()}",
          flush=True)
    for module in modules:
        names = args.names or (CI_MUTANTS.get(module, []) if profile == "ci" else [])
        rc, work, seconds = run_module(profile, module, args.jobs, names)
        if rc != 0:
            failed.append(module)
            continue
        entry = collect_module(work, module)
        entry["seconds"] = round(seconds, 1)
        cfg = module_config(profile, module, work)
        entry["tests"] = cfg["pytest_add_cli_args_test_selection"] + [
            "!" + a for a in cfg["pytest_add_cli_args"][2:] if a != "--deselect"]
        results = _store_module(out, results, module, entry, fresh=not args.module)
        print(f"[mutation] {module}: {entry['summary']} in {seconds:.0f} s", flush=True)
    equivalent = load_equivalent()
    print(f"\nmutmut {_mutmut_version()}, profile {profile}, {results['seconds']:.0f} s\n")
    print(table(results, equivalent))
    if profile == "full" or args.survivors:
        md = survivors_markdown(results, profile, equivalent)
        survivors = out.with_name(out.stem + "-survivors.md") if args.results else BUILD / profile / "survivors.md"
        survivors.write_text(md + "\n", encoding="utf-8")
        print(f"\nsurviving mutants, with their diffs: {survivors}")
    if args.save and not failed:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out, args.save)
        print(f"results saved to {args.save}")
    if failed:
        print(f"[mutation] mutmut failed on {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    results = json.loads(Path(args.results).read_text(encoding="utf-8"))
    equivalent = load_equivalent()
    print(f"{results['tool']}, profile {results['profile']}, {results['date']}, commit {results['commit']}, "
          f"{results['machine']}, {results['seconds']} s\n")
    print(table(results, equivalent))
    if args.survivors:
        print(survivors_markdown(results, results["profile"], equivalent))
    return 0


def cmd_check(args) -> int:
    current = json.loads(Path(args.results).read_text(encoding="utf-8"))
    baseline = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
    regressions, stale, improved, guarded = [], [], [], 0
    for mod, data in current["modules"].items():
        base_functions = baseline["modules"].get(mod, {}).get("functions", {})
        dotted = mod[len("src/"):-len(".py")].replace("/", ".")
        for fname, f in data["functions"].items():
            b = base_functions.get(fname)
            if b is None or b["hash"] != f["hash"]:
                stale.append(f"{dotted}.{fname}")
                continue
            for i, (was, now) in enumerate(zip(b["status"], f["status"]), 1):
                if now == "-":
                    continue
                if was in "KT":
                    guarded += 1
                    if now in "SN":
                        regressions.append(f"{dotted}.{fname}__mutmut_{i}: {CODE_STATUS[was]} in the baseline, "
                                           f"{CODE_STATUS[now]} now")
                elif was in "SN" and now in "KT":
                    improved.append(f"{dotted}.{fname}__mutmut_{i}")
    print(f"[mutation-check] {guarded} mutants killed in the baseline ({args.baseline}, commit "
          f"{baseline.get('commit')}) checked again")
    if stale:
        print(f"[mutation-check] {len(stale)} functions changed since the baseline, not judged "
              f"(run `make mutation` and keep the new results): " + ", ".join(stale))
    if improved:
        print(f"[mutation-check] {len(improved)} mutants survived in the baseline and are killed now: "
              + ", ".join(improved))
    if regressions:
        print(f"[mutation-check] FAILED: {len(regressions)} mutants that the tests killed survive now "
              "(a test lost its strength, or was removed):")
        for r in regressions:
            print("    " + r)
        print(f"see them with: python tools/mutation.py show --profile {current['profile']} NAME")
    else:
        print("[mutation-check] passed: no mutant killed in the baseline survives")
    # one closing line in the form test runners use: each guarded mutant is one check
    print(f"mutation-check: {guarded - len(regressions)} passed, {len(regressions)} failed")
    return 1 if regressions else 0


def cmd_show(args) -> int:
    for name in args.names:
        module = "src/" + name.split(".x")[0].replace(".", "/") + ".py"
        work = BUILD / args.profile / _slug(module)
        for n, diff in _diff_lines(work, [name], {name: module}).items():
            print(f"# {n}\n{diff}\n")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run mutmut on a profile's modules")
    r.add_argument("--profile", default="full", choices=["full", "ci"])
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    r.add_argument("--module", action="append", help="only this module (src/bptt/...py); repeat for more")
    r.add_argument("--save", help="copy results.json here")
    r.add_argument("--results", help="results file to update (default build/mutation/<profile>/results.json); "
                   "a run of some mutants by name should go to a file of its own")
    r.add_argument("--survivors", action="store_true", help="write survivors.md (always for full)")
    r.add_argument("names", nargs="*", help="only these mutants (mutmut names or globs)")
    r.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="score table (and survivors) of a results.json")
    rep.add_argument("results")
    rep.add_argument("--survivors", action="store_true")
    rep.set_defaults(fn=cmd_report)
    c = sub.add_parser("check", help="fail if a mutant killed in the baseline survives")
    c.add_argument("results")
    c.add_argument("--baseline", default=str(ROOT / "docs" / "mutation" / "results-ci.json"))
    c.set_defaults(fn=cmd_check)
    s = sub.add_parser("show", help="the diff of mutants of the last run of a profile")
    s.add_argument("--profile", default="full", choices=["full", "ci"])
    s.add_argument("names", nargs="+")
    s.set_defaults(fn=cmd_show)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
