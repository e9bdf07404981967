"""TMVA options mean what TMVA means, all the way into training.

Each option of a booking string is checked where users see its effect: the network it builds,
the arguments handed to ``fit``, and the weights that training produces. The oracle for the
weights is a plain training loop written here (forward, loss gradient, backward, the update rule
written out by hand), never ``fit`` itself.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bptt.layers import GRU, LSTM, RNN, Dense, Flatten
from bptt.layers.dropout import Dropout
from bptt.model import Sequential
from bptt.optim import make_optimizer
from bptt.tmva import TMVAOptionError, parse_training_strategy
from bptt.tmva.network import fit_arguments, network_from_options

LAYOUT = "LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|6|TANH,LINEAR"
HEAD = "InputLayout=5|3:Layout=" + LAYOUT


def booking(strategy: str, extra: str = "") -> str:
    return f"{HEAD}:TrainingStrategy={strategy}" + (f":{extra}" if extra else "")


def task(n=48, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5, 3)).astype(dtype)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(dtype)
    return X, y


def validation(dtype=np.float64):
    return task(n=16, seed=1, dtype=dtype)


def params_copy(model):
    return {k: p.copy() for k, p in model.parameters().items()}


def batch_gradients(model, Xb, yb):
    """Gradients of the mean loss of one batch, from the network's own forward and backward."""
    out = model.forward(Xb, training=True)
    _, dout = model.loss.value_and_grad(out, yb.reshape(out.shape))
    model.backward(dout)
    return {k: g.copy() for k, g in model.gradients().items()}


def hand_trained(model, X, y, *, epochs, batch_size, update):
    """Epochs over X in order, in batches of batch_size; ``update(params, grads)`` changes params."""
    for _ in range(epochs):
        model.reset_states()
        for start in range(0, len(X), batch_size):
            grads = batch_gradients(model, X[start : start + batch_size], y[start : start + batch_size])
            update(model.parameters(), grads)
    return model


# The overrides below switch off only what no TMVA option controls here (standardisation, the
# shuffled batch order, the validation split drawn by fit), so that a hand-written loop can
# follow the same batches.
PLAIN = dict(standardize=False, shuffle=False, verbose=False)


def trained_from_options(text, X, y, **override):
    model, args = network_from_options(text, dtype=np.float64, seed=0)
    args.update(PLAIN, validation_data=validation(), **override)
    model.fit(X, y, **args)
    return model, args


# ─────────────────────────────────────────────────────────────── options → fit arguments


def test_fit_arguments_translate_every_strategy_key():
    s = parse_training_strategy(
        "LearningRate=0.05,Momentum=0.4,ConvergenceSteps=7,BatchSize=33,WeightDecay=0.01,"
        "Regularization=L2,MaxEpochs=11,Optimizer=SGD"
    )
    assert fit_arguments(s, 0.3) == {
        "epochs": 11, "batch_size": 33, "optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.4,
        "early_stopping": 7, "weight_decay": 0.02,  # TMVA's L2 penalty λΣw² has gradient 2λw
        "regularization": "L2", "validation_split": 0.3, "optimizer_options": None,  # SGD has none
    }
    l1 = fit_arguments(parse_training_strategy("WeightDecay=0.01,Regularization=L1"))
    assert (l1["weight_decay"], l1["regularization"]) == (0.01, "L1")  # λΣ|w| in both conventions
    none = fit_arguments(parse_training_strategy("WeightDecay=0.01,Regularization=None"))
    assert (none["weight_decay"], none["regularization"]) == (0.0, None)


