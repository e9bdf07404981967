"""The bptt model file: one safetensors file whose metadata holds the JSON configuration.

A safetensors file is a JSON header (array names, dtypes, shapes, offsets, and a free-form
``__metadata__`` string map) followed by raw little-endian array data. Loading it parses JSON and
copies bytes: no code from the file is ever executed (unlike pickle). bptt stores

* ``__metadata__["bptt"]``: the JSON document (the model's :meth:`~bptt.model.Sequential.config`,
  and for checkpoints the training state);
* the arrays: parameters as ``param/<layer>.<name>``, and in checkpoints also ``best/…`` (the best
  weights so far) and ``optim/…`` (the optimizer's state).

Writes are atomic: a temporary file in the same directory, then a rename. This module reads and
writes configurations and arrays; it never builds a network (that is :func:`bptt.model.load_model`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from .._files import atomic_write

FORMAT_KEY = "bptt"


def write_file(path, document: dict, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` and the JSON ``document`` to ``path`` atomically; returns the path."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(a) for k, a in arrays.items()}, metadata={FORMAT_KEY: json.dumps(document)})
    return atomic_write(os.fspath(path), lambda f: f.write(data), mode="wb")


def read_file(path, fn: str = "read_file") -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by :func:`write_file`: ``(document, arrays)``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{fn}: no such file: {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        arrays = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        document = json.loads(header.get("__metadata__", {})[FORMAT_KEY])
    except (SafetensorError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{fn}: {path!r} is not a bptt model or checkpoint file ({type(exc).__name__}: {exc})") from None
    return document, arrays


def save_model(model, path) -> str:
    """Write ``model`` (its :meth:`~bptt.model.Sequential.config` and parameters) to ``path``."""
    arrays = {f"param/{k}": p for k, p in model.parameters().items()}
    return write_file(path, {"model": model.config()}, arrays)


def _config_and_parameters(document: dict, arrays: dict, path, fn: str) -> tuple[dict, dict[str, np.ndarray]]:
    if "model" not in document:
        raise ValueError(f"{fn}: {os.fspath(path)!r} holds no model configuration")
    return document["model"], {k[len("param/") :]: a for k, a in arrays.items() if k.startswith("param/")}


def read_model(path, fn: str = "read_model") -> tuple[dict, dict[str, np.ndarray]]:
    """``(configuration, parameters)`` of a file written by :func:`save_model` (or a checkpoint);
    :func:`bptt.model.load_model` builds the network from them."""
    document, arrays = read_file(path, fn)
    return _config_and_parameters(document, arrays, path, fn)


def save_checkpoint(path, model, state: dict, arrays: dict[str, np.ndarray]) -> str:
    """A training checkpoint: the model file plus the training ``state`` (JSON) and ``arrays``."""
    all_arrays = {f"param/{k}": p for k, p in model.parameters().items()}
    all_arrays.update(arrays)
    return write_file(path, {"model": model.config(), "training": state}, all_arrays)


def load_checkpoint(path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """``(configuration, state, arrays)`` from a checkpoint written by :func:`save_checkpoint`;
    ``arrays`` holds every array of the file: the parameters (``param/…``), ``best/…``, ``optim/…``."""
    fn = "load_checkpoint"
    document, arrays = read_file(path, fn)
    if "training" not in document:
        raise ValueError(f"{fn}: {os.fspath(path)!r} is a model file, not a training checkpoint")
    config, _ = _config_and_parameters(document, arrays, path, fn)
    return config, document["training"], arrays
