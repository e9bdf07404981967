"""The training loop: mini-batches, validation, early stopping, checkpoints that resume exactly.

Example::

    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5, 3)).astype(np.float32)
    >>> y = (X[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    >>> model = Sequential.from_tmva("GRU|4|3|5|0|0,LINEAR", "5|3", seed=0)
    >>> history = model.fit(X, y, epochs=3, batch_size=20, learning_rate=1e-2, verbose=False)
    >>> len(history.loss), history.loss[-1] < history.loss[0]
    (3, True)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import _validation as v
from ._threads import single_threaded_if
from ._fit_data import _output_tail, fingerprint_arrays, fit_input_transform, prepare, split, step_weights
from ._validation import NonFiniteError
from .data.arrays import iterate_batches
from .optim import Optimizer, make_optimizer
from .regularization import REGULARIZATIONS, clip_grad_norm, penalty_and_grad
from .sequences import loss_and_grad, units

__all__ = ["History", "fit"]

#: Below this many flops per training batch (about 6 per parameter, sample and step), fit runs
#: NumPy's BLAS on one thread (docs/performance.md, "fit's BLAS threads").
FIT_SINGLE_THREAD_FLOPS = 60_000_000

#: The :class:`bptt.scale.mpi.DataParallel` of an MPI data-parallel run, set by
#: bptt.scale.mpi.data_parallel (each rank computes its share of every batch); None in one process.
_data_parallel = None


@dataclass
class History:
    """Per-epoch record of a :func:`fit`."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_loss: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


def _optimizer(optimizer, learning_rate, momentum, options=None) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if options:
            raise ValueError(f"fit: optimizer_options {options!r} are for an optimizer given by name; got an "
                             f"Optimizer instance {optimizer!r}: build it with those hyperparameters instead")
        return optimizer
    name = str(optimizer).lower()
    hyper = {"lr": learning_rate}
    if name in ("sgd", "rmsprop") and momentum:
        hyper["momentum"] = momentum
    clash = sorted({"lr", "momentum"} & set(options or {}))
    if clash:
        raise ValueError(f"fit: optimizer_options must not hold {', '.join(clash)}; got {options!r}: use fit's "
                         f"learning_rate and momentum")
    return make_optimizer(name, **hyper, **(options or {}))


