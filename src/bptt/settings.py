"""The fast path's settings: one object, read from the environment once.

Three environment variables are read, when bptt is first imported:

- ``BPTT_BACKEND``: ``fast`` or ``reference``, the backend of calls that name none (default: fast
  when Numba imports);
- ``BPTT_LOOP_THREADS``: ``1`` keeps every time loop on one thread; ``2`` splits every loop it can
  on two (default: by the work per loop, see :attr:`Settings.split_loop_work`);
- ``BPTT_KEEP_FREED_MEMORY``: ``0`` leaves glibc's memory settings alone (see bptt._memory).

Everything else is an attribute of :data:`settings`, changed for a block with :func:`override`
(tests, measurements)::

    >>> from bptt.settings import OwnKernel, override, settings
    >>> with override(own_kernel=OwnKernel.OFF, loop_threads=1):
    ...     settings.own_kernel, settings.loop_threads
    (<OwnKernel.OFF: 0>, 1)
    >>> settings.own_kernel
    <OwnKernel.AUTO: -1>

The thresholds state the fast path's rules; docs/performance.md has the measurements behind them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os

__all__ = ["OwnKernel", "Settings", "settings", "override", "from_environment"]

BACKENDS = ("fast", "reference")


class OwnKernel(enum.IntEnum):
    """Where bptt's own float32 micro-kernel (bptt.kernels.microkernel) takes the per-step products.

    ``AUTO``: on AVX-512 CPUs, by the rules of bptt.functional._plan; ``OFF``: never; ``ALL``: every
    product it can tile. ``FORWARD_SHAPES`` is a mode the planner chooses (the forward shapes only,
    where NumPy's BLAS runs kernels narrower than the CPU's), never a setting.
    """

    AUTO = -1
    OFF = 0
    FORWARD_SHAPES = 1
    ALL = 2


@dataclasses.dataclass
class Settings:
    """The fast path's switches and thresholds (see the module docstring for the environment)."""

    #: Backend of calls that name none: ``"fast"``, ``"reference"``, or None (fast when Numba imports).
    backend: str | None = None
    #: Time loops on one thread (1), on two wherever possible (2), or by their work (None).
    loop_threads: int | None = None
    #: bptt._memory's glibc settings (keep freed memory for the next call instead of unmapping it).
    keep_freed_memory: bool = True
    #: The micro-kernel: :class:`OwnKernel` ``AUTO``, ``OFF`` or ``ALL``.
    own_kernel: OwnKernel = OwnKernel.AUTO
    #: Weight-gradient products on bptt's dot tiles where they apply (False: always OpenBLAS).
    dot_tiles: bool = True
    #: dx_t = W dz_t inside the LSTM's and GRU's backward loops, on the micro-kernel, where it applies.
    dx_in_loop: bool = True
    #: Two-thread forward loops split by hidden units where they can (False: by the batch only).
    units_split: bool = True
    #: Time loops call BLAS from compiled code (False: a Python loop with ``np.matmul`` per step).
    blas_call: bool = True

    #: A step's recurrent product of at most this many multiply-adds (B·H·G·H) runs inside the
    #: compiled loop by hand (or the micro-kernel); larger ones by a GEMM per step.
    small_step_fmas: int = 1 << 15
    #: Calls whose GEMMs take fewer flops than this run BLAS single-threaded (0: BLAS's own threading).
    single_thread_flops: float = 0.0
    #: With OpenBLAS's threads sleeping at once (OPENBLAS_THREAD_TIMEOUT < 18), GEMMs below this
    #: many flops run single-threaded (waking the threads costs more than they save).
    wakeup_single_thread_flops: float = 20e6
    #: A float32 input projection of at least this many flops runs on two threads.
    projection_two_threads_flops: float = 20e6
    #: A time loop whose work T·B·G·H·(2H + loop_elementwise) reaches this runs on two threads.
    split_loop_work: float = 40e6
    #: The gate arithmetic per gate value, counted as this many flops in the loop work above.
    loop_elementwise: int = 40
    #: Each part of a two-thread loop keeps at least this many batch columns (16 on the micro-kernel).
    loop_split_min_columns: int = 32
    #: Weight-gradient products A Bᵀ with at most this many output values take the dot tiles ...
    dot_tiles_max_output: int = 1 << 17
    #: ... on two threads from this many flops (2·M·N·K), on one below (waking the second costs more).
    dot_tiles_two_threads_flops: float = 8e6
    #: Within bptt._threads.own_threads, bptt's second thread spins up to this long after each task
    #: for the next before it sleeps (0: it sleeps at once; woken from sleep it starts 60-70 µs
    #: later, spinning about 3 µs).
    worker_spin_seconds: float = 5e-4
    #: When an own_threads block ends, bptt's second thread spins up to this long more for the next
    #: block (a training step's backward after its forward) before it sleeps: waking it costs the
    #: caller 20-50 µs on the project's virtual machines (the futex wake of a sleeping CPU), twice
    #: per training step. Only after a block (not after tasks outside one), and yielding its core
    #: every 64 pauses; 0: it sleeps at once.
    worker_linger_seconds: float = 1e-3
    #: A feature-major view (a recurrent layer's output or dx) of at least this many values is
    #: copied to batch-major by the compiled transposer; smaller ones by NumPy (at 10,000 values
    #: 4.6 µs against 6.4, at 20,000 both 6 µs, at 64,000 36 against 12.5).
    batch_major_kernel_min_values: int = 1 << 14
    #: While bptt's second thread has run a task within this many seconds (a model with recurrent
    #: layers whose loops run on two threads), the layers' own NumPy products (Dense) run on one
    #: BLAS thread: OpenBLAS's threads, once woken by a product, spin for about 0.1 s (2^28 cycles)
    #: and take the core the second thread needs (an LSTM's training step beside a Dense layer,
    #: medium row: 15.7-20.0 ms, 10.4 held so). 0: the products keep BLAS's threads.
    second_thread_recent_seconds: float = 1.0
    #: Per-step arrays of at least this many bytes start on a cache line (64 bytes).
    align_min_bytes: int = 1 << 19
    #: Arrays of at least this many bytes used within one call come from a reused buffer.
    scratch_bytes: int = 32 << 20
    #: The micro-kernel on CPUs without AVX-512 (it reaches OpenBLAS's rate there, not more)
    #: everywhere it can run, as on AVX-512 CPUs.
    narrow_cpu_own_kernel: bool = False
    #: On CPUs without AVX-512, bptt's micro-kernel still does the per-step products (and splits
    #: loops by units as on AVX-512 CPUs) where one step's product, 2·B·G·H² flops, is at most
    #: this: there OpenBLAS's per-call costs weigh more than its rate (2-core AMD EPYC Zen 3:
    #: training steps of the grid's medium and long rows up to 1.23x faster, the RNN's medium row
    #: 2-13 % slower; with the tile on the wide and large rows too, those were up to 35 % slower;
    #: docs/performance.md, "The micro-kernel on CPUs without AVX-512"). 0: never.
    narrow_cpu_own_kernel_flops: float = 10e6
    #: A bidirectional layer's two directions run at the same time, each on one core (bptt's worker
    #: takes the reverse one, NumPy's BLAS on one thread meanwhile), rather than one after the other
    #: on two threads each: True always, False never, None where the fast backend runs, two threads
    #: are allowed, loops may use them (``loop_threads`` not 1), one direction's loop would run on
    #: two threads by its work (``split_loop_work``), and the CPU has no AVX-512. 2-core AMD EPYC
    #: Zen 3 (AVX2): training steps 1.11-1.45x faster from a loop work of 51 M, 0.87-0.94x at
    #: 34-35 M, 0.46-0.97x below. On AVX-512 CPUs, where the loops' two threads run bptt's tile split
    #: by units, the one measurement (Intel Xeon, older code) found 0.87-1.18x: off there until
    #: measured again (docs/performance.md, "Bidirectional layers: the two directions at once").
    parallel_directions: bool | None = None


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"the environment variable {name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def from_environment(environ=None) -> Settings:
    """Settings with the three environment variables of the module docstring applied."""
    environ = os.environ if environ is None else environ
    s = Settings()
    backend = environ.get("BPTT_BACKEND")
    if backend:
        s.backend = _choice("BPTT_BACKEND", backend, BACKENDS)
    threads = environ.get("BPTT_LOOP_THREADS")
    if threads:
        s.loop_threads = int(_choice("BPTT_LOOP_THREADS", threads, ("1", "2")))
    keep = environ.get("BPTT_KEEP_FREED_MEMORY")
    if keep:
        s.keep_freed_memory = _choice("BPTT_KEEP_FREED_MEMORY", keep, ("0", "1")) == "1"
    return s


#: The one settings object, read when bptt is imported.
settings = from_environment()

_FIELDS = {f.name for f in dataclasses.fields(Settings)}


@contextlib.contextmanager
def override(**changes):
    """Change attributes of :data:`settings` for the block, restoring them after it."""
    unknown = sorted(set(changes) - _FIELDS)
    if unknown:
        raise ValueError(f"override: unknown settings {unknown}; the settings are {', '.join(sorted(_FIELDS))}")
    if "backend" in changes and changes["backend"] is not None:
        _choice("backend", changes["backend"], BACKENDS)
    if "own_kernel" in changes:
        changes["own_kernel"] = OwnKernel(changes["own_kernel"])
    saved = {k: getattr(settings, k) for k in changes}
    for k, value in changes.items():
        setattr(settings, k, value)
    try:
        yield settings
    finally:
        for k, value in saved.items():
            setattr(settings, k, value)
