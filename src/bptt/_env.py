"""bptt's environment variables, read fast.

The fast path decides how to run a call from several ``BPTT_*`` variables, read anew on every call
(so that a change takes effect at once, as the tests rely on). ``os.environ.get`` of a variable
that is not set costs 0.7-1.4 µs here, as it raises and catches a ``KeyError`` inside; a small row's
call read seven of them. :func:`env` looks the name up in ``os.environ``'s own mapping (0.2 µs),
which every change through ``os.environ`` updates, and falls back to ``os.environ.get`` where that
mapping is not there.
"""

from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=None)
def _key(name: str):
    return os.environ.encodekey(name)


def env(name: str, default: str | None = None) -> str | None:
    """``os.environ.get(name, default)``."""
    environ = os.environ
    data = getattr(environ, "_data", None)
    if data is None or not hasattr(environ, "encodekey"):  # os.environ replaced by a plain mapping
        return environ.get(name, default)
    value = data.get(_key(name))
    return default if value is None else environ.decodevalue(value)