def test_network_from_options_builds_what_the_layout_says():
    text = booking("DropConfig=0.0+0.5+0.25+0.0", "ErrorStrategy=SUMOFSQUARES:RandomSeed=77:ValidationSize=30%")
    model, args = network_from_options(text)
    assert [type(layer) for layer in model.layers] == [LSTM, Dropout, Flatten, Dropout, Dense, Dense]
    assert [layer.rate for layer in model.layers if isinstance(layer, Dropout)] == [0.5, 0.25]
    lstm = model.layers[0]
    assert (lstm.input_size, lstm.hidden_size, lstm.return_sequences, lstm.stateful) == (3, 4, True, False)
    assert model.layers[4].params["W"].shape == (20, 6) and model.layers[4].activation == "tanh"
    assert model.layers[5].params["W"].shape == (6, 1) and model.layers[5].activation == "identity"
    assert model.loss.name == "mse"
    assert (args["seed"], args["validation_split"]) == (77, 0.3)
    # RandomSeed seeds the weights: the same network as from_tmva with that seed
    same = Sequential.from_tmva(LAYOUT, "5|3", seed=77, dropout=[0.0, 0.5, 0.25, 0.0],
                                weight_initialization="XAVIER")  # TMVA's default WeightInitialization
    for k, p in same.parameters().items():
        np.testing.assert_array_equal(model.parameters()[k], p)
    other, _ = network_from_options(text.replace("RandomSeed=77", "RandomSeed=78"))
    assert any(not np.array_equal(p, other.parameters()[k]) for k, p in model.parameters().items())


@pytest.mark.parametrize(
    "strategy, loss", [("CROSSENTROPY", "bce"), ("SUMOFSQUARES", "mse"), ("MUTUALEXCLUSIVE", "softmax_ce")]
)
def test_error_strategy_chooses_the_loss(strategy, loss):
    model, _ = network_from_options(f"{HEAD}:ErrorStrategy={strategy}")
    assert model.loss.name == loss


@pytest.mark.parametrize("cell, cls", [("LSTM", LSTM), ("GRU", GRU), ("RNN", RNN)])
def test_remember_state_and_return_sequence_flags(cell, cls):
    model, _ = network_from_options(f"InputLayout=5|3:Layout={cell}|4|3|5|1|0,LINEAR")
    layer = model.layers[0]
    assert isinstance(layer, cls) and layer.stateful and not layer.return_sequences


def test_defaults_are_tmvas_when_the_strategy_is_missing():
    _, args = network_from_options(HEAD)
    assert (args["learning_rate"], args["batch_size"], args["epochs"], args["early_stopping"]) == (1e-5, 30, 2000, 100)
    assert (args["optimizer"], args["momentum"], args["weight_decay"]) == ("adam", 0.3, 0.0)
    # TMVA's RandomSeed=0 (its default) is a different seed every run (TRandom3(0)): one drawn per call
    _, again = network_from_options(HEAD)
    assert args["seed"] != again["seed"] and args["seed"] > 0 and again["seed"] > 0
    assert args["standardize"] is False  # TMVA's VarTransform default is None: inputs as they are


# ─────────────────────────────────────────── options → the weights training produces


def sgd_update(lr, l2=0.0, l1=0.0):
    """TMVA's SGD step with its regularisation: λΣw² (gradient 2λw) or λΣ|w| on weight matrices."""

    def update(params, grads):
        for k, p in params.items():
            g = grads[k]
            if p.ndim >= 2:
                g = g + 2.0 * l2 * p + l1 * np.sign(p)
            p -= lr * g

    return update


@pytest.mark.parametrize(
    "strategy, lr, batch, epochs, l2, l1",
    [
        ("LearningRate=0.05,Momentum=0.0,BatchSize=8,MaxEpochs=2,Optimizer=SGD", 0.05, 8, 2, 0.0, 0.0),
        ("LearningRate=0.2,Momentum=0.0,BatchSize=12,MaxEpochs=1,Optimizer=SGD", 0.2, 12, 1, 0.0, 0.0),
        ("LearningRate=0.1,Momentum=0.0,BatchSize=16,MaxEpochs=2,Optimizer=SGD,WeightDecay=0.3,Regularization=L2",
         0.1, 16, 2, 0.3, 0.0),
        ("LearningRate=0.1,Momentum=0.0,BatchSize=16,MaxEpochs=1,Optimizer=SGD,WeightDecay=0.05,Regularization=L1",
         0.1, 16, 1, 0.0, 0.05),
        ("LearningRate=0.1,Momentum=0.0,BatchSize=16,MaxEpochs=1,Optimizer=SGD,WeightDecay=0.3,Regularization=None",
         0.1, 16, 1, 0.0, 0.0),
    ],
)
def test_sgd_training_follows_learning_rate_batch_size_and_weight_decay(strategy, lr, batch, epochs, l2, l1):
    X, y = task()
    # the weights after the last epoch: TMVA keeps the epoch of least validation loss, which the
    # early-stopping test covers; here the update rule is under test
    trained, args = trained_from_options(booking(strategy), X, y, restore_best=False)
    assert len(trained.history.loss) == epochs
    twin, _ = network_from_options(booking(strategy), dtype=np.float64, seed=0)
    hand_trained(twin, X, y, epochs=epochs, batch_size=batch, update=sgd_update(lr, l2, l1))
    for k, p in twin.parameters().items():
        np.testing.assert_allclose(trained.parameters()[k], p, rtol=1e-12, atol=1e-14, err_msg=k)


