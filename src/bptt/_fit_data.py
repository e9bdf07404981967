"""The data of a :func:`bptt.train.fit`, checked and split: inputs, targets shaped as the network's
outputs, event weights and lengths, the training and the validation part (see fit's docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validation as v
from . import sequences
from .data.arrays import Standardizer, train_test_split


@dataclass(eq=False)
class _Data:
    """The checked data of a fit: each part's inputs, targets (the shape the user gave), event
    weights (None: unweighted) and lengths (None: every step real); the validation part is None
    without one. ``tail``: the network's output shape after the batch axis; ``per_step``: the
    outputs (and targets) have a time axis."""

    Xt: np.ndarray
    yt: np.ndarray
    wt: np.ndarray | None
    Lt: np.ndarray | None
    Xv: np.ndarray | None
    yv: np.ndarray | None
    wv: np.ndarray | None
    Lv: np.ndarray | None
    shuffle_seed: int
    tail: tuple

    @property
    def per_step(self) -> bool:
        return len(self.tail) == 2


def _output_tail(model, X: np.ndarray, L) -> tuple:
    """The network's output shape for inputs shaped as ``X``, after the batch axis (one sequence of
    zeros through the network; a stateful network's state is reset afterwards)."""
    probe = np.zeros((1,) + tuple(np.shape(X)[1:]), model.dtype)
    out = model.forward(probe, training=False, lengths=None if L is None else L[:1])
    model.reset_states()
    return tuple(out.shape[1:])


def _checked(fn: str, model, X, y, lengths):
    """``(X, y, lengths, tail)``: sequences checked (padded steps set to 0), targets checked
    against the network's outputs (:func:`bptt.sequences.targets`), ``(n, F)`` rows as they are."""
    X, L = sequences.inputs(fn, X, lengths)
    X = v.float_array(fn, "X", X, 3, "(n, T, F)") if np.ndim(X) == 3 else np.asarray(X)
    tail = _output_tail(model, X, L)
    return X, sequences.targets(fn, model.loss.name, y, len(X), tail, model.dtype, L), L, tail


def _strata(model, y: np.ndarray, tail: tuple):
    """The labels a validation split keeps in proportion: one class per sequence (classification,
    targets per sequence), else None (no stratification)."""
    if model.loss.name == "mse" or len(tail) == 2:
        return None
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return y.reshape(-1)
    return np.argmax(y, axis=1) if model.loss.name == "softmax_ce" else None


def split(model, X, y, validation_data, validation_split, seed, sample_weight, ignore_negative, lengths=None,
          validation_lengths=None) -> _Data:
    """The checked data, the validation part held out (stratified for classification with one
    class per sequence), the seed of the batch order, both drawn from ``seed``, and each part's
    event weights (None when unweighted) and lengths."""
    fn = "fit"
    X, y, L, tail = _checked(fn, model, X, y, lengths)
    split_seed, shuffle_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    w = v.sample_weight(fn, sample_weight, len(X))
    if w is not None:
        keep = (w > 0) if ignore_negative else (w != 0)
        if not keep.all():
            X, y, w, L = X[keep], y[keep], w[keep], None if L is None else L[keep]
    Xv = yv = wv = Lv = None
    if validation_lengths is not None and validation_data is None:
        raise ValueError(
            "fit: validation_lengths are the lengths of validation_data's sequences; got validation_lengths without "
            "validation_data (validation_split splits lengths with the rows by itself)"
        )
    if validation_data is not None:
        Xv, yv, wv, Lv = _validation_data(fn, model, validation_data, ignore_negative, validation_lengths)
    elif validation_split > 0:
        labels = _strata(model, y, tail)
        index = np.arange(len(X), dtype=np.float64).reshape(-1, 1, 1)  # the split of the events' indices
        it, iv, _, _ = train_test_split(index, np.zeros(len(X)) if labels is None else labels, validation_split,
                                        seed=split_seed, stratify=labels is not None)
        train, val = it.reshape(-1).astype(np.intp), iv.reshape(-1).astype(np.intp)
        Xv, yv, wv, Lv = (None if a is None else a[val] for a in (X, y, w, L))
        X, y, w, L = (None if a is None else a[train] for a in (X, y, w, L))
    wt, wv = _weights_in_use(fn, w, "training part"), _weights_in_use(fn, wv, "validation part")
    return _Data(X, y, wt, L, Xv, yv, wv, Lv, shuffle_seed, tail)


