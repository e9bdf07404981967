#!/usr/bin/env python3
"""Fuzz the TMVA option parser with mutated booking strings.

    python tools/tmva_fuzz.py [--strings 100000] [--seed 19] [--build-every 50]

Each string is a real booking string (ROOT's tutorials', tests/tmva/tutorial_booking_strings.json,
and a few layouts of bptt's own tests) with 1 to 4 mutations: a character or a piece inserted,
deleted or substituted, from a pool of TMVA's separators (| : , = !), digits, other scripts'
digits, huge numbers, formulas and words. Each goes through ``parse_options`` (with and without
the number of inputs); one in ``--build-every`` that parses into a network of at most 200 000
parameters is also built (``build_layers``). Only :class:`bptt.tmva.TMVAOptionError` may come out;
anything else is a failure, printed with its string. The peak of Python's allocations
(tracemalloc) over the run is reported; the parser's limits (bptt.tmva.options) keep it small.

tests/tmva/test_tmva_fuzz.py runs a 10**4 slice; docs/tmva-booking-strings.md (the fuzz section)
keeps the figures of a 10**5 run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POOL = [
    "|", ":", ",", "=", "!", "+", "-", "*", "/", "(", ")", "%", ".", " ", "0", "1", "7", "9", "10", "64",
    "٣", "３", "१", "𝟑", "½", "99999999999999999999", "9" * 400, "1e999", "1e-999", "nan", "inf", "-1",
    "N", "n", "N*N", "(N+100)*2", "N/0", "2**N", "N" * 50, "((((((((((N))))))))))",
    "DENSE", "LSTM", "GRU", "RNN", "RESHAPE", "FLAT", "LINEAR", "TANH", "RELU", "SOFTSIGN", "BNORM", "CONV",
    "Layout=", "InputLayout=", "BatchLayout=", "TrainingStrategy=", "ADAM_beta1=", "MaxEpochs=", "BatchSize=",
    "Optimizer=", "SGD", "ADAM", "CPU", "GPU", "DropConfig=", "ValidationSize=", "RandomSeed=", "\x00", "\n", "é",
]
EXTRA = [
    "InputLayout=10|30:Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR",
    "InputLayout=5|3:Layout=GRU|4|3|5|1|1|1,RNN|2|4|5|0|0,DENSE|N+1|RELU,LINEAR:BatchLayout=1|30|15",
    "InputLayout=7:Layout=DENSE|(N+100)*2|TANH,DENSE|N/2|SIGMOID,DENSE|0|LINEAR:TrainingStrategy=LearningRate=0.1,"
    "Optimizer=RMSPROP,RMSPROP_rho=0.8|LearningRate=0.01,Optimizer=ADADELTA,ADADELTA_eps=1e-6",
]


def seeds() -> list[tuple[str, int | None]]:
    entries = json.loads((ROOT / "tests" / "tmva" / "tutorial_booking_strings.json").read_text())
    return [(e["options"], e["n_variables"]) for e in entries] + [(s, None) for s in EXTRA]


def mutate(text: str, rng: random.Random) -> str:
    """1 to 4 mutations of the whole string, or (half the time) of one option's value only, so
    that deeper parts of the parser (layouts, widths, strategies) are reached often."""
    if rng.random() < 0.5 and ":" in text:
        parts = text.split(":")
        k = rng.randrange(len(parts))
        key, eq, value = parts[k].partition("=")
        parts[k] = key + eq + _mutate(value, rng, rng.choice((1, 1, 1, 2)))
        return ":".join(parts)
    return _mutate(text, rng, rng.choice((1, 1, 2, 3, 4)))


NUMBERS = ["0", "1", "2", "7", "30", "64", "1000", "2048", "65536", "65537", "99999999999999999999", "N", "N+1",
           "2*N", "(N+100)*2", "N/3", "N-1000", "N/0", "1/(N-N)", "N**2", "-1", "0.5", "1e-3", "1e5", "1e999", "٣",
           "1_0"]


def _mutate(text: str, rng: random.Random, times: int) -> str:
    import re

    numbers = list(re.finditer(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?", text))
    if numbers and rng.random() < 0.4:  # a number changed: the string stays well formed more often
        m = rng.choice(numbers)
        return text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]
    for _ in range(times):
        i = rng.randrange(len(text) + 1)
        op = rng.random()
        piece = rng.choice(POOL)
        if op < 0.4:
            text = text[:i] + piece + text[i:]
        elif op < 0.7 and text:
            j = min(len(text), i + rng.randint(1, 3))
            text = text[:i] + text[j:]
        else:
            j = min(len(text), i + rng.randint(1, 2))
            text = text[:i] + piece + text[j:]
    return text


def fuzz(n: int, seed: int = 19, build_every: int = 50, trace: bool = True) -> dict:
    """Run ``n`` mutated strings; returns the figures and the failures (string, exception)."""
    import numpy as np

    from bptt.tmva import TMVAOptionError, parse_options
    from bptt.tmva.layers import build_layers
    from bptt.tmva.layout import count_parameters

    rng = random.Random(seed)
    base = seeds()
    counts = {"strings": n, "parsed": 0, "refused": 0, "built": 0, "failures": []}
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n):
            text, n_inputs = rng.choice(base)
            text = mutate(text, rng)
            kw = {"n_inputs": n_inputs} if n_inputs and k % 2 else {}
            try:
                opts = parse_options(text, **kw)
            except TMVAOptionError:
                counts["refused"] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - what the fuzz looks for
                counts["failures"].append((text, repr(exc)))
                continue
            counts["parsed"] += 1
            if k % build_every or "layout" not in opts or "input_layout" not in opts:
                continue
            try:
                params = count_parameters(opts["layout"], opts["input_layout"])
                if params is not None and params <= 200_000:
                    build_layers(opts["layout"], opts["input_layout"], seed=0, dtype=np.float32)
                    counts["built"] += 1
            except TMVAOptionError:
                pass
            except Exception as exc:  # noqa: BLE001
                counts["failures"].append((text, repr(exc)))
    counts["seconds"] = time.perf_counter() - t0
    counts["peak_bytes"] = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strings", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--build-every", type=int, default=50)
    args = parser.parse_args(argv)
    out = fuzz(args.strings, args.seed, args.build_every)
    for text, exc in out["failures"][:20]:
        print(f"FAILURE {exc}: {text!r}")
    print(f"{out['strings']} strings in {out['seconds']:.1f} s (under tracemalloc): {out['parsed']} parsed, "
          f"{out['refused']} refused with TMVAOptionError, {out['built']} networks built, "
          f"{len(out['failures'])} other exceptions; peak traced allocation {out['peak_bytes'] / 2**20:.2f} MiB")
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