def test_sgd_momentum_is_tmvas():
    """TMVA's momentum SGD: v ← μ v + g, w ← w − lr v (the first step is plain SGD)."""
    X, y = task()
    text = booking("LearningRate=0.05,Momentum=0.6,BatchSize=8,MaxEpochs=2,Optimizer=SGD")
    trained, _ = trained_from_options(text, X, y)
    twin, _ = network_from_options(text, dtype=np.float64, seed=0)
    velocity: dict = {}

    def update(params, grads):
        for k, p in params.items():
            velocity[k] = grads[k] if k not in velocity else 0.6 * velocity[k] + grads[k]
            p -= 0.05 * velocity[k]

    hand_trained(twin, X, y, epochs=2, batch_size=8, update=update)
    for k, p in twin.parameters().items():
        np.testing.assert_allclose(trained.parameters()[k], p, rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize(
    "name, hyper",
    [
        # TMVA's defaults of its optimizer keys (MethodDL: ADAM_beta1 0.9, ADAM_beta2 0.999,
        # ADAM_eps 1e-7, ADAGRAD_eps 1e-8, RMSPROP_rho 0.9, RMSPROP_eps 1e-7, ADADELTA_rho 0.95,
        # ADADELTA_eps 1e-8), not bptt's own defaults
        ("ADAM", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}),
        ("ADAGRAD", {"lr": 0.02, "eps": 1e-8}),
        ("RMSPROP", {"lr": 0.003, "momentum": 0.25, "alpha": 0.9, "eps": 1e-7}),  # TMVA's RMSprop takes Momentum
        ("ADADELTA", {"lr": 0.5, "rho": 0.95, "eps": 1e-8}),
    ],
)
def test_optimizer_key_chooses_the_optimizer_with_its_learning_rate(name, hyper):
    X, y = task()
    text = booking(f"LearningRate={hyper['lr']},Momentum=0.25,BatchSize=16,MaxEpochs=2,Optimizer={name}")
    trained, _ = trained_from_options(text, X, y)
    twin, _ = network_from_options(text, dtype=np.float64, seed=0)
    opt = make_optimizer(name.lower(), **hyper)
    hand_trained(twin, X, y, epochs=2, batch_size=16, update=opt.step)
    for k, p in twin.parameters().items():
        np.testing.assert_allclose(trained.parameters()[k], p, rtol=1e-12, atol=1e-14, err_msg=k)


def test_max_epochs_and_convergence_steps():
    X, y = task()
    model, _ = trained_from_options(booking("LearningRate=0.01,BatchSize=8,MaxEpochs=4,ConvergenceSteps=100,Optimizer=SGD"), X, y)
    assert len(model.history.loss) == 4 and not model.history.stopped_early
    # a learning rate far too large: the validation loss stops improving and training stops
    # ConvergenceSteps epochs after its best epoch
    model, _ = trained_from_options(booking("LearningRate=3.0,BatchSize=8,MaxEpochs=60,ConvergenceSteps=3,Optimizer=SGD"), X, y)
    h = model.history
    assert h.stopped_early and len(h.loss) < 60
    assert len(h.loss) == h.best_epoch + 3
    assert min(h.val_loss[h.best_epoch :]) >= h.val_loss[h.best_epoch - 1]