def _validation_data(fn, model, validation_data, ignore_negative, validation_lengths):
    """``(Xv, yv, wv, Lv)`` from ``validation_data``: ``(Xv, yv)`` or ``(Xv, yv, wv)``, with
    ``validation_lengths`` the lengths of Xv's sequences."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            f"{fn}: validation_data must be a tuple (Xv, yv) or (Xv, yv, sample_weight); got "
            f"{type(validation_data).__name__}" + (f" of {len(validation_data)} items" if isinstance(validation_data, (tuple, list)) else "")
        )
    Xv, yv, Lv, _ = _checked(fn, model, *validation_data[:2], validation_lengths)
    wv = v.sample_weight(f"{fn}: validation_data", validation_data[2], len(Xv)) if len(validation_data) == 3 else None
    if wv is not None and ignore_negative:
        keep = wv >= 0  # events of weight 0 add nothing to the validation loss: they stay
        Xv, yv, wv, Lv = Xv[keep], yv[keep], wv[keep], None if Lv is None else Lv[keep]
    return Xv, yv, wv, Lv


def _weights_in_use(fn, w, part):
    """The weights of a part of the data: None when there are none or all are equal (which trains
    exactly as no weights), refused when they do not sum to a positive number."""
    if w is None:
        return None
    if not w.sum() > 0:  # no events at all sum to 0 too
        raise ValueError(
            f"{fn}: the {part}'s sample_weight sums to {w.sum():g} over {len(w)} events; the weighted loss "
            f"Σ w·loss / Σ w needs a positive sum: check the weights (ignore_negative_weights=True leaves out "
            f"events with negative weights; weights of zero leave events out)"
        )
    return None if (w == w[0]).all() else w / w.mean()


def step_weights(w, L, X, per_step: bool):
    """Per-step targets: the event weights scaled to a mean of 1 per real step (each sequence's
    weight counts once per real step), so that a batch's loss ``Σ w ℓ / (its real steps)`` adds up
    over the batches to the weighted mean over the real steps. Other targets: ``w`` as it is."""
    if w is None or not per_step:
        return w
    steps = np.full(len(w), X.shape[1]) if L is None else L
    return w * (steps.sum() / np.dot(w, steps))


def fit_input_transform(model, data: _Data, standardize: bool) -> None:
    """A Standardizer (``standardize``) or the model's unfitted VarTransform fitted on the training
    part's real steps (padding is not data)."""
    Xt, Lt = data.Xt, data.Lt
    if standardize:
        real = Xt if Lt is None else Xt[sequences.step_mask(Lt, Xt.shape[1])]  # (N, F) real steps
        model.standardizer = Standardizer().fit(real)
    elif getattr(model.input_transform, "fitted", True) is False:  # TMVA's VarTransform, not yet fitted
        model.input_transform.fit(Xt, data.yt, lengths=Lt)


def prepare(model, Xa, ya, tail):
    """Inputs transformed in the model's dtype; targets shaped as the network's outputs (class
    indices for ``softmax_ce`` as they are)."""
    Xa = model.input_transform.transform(Xa) if model.input_transform is not None else Xa
    Xa = np.asarray(Xa, model.dtype)
    indices = model.loss.name == "softmax_ce" and ya.ndim == len(tail)  # (n,) or (n, T) class indices
    return Xa, ya if indices else ya.reshape((len(ya),) + tuple(tail))


def fingerprint_arrays(data: _Data) -> list:
    """The arrays a checkpoint's data fingerprint covers (the targets as float32, as written
    before per-step targets, so older checkpoints resume)."""
    arrays = [data.Xt, np.asarray(data.yt, np.float32)]
    if data.wt is not None:
        arrays.append(data.wt)
    if data.Lt is not None:
        arrays.append(data.Lt)
    return arrays
