"""Atomic file writes: a file is either completely replaced or left exactly as it was.

Every module of the package that writes a file goes through :func:`atomic_write` (for writers that
take an open file object) or :func:`atomic_path` (for writers that insist on opening the path
themselves, such as ``uproot.recreate``). Both write to a temporary file in the target's own
directory, flush it to disk, and only then ``os.replace`` it onto the target, which is atomic on
POSIX and Windows when source and target are on the same file system. If anything fails on the way,
the temporary file is removed and a pre-existing target is untouched.

Example::

    >>> import os, tempfile
    >>> from bptt._files import atomic_write
    >>> d = tempfile.mkdtemp()
    >>> target = os.path.join(d, "hello.txt")
    >>> atomic_write(target, lambda f: f.write("hello\\n"), mode="w") == target
    True
    >>> open(target).read()
    'hello\\n'
    >>> def broken(f):
    ...     f.write("half a fi")
    ...     raise RuntimeError("disk on fire")
    >>> atomic_write(target, broken, mode="w")
    Traceback (most recent call last):
    ...
    RuntimeError: disk on fire
    >>> open(target).read(), os.listdir(d)
    ('hello\\n', ['hello.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = ["atomic_write", "atomic_path"]


def _target_dir(fn: str, path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{fn}: cannot write {path!r}: the directory {directory!r} does not exist; create it first"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"{fn}: cannot write {path!r}: it is a directory; pass a file path")
    return directory


def _new_file_mode(path: str) -> int:
    """Permissions for the replacement: those of the existing target, else 0o666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (POSIX); silently skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[IO[Any]], Any], mode: str = "wb") -> str:
    """Write ``path`` atomically: ``write_fn(f)`` fills a temporary file that then replaces ``path``.

    Args:
        path: the file to create or replace. Its directory must exist.
        write_fn: called once with the open temporary file; its return value is ignored.
        mode: ``"wb"`` (default) or ``"w"`` (text, UTF-8).

    Returns:
        ``path`` as a string.

    On any exception (including KeyboardInterrupt) the temporary file is deleted, the exception
    propagates, and an existing ``path`` keeps its old content.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w'; got {mode!r}")
    path = os.fspath(path)
    directory = _target_dir("atomic_write", path)
    file_mode = _new_file_mode(path)
    kwargs = {"encoding": "utf-8"} if mode == "w" else {}
    tmp = tempfile.NamedTemporaryFile(
        mode=mode, delete=False, dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp", **kwargs
    )
    try:
        with tmp as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp.name, file_mode)
        os.replace(tmp.name, path)
    except BaseException:
        _remove_quietly(tmp.name)
        raise
    _fsync_dir(directory)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Context manager yielding a temporary path to write; on success it atomically replaces ``path``.

    For writers that open the file themselves (``uproot.recreate``)::

        with atomic_path("out.root", suffix=".root") as tmp:
            with uproot.recreate(tmp) as f:
                ...

    The temporary file lives in the target's directory. If the body raises, it is deleted and an
    existing ``path`` is untouched. ``suffix`` lets writers that look at the extension see the right
    one.
    """
    path = os.fspath(path)
    directory = _target_dir("atomic_path", path)
    file_mode = _new_file_mode(path)
    with tempfile.NamedTemporaryFile(
        delete=False, dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix
    ) as tmp:
        name = tmp.name
    try:
        yield name
        with open(name, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(name, file_mode)
        os.replace(name, path)
    except BaseException:
        _remove_quietly(name)
        raise
    _fsync_dir(directory)