def test_drop_config_drops_during_training_only():
    X, y = task()
    text = booking("LearningRate=0.05,BatchSize=48,MaxEpochs=1,Optimizer=SGD,DropConfig=0.0+0.0+0.5+0.0")
    model, _ = network_from_options(text, dtype=np.float64)
    drop = [layer for layer in model.layers if isinstance(layer, Dropout)]
    assert len(drop) == 1 and drop[0].rate == 0.5
    # at inference the dropout layer is the identity: the same output as the network without it
    plain, _ = network_from_options(text.replace("DropConfig=0.0+0.0+0.5+0.0", "DropConfig=0.0"), dtype=np.float64)
    plain.set_parameters(dict(zip(plain.parameters(), model.parameters().values())))  # same order, other indices
    np.testing.assert_array_equal(model.forward(X, training=False), plain.forward(X, training=False))
    # in training it zeroes about half of the dense layer's inputs
    out_train = model.layers[0].forward(X, training=True)
    out_train = model.layers[1].forward(out_train, training=True)
    dropped = model.layers[2].forward(out_train, training=True)
    zero_share = float(np.mean(dropped == 0.0))
    assert 0.35 < zero_share < 0.65


# ───────────────────────────────────────────────────────────────────── the command line


def test_cli_train_with_a_booking_string_equals_python(tmp_path):
    from bptt.data.arrays import write_npz

    X, y = task(n=60, dtype=np.float32)
    data = write_npz(str(tmp_path / "d.npz"), X, y)
    text = booking(
        "LearningRate=0.02,Momentum=0.0,BatchSize=12,MaxEpochs=3,ConvergenceSteps=100,Optimizer=SGD,"
        "WeightDecay=0.05,Regularization=L2",
        "RandomSeed=5:ValidationSize=0.25",
    )
    out = tmp_path / "m.bptt"
    # bptt train, as TMVA, trains on the training part of a split; Block mode takes the first
    # nTrain events of each class in file order, so the training events can be written out here
    n_sig, n_bkg = int((y == 1).sum()), int((y == 0).sum())
    split = f"nTrain_Signal={n_sig - 7}:nTrain_Background={n_bkg - 5}:SplitMode=Block"
    run = subprocess.run([sys.executable, "-m", "bptt", "train", data, "--options", text, "--split", split,
                          "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f" on {len(y) - 12} events" in run.stdout and "trained 3 epochs" in run.stdout
    from_cli = Sequential.load(str(out))
    train = np.zeros(len(y), bool)
    train[np.flatnonzero(y == 1)[: n_sig - 7]] = True
    train[np.flatnonzero(y == 0)[: n_bkg - 5]] = True
    X, y = X[train], y[train]
    # TMVA's default NormMode=EqualNumEvents: each background training event weighs
    # (signal training events) / (background training events), each signal event 1
    w = np.where(y == 1, 1.0, (n_sig - 7) / (n_bkg - 5))
    # the same run in Python, with fit's arguments written out by hand from TMVA's meanings
    # (TMVA's defaults for what the string leaves out: WeightInitialization=XAVIER, VarTransform=None)
    model = Sequential.from_tmva(LAYOUT, "5|3", seed=5, weight_initialization="XAVIER")
    model.fit(X, y, epochs=3, batch_size=12, optimizer="sgd", learning_rate=0.02, momentum=0.0, early_stopping=100,
              weight_decay=0.1, regularization="L2", validation_split=0.25, seed=5, standardize=False, verbose=False,
              sample_weight=w)
    for k, p in model.parameters().items():
        np.testing.assert_array_equal(from_cli.parameters()[k], p, err_msg=k)
    # and the options really mattered: another learning rate trains other weights
    other = Sequential.from_tmva(LAYOUT, "5|3", seed=5, weight_initialization="XAVIER")
    other.fit(X, y, epochs=3, batch_size=12, optimizer="sgd", learning_rate=0.01, momentum=0.0, early_stopping=100,
              weight_decay=0.1, regularization="L2", validation_split=0.25, seed=5, standardize=False, verbose=False)
    assert not np.array_equal(other.parameters()["0.W"], from_cli.parameters()["0.W"])


def test_bad_strategy_in_the_booking_string_is_reported():
    with pytest.raises(TMVAOptionError, match=r"LearningRate must be a positive number"):
        network_from_options(booking("LearningRate=0"))