def _fingerprint(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _batched_loss(model, X, Y, batch_size, W=None, L=None) -> float:
    """The loss on ``(X, Y)`` in batches, without training: the mean, or with event weights ``W``
    the weighted mean ``Σ w ℓ / Σ w``; per-step targets: over the real steps (``L``: the lengths,
    None: every step real; :mod:`bptt.sequences`). Stateful layers start from zeros and carry their
    state from batch to batch, as in training; the state they held before is put back afterwards."""
    held = [layer.get_state() for layer in model.layers]
    model.reset_states()
    total, count, w_total = 0.0, 0, None
    for i in range(0, len(X), batch_size):
        Lb = None if L is None else L[i : i + batch_size]
        out = model.forward(X[i : i + batch_size], training=False, lengths=Lb)
        if W is None:
            n = units(out.shape, Lb)
            total += loss_and_grad(model.loss, out, Y[i : i + batch_size], Lb)[0] * n
            count += n
        else:
            if w_total is None:  # each sequence's weight counts once per real step of a per-step output
                w_total = W.sum() if out.ndim != 3 else np.dot(W, np.full(len(W), X.shape[1]) if L is None else L)
            total += loss_and_grad(model.loss, out, Y[i : i + batch_size], Lb, W[i : i + batch_size],
                                   weight_total=w_total)[0]
    for layer, state in zip(model.layers, held):
        layer.set_state(state)
    return total / count if W is None else total


def fit(
    model,
    X,
    y,
    *,
    lengths=None,
    epochs: int = 20,
    batch_size: int = 100,
    optimizer="adam",
    learning_rate: float = 1e-3,
    momentum: float = 0.0,
    optimizer_options: dict | None = None,
    validation_split: float = 0.2,
    validation_data=None,
    validation_lengths=None,
    early_stopping: int | None = 5,
    min_delta: float = 0.0,
    restore_best: bool = True,
    weight_decay: float = 0.0,
    regularization: str | None = "L2",
    clip_norm: float | None = None,
    standardize: bool = True,
    shuffle: bool | None = None,
    drop_last: bool = False,
    seed: int = 0,
    verbose: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike | None = None,
    sample_weight=None,
    ignore_negative_weights: bool = False,
    tbptt=None,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batches; returns (and stores as ``model.history``) a History.

    Args:
        X: ``(n, T, F)`` sequences (or ``(n, F)`` for dense-only networks).
        y: the targets, shaped as the network's outputs: ``(n,)`` (0/1 for ``bce``, class indices
            for ``softmax_ce``, values for ``mse``) or ``(n, K)`` (K values, or class probabilities)
            for a network with one output per sequence; per-step targets ``(n, T)`` or ``(n, T, K)``
            for a network whose output keeps the time axis, ``(n, T, K)`` (a recurrent layer with
            ``return_sequences=True`` then Dense): the loss is then the mean over the real steps,
            each weighted by its sequence's event weight (:mod:`bptt.sequences`). A wrong shape is
            refused with the shapes this network takes.
        lengths: ``(n,)`` integers, ``1 <= lengths[b] <= T``: sequence b's steps ``t >= lengths[b]``
            are padding (None: every step is real). They go with their rows through the weights,
            the validation split, the batch order and every forward pass; the input transformation
            is fitted on the real steps only; padded steps' inputs and targets are never read (any
            values, NaN included). Stateful networks carry the states after each sequence's last
            real step.
        epochs, batch_size: TMVA's MaxEpochs and BatchSize.
        optimizer: a name (``adam``, ``sgd``, ``adagrad``, ``rmsprop``, ``adadelta``) built with
            ``learning_rate`` (and ``momentum`` for sgd/rmsprop), or an Optimizer instance.
        optimizer_options: the named optimizer's other hyperparameters, e.g. ``{"beta1": 0.9,
            "eps": 1e-7}`` for adam (:mod:`bptt.optim`; TMVA's ADAM_beta1, ADAM_eps ...); kept in
            checkpoints with the optimizer's configuration.
        validation_split: fraction held out (stratified by class for one class per sequence,
            from ``seed``) to monitor; ignored when ``validation_data=(Xv, yv)`` or ``(Xv, yv, wv)``
            (with event weights) is given; 0 monitors the training loss.
        validation_lengths: the lengths of ``validation_data``'s sequences (None: every step real).
        early_stopping: stop after this many epochs without improvement of the monitored loss by
            more than ``min_delta`` (TMVA's ConvergenceSteps); None trains all epochs.
            ``restore_best`` puts back the best epoch's weights at the end.
        weight_decay, regularization: penalty strength and kind (``"L2"``, ``"L1"`` or None) on the
            weight matrices (not biases), TMVA's WeightDecay and Regularization.
        clip_norm: clip the global gradient norm to this value (None: no clipping).
        standardize: fit a per-feature Standardizer on the training part (its real steps), stored
            with the model.
        shuffle, drop_last: batch order (a new random order every epoch, or the data's order) and
            the last partial batch. ``shuffle=None`` (the default) shuffles, except for networks
            with stateful layers (TMVA ``rememberState``, Keras ``stateful=True``): their batches
            keep the data's order (said in one line when ``verbose``), because row k of a batch
            continues row k of the batch before; ``shuffle=True`` is refused for them. Their state
            starts from zeros at every epoch and at every validation pass (which carries it from
            batch to batch and leaves the training's state alone); a last partial batch continues
            its rows' states. After fit their state is reset. (TMVA shuffles the events and keeps
            the state across batches and epochs, which joins unrelated events.)
        seed: the validation split, the batch order: the same seed gives the same run.
        verbose: a progress bar per epoch and a summary line per epoch (on stderr).
        checkpoint: path of a checkpoint file written atomically every ``checkpoint_every`` epochs
            and when training stops (also on Ctrl-C): the model, optimizer state, random states,
            history and best weights.
        resume: a checkpoint to continue from; the result is the same as an uninterrupted run.
        sample_weight: event weights ``(n,)`` (TMVA's per-event weights; None: all 1). The loss
            minimised is the weighted mean ``Σ w ℓ / Σ w``: each batch's loss is ``Σ_batch w ℓ``
            over its share ``batch size · mean(w)`` of the training part's total weight, as TMVA
            averages ``w ℓ`` over a batch with weights normalised to a mean of 1, so the batches
            add up to the weighted mean. The validation part (from ``validation_split``) keeps its
            events' weights and its loss is weighted the same way. Events of weight 0 are left out of
            training (as if absent); negative weights count with their sign; the training part's weights
            must sum to a positive number. Equal weights train exactly as no weights.
        ignore_negative_weights: leave the events with negative weights out of fit (training
            and validation parts), TMVA's ``IgnoreNegWeightsInTraining`` ("events with negative
            weights are ignored in the training, but are included for testing and performance
            evaluation": :meth:`bptt.model.Sequential.evaluate` keeps them).
        tbptt: truncated backpropagation through time, ``(k1, k2)`` with ``1 <= k1 <= k2`` (or one
            integer k for ``(k, k)``): each batch runs forward k1 steps between updates, and each
            update backpropagates its k1 steps' losses through at most k2 steps, the states carried
            from segment to segment (:mod:`bptt.tbptt` gives the exact semantics). Each update
            applies the penalty, clipping and the optimizer step; the batch's reported loss is the
            sum of its updates' losses (plus the penalty, once). None (the default): full BPTT,
            one update per batch; ``(T, T)`` gives the same numbers.
    """
    _check_options(
        epochs=epochs, batch_size=batch_size, early_stopping=early_stopping, clip_norm=clip_norm,
        validation_split=validation_split, checkpoint_every=checkpoint_every, min_delta=min_delta,
        regularization=regularization, weight_decay=weight_decay, ignore_negative_weights=ignore_negative_weights,
    )
    shuffle = _shuffle(model, shuffle, verbose)
    sync = _data_parallel
    if tbptt is not None:
        from .tbptt import check_tbptt

        tbptt = check_tbptt(model, tbptt)
        if sync is not None:
            raise ValueError("fit: MPI data-parallel training (bptt.scale.mpi) takes no tbptt yet (its ranks sum "
                             "one gradient per batch): train in one process, or pass tbptt=None")
    if sync is not None:  # MPI: rank 0 reports and writes checkpoints
        verbose, checkpoint = sync.prepare(model, verbose, checkpoint)
    data = split(model, X, y, validation_data, validation_split, seed, sample_weight, ignore_negative_weights,
                 lengths, validation_lengths)
    if sync is not None and (data.per_step or data.Lt is not None or data.Lv is not None):
        raise ValueError(
            "fit: MPI data-parallel training (bptt.scale.mpi) takes neither lengths nor per-step targets yet (its "
            "ranks split batches by events and average per event): train in one process"
        )
    opt = _optimizer(optimizer, learning_rate, momentum, optimizer_options)
    run = _Run(model, opt, np.random.default_rng(data.shuffle_seed), checkpoint, options={
        "epochs": int(epochs), "batch_size": int(batch_size), "optimizer": opt.config(), "seed": seed,
        "validation_split": validation_split, "weight_decay": weight_decay, "regularization": regularization,
        "clip_norm": clip_norm, "standardize": standardize, "shuffle": shuffle, "drop_last": drop_last,
        "early_stopping": early_stopping, "ignore_negative_weights": bool(ignore_negative_weights),
        "data": _fingerprint(*fingerprint_arrays(data)), "tbptt": None if tbptt is None else list(tbptt),
    })
    run.sync = sync
    if resume is not None:
        _resume(run, resume, epochs)
    else:
        fit_input_transform(model, data, standardize)
    Xt, Yt = prepare(model, data.Xt, data.yt, data.tail)
    Lt, Xv, Yv, Lv = data.Lt, None, None, data.Lv
    if data.Xv is not None:
        Xv, Yv = prepare(model, data.Xv, data.yv, _output_tail(model, data.Xv, Lv))
    wt, wv = step_weights(data.wt, Lt, Xt, data.per_step), data.wv
    tqdm = None
    if verbose:
        from tqdm.auto import tqdm

    with _threads_for(model, Xt, batch_size):
        try:
            for epoch in range(run.epoch + 1, epochs + 1):
                t0 = time.perf_counter()
                train_loss, seen = _train_epoch(
                    run, Xt, Yt, epoch, epochs, batch_size, shuffle, drop_last, weight_decay, regularization,
                    clip_norm, tqdm, wt, Lt, tbptt, data.per_step,
                )
                if Xv is None:
                    val_loss = float("nan")
                elif sync is None:
                    val_loss = _batched_loss(model, Xv, Yv, batch_size, wv, Lv)
                else:  # MPI: summed over the ranks
                    val_loss = sync.validation_loss(model, Xv, Yv, batch_size, wv)
                if sync is not None:
                    sync.end_epoch(model, epoch)  # the ranks' weights compared
                improved, stop = _record(
                    run, epoch, train_loss, val_loss, Xv is not None, time.perf_counter() - t0, min_delta, early_stopping
                )
                if verbose:
                    _report_epoch(run.history, epoch, epochs, seen, Xv is not None, improved)
                if epoch % checkpoint_every == 0 or stop or epoch == epochs:
                    _checkpoint(run)
                if stop:
                    if verbose:
                        print(f"early stopping: no improvement for {early_stopping} epochs; "
                              f"best epoch {run.history.best_epoch}", file=sys.stderr)
                    break
        except KeyboardInterrupt:
            if checkpoint is not None and verbose:
                print(f"\ninterrupted; the last completed epoch is in {os.fspath(checkpoint)!r}: continue with resume=", file=sys.stderr)
            raise
    if restore_best and run.best_params is not None:
        model.set_parameters(run.best_params)
    model.history = run.history
    return run.history


# ── the steps of fit, in the order it takes them


def _check_options(*, epochs, batch_size, early_stopping, clip_norm, validation_split, checkpoint_every,
                   min_delta, regularization, weight_decay, ignore_negative_weights) -> None:
    """Every option checked before any work: a ValueError naming the option and the value."""
    fn = "fit"
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"{fn}: epochs must be a positive integer; got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be a positive integer; got {batch_size!r}")
    if early_stopping is not None and (not isinstance(early_stopping, (int, np.integer)) or early_stopping < 1):
        raise ValueError(f"{fn}: early_stopping must be a positive integer (epochs) or None; got {early_stopping!r}")
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
        raise ValueError(f"{fn}: clip_norm must be a positive number or None; got {clip_norm!r}")
    if not (isinstance(validation_split, (int, float)) and 0 <= validation_split < 1):
        raise ValueError(f"{fn}: validation_split must be in [0, 1); got {validation_split!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
        raise ValueError(f"{fn}: checkpoint_every must be a positive integer (epochs); got {checkpoint_every!r}")
    if not (isinstance(min_delta, (int, float, np.integer, np.floating)) and math.isfinite(min_delta) and min_delta >= 0):
        raise ValueError(f"{fn}: min_delta must be a finite number >= 0 (the improvement that counts); got {min_delta!r}")
    if (regularization.lower() if isinstance(regularization, str) else regularization) not in REGULARIZATIONS:
        raise ValueError(f"{fn}: regularization must be one of None, 'L1', 'L2'; got {regularization!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float, np.integer, np.floating)) or not (
        math.isfinite(weight_decay) and weight_decay >= 0
    ):
        raise ValueError(f"{fn}: weight_decay must be a finite number >= 0; got {weight_decay!r}")
    if not isinstance(ignore_negative_weights, (bool, np.bool_)):
        raise ValueError(f"{fn}: ignore_negative_weights must be True or False; got {ignore_negative_weights!r}")


def _shuffle(model, shuffle, verbose) -> bool:
    """The batch order: ``shuffle``, or by default shuffled unless the network has stateful
    layers, whose batches keep the data's order (said in one line when ``verbose``)."""
    fn = "fit"
    if shuffle is not None and not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"{fn}: shuffle must be True, False or None (shuffle unless the network is stateful); got {shuffle!r}")
    stateful = [type(layer).__name__ for layer in model.layers if getattr(layer, "stateful", False)]
    if stateful and shuffle:
        raise ValueError(
            f"{fn}: shuffle must be False (or None) for a network with stateful layers ({', '.join(stateful)}: "
            f"row k of a batch continues row k of the batch before); got shuffle=True"
        )
    if stateful and shuffle is None and verbose:
        print(f"fit: stateful layers ({', '.join(stateful)}; TMVA rememberState): batches in the data's order, "
              f"each continuing the state of the one before; the state starts from zeros at every epoch", file=sys.stderr)
    return not stateful if shuffle is None else bool(shuffle)


@dataclass(eq=False)
class _Run:
    """What a training run carries from epoch to epoch, and what a checkpoint holds."""

    model: Any
    opt: Optimizer
    rng: np.random.Generator  # the batch order
    checkpoint: Any
    options: dict
    history: History = field(default_factory=History)
    best_params: dict | None = None
    wait: int = 0  # epochs without improvement
    epoch: int = 0  # the last completed epoch
    sync: Any = None  # bptt.scale.mpi.DataParallel, or None


def _resume(run: _Run, resume, epochs: int) -> None:
    """Put back the state of an interrupted run from its checkpoint; refuse a different network
    or changed options that would make the result differ from an uninterrupted run."""
    from .io.model_file import load_checkpoint

    fn, model = "fit", run.model
    config, state, arrays = load_checkpoint(resume)
    if config["layers"] != json.loads(json.dumps(model.config()["layers"])):
        raise ValueError(f"{fn}: the checkpoint {os.fspath(resume)!r} holds a different network; build the same layers")
    for key in ("batch_size", "seed", "data", "optimizer", "validation_split", "shuffle", "ignore_negative_weights",
                "tbptt"):
        saved = state["options"].get(key, None if key == "tbptt" else False)  # older checkpoints: the defaults
        if saved != run.options[key]:
            raise ValueError(
                f"{fn}: resume needs the same {key} as the interrupted run: the checkpoint has "
                f"{saved!r}, this call {run.options[key]!r}"
            )
    model.set_parameters({k[len("param/") :]: a for k, a in arrays.items() if k.startswith("param/")})
    from .transforms import input_transform_from_config  # a Standardizer or TMVA's VarTransform

    model.input_transform = input_transform_from_config(config)
    run.opt.load_state_dict({k[len("optim/") :]: a for k, a in arrays.items() if k.startswith("optim/")})
    run.rng.bit_generator.state = state["shuffle_rng"]
    for layer, layer_state in zip(model.layers, state["layer_rngs"]):
        if layer_state is not None:
            layer.set_rng_state(layer_state)
    run.history = History.from_dict(state["history"])
    best = {k[len("best/") :]: a for k, a in arrays.items() if k.startswith("best/")}
    run.best_params = best or None
    run.wait, run.epoch = state["wait"], state["epoch"]
    if run.history.stopped_early:
        run.epoch = epochs  # that run had finished


def _threads_for(model, Xt, batch_size: int):
    """One BLAS thread for small networks: a training step costs about 6 flops per parameter per
    sample and time step; below FIT_SINGLE_THREAD_FLOPS a batch's many small GEMMs are faster so."""
    steps = Xt.shape[1] if Xt.ndim == 3 else 1
    n_params = sum(p.size for p in model.parameters().values())
    return single_threaded_if(6 * batch_size * steps * n_params < FIT_SINGLE_THREAD_FLOPS)


def _train_epoch(run: _Run, Xt, Yt, epoch, epochs, batch_size, shuffle, drop_last, weight_decay, regularization,
                 clip_norm, tqdm, Wt=None, Lt=None, tbptt=None, per_step=False) -> tuple[float, int]:
    """One pass over the training part in mini-batches: ``(mean training loss, samples seen)``.
    ``Wt``: event weights normalised to a mean of 1 (per real step for per-step targets; None:
    unweighted); ``Lt``: the lengths (None: every step real); ``tbptt``: ``(k1, k2)`` or None.
    The epoch's loss is the mean over the batches' terms (sequences, or real steps for per-step
    targets)."""
    model, opt = run.model, run.opt
    model.reset_states()
    batches = list(iterate_batches(len(Xt), batch_size, run.rng if shuffle else None, drop_last))
    bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, file=sys.stderr) if tqdm else None
    total, seen, terms = 0.0, 0, 0
    if tbptt is not None:
        from .tbptt import run_batch
    for k, idx in enumerate(batches):
        where = f"at epoch {epoch}, batch {k + 1}"
        Wb, Lb = None if Wt is None else Wt[idx], None if Lt is None else Lt[idx]
        try:
            if tbptt is not None:  # several updates per batch, each applied by _update
                n_terms = (int(Lb.sum()) if Lb is not None else len(idx) * Xt.shape[1]) if per_step else len(idx)
                penalty = []

                def update(window_loss):
                    penalty[:] = [_update(run, window_loss, weight_decay, regularization, clip_norm, where)]

                loss = run_batch(model, Xt[idx], Yt[idx], Wb, Lb, k1=tbptt[0], k2=tbptt[1], weight_total=n_terms,
                                 update=update)
                loss += penalty[0] if penalty else 0.0
            else:
                if run.sync is not None:  # MPI: this rank's share, the gradients summed over the ranks
                    loss, n_terms = run.sync.batch(model, Xt, Yt, Wt, idx, batch_size), len(idx)
                else:
                    loss, n_terms = _batch_step(model, Xt[idx], Yt[idx], Wb, Lb)
                loss += _update(run, loss, weight_decay, regularization, clip_norm, where)
        except NonFiniteError as exc:  # the data were checked: this is the network diverging
            raise FloatingPointError(
                f"fit: NaN or Inf inside the network {where}: training diverged; "
                f"lower the learning rate (now {getattr(opt, 'lr', '?')}) or set clip_norm ({exc})"
            ) from exc
        total += loss * n_terms
        terms += n_terms
        seen += len(idx)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total / terms:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    model.reset_states()
    return total / terms, seen


def _update(run: _Run, loss: float, weight_decay, regularization, clip_norm, where: str) -> float:
    """Apply the gradients the last backward left in the model: the penalty's gradient added, the
    finiteness checked, the global norm clipped, the optimizer's step. Returns the penalty's value."""
    params, grads = run.model.parameters(), run.model.gradients()
    penalty = penalty_and_grad(params, grads, regularization, weight_decay) if weight_decay else 0.0
    loss += penalty
    grad_norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
        raise FloatingPointError(
            f"fit: {what} {where}: training diverged; lower the learning rate (now "
            f"{getattr(run.opt, 'lr', '?')}) or set clip_norm"
        )
    if clip_norm is not None and grad_norm > clip_norm:
        clip_grad_norm(grads, clip_norm)
    run.opt.step(params, grads)
    return penalty


def _batch_step(model, Xb, Yb, Wb=None, Lb=None) -> tuple[float, int]:
    """Forward, loss and backward of one training batch, leaving the gradients in the layers:
    ``(the batch's loss, the number of terms it averages)``. The loss is the mean over the batch's
    sequences, or over its real steps for per-step targets (:func:`bptt.sequences.loss_and_grad`);
    with event weights ``Wb`` (normalised to a mean of 1) ``Σ w ℓ / (that number)``."""
    out = model.forward(Xb, training=True, lengths=Lb)
    n_terms = units(out.shape, Lb)
    loss, dout = loss_and_grad(model.loss, out, Yb, Lb, Wb, weight_total=None if Wb is None else n_terms)
    model.backward(dout)
    return loss, n_terms


def _record(run: _Run, epoch, train_loss, val_loss, validated, seconds, min_delta, early_stopping) -> tuple[bool, bool]:
    """The epoch into the history; the best weights kept when the monitored loss (validation, else
    training) improved by more than ``min_delta``: ``(improved, stop)``."""
    history = run.history
    monitored = val_loss if validated else train_loss
    history.epoch.append(epoch)
    history.loss.append(float(train_loss))
    history.val_loss.append(float(val_loss))
    history.seconds.append(seconds)
    improved = history.best_loss is None or monitored < history.best_loss - min_delta
    if improved:
        history.best_loss, history.best_epoch, run.wait = float(monitored), epoch, 0
        run.best_params = {k: p.copy() for k, p in run.model.parameters().items()}
    else:
        run.wait += 1
    stop = early_stopping is not None and run.wait >= early_stopping
    history.stopped_early = stop
    run.epoch = epoch
    return improved, stop


def _report_epoch(history: History, epoch, epochs, seen, validated, improved) -> None:
    """The epoch's summary line on stderr."""
    rate = seen / history.seconds[-1]
    val = f"  val_loss {history.val_loss[-1]:.4f}" if validated else ""
    print(
        f"epoch {epoch}/{epochs}  loss {history.loss[-1]:.4f}{val}  {history.seconds[-1]:.1f} s  "
        f"{rate:,.0f} samples/s{'  *' if improved else ''}",
        file=sys.stderr,
    )


def _checkpoint(run: _Run) -> None:
    """The run's state after its last completed epoch into the checkpoint file (atomically), if
    there is one."""
    if run.checkpoint is None:
        return
    from .io.model_file import save_checkpoint

    arrays = {f"optim/{k}": np.asarray(a) for k, a in run.opt.state_dict().items()}
    if run.best_params is not None:
        arrays.update({f"best/{k}": a for k, a in run.best_params.items()})
    state = {
        "epoch": run.epoch, "wait": run.wait, "history": run.history.to_dict(), "options": run.options,
        "shuffle_rng": run.rng.bit_generator.state,
        "layer_rngs": [layer.get_rng_state() if hasattr(layer, "get_rng_state") else None for layer in run.model.layers],
    }
    save_checkpoint(run.checkpoint, run.model, state, arrays)
