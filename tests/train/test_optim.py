"""Optimizers against ``torch.optim``, state save/resume, configs; regularisation and clipping.

Each optimizer is run for 10 steps on three parameters (two weight matrices and a bias) with the
same fixed random gradient sequence as the ``torch.optim`` class with the same hyperparameters;
in float64 the parameters agree to 1e-12 relative after every step.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bptt.gradcheck import gradcheck
from bptt.optim import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, Optimizer, RMSprop, make_optimizer
from bptt.regularization import clip_grad_norm, penalty_and_grad

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py

SHAPES = {"0.W": (4, 6), "0.U": (3, 6), "0.b": (6,)}
STEPS = 10

# (our name, our hyperparameters, torch class, torch keyword arguments)
CASES = [
    ("sgd", {}, torch.optim.SGD, {"lr": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("adam", {}, torch.optim.Adam, {}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adagrad", {}, torch.optim.Adagrad, {}),
    ("adagrad", {"lr": 0.1, "eps": 1e-8, "initial_accumulator_value": 0.1}, torch.optim.Adagrad,
     {"lr": 0.1, "eps": 1e-8, "initial_accumulator_value": 0.1}),
    ("rmsprop", {}, torch.optim.RMSprop, {}),
    ("rmsprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.9}, torch.optim.RMSprop, {"lr": 0.005, "alpha": 0.9, "momentum": 0.9}),
    ("rmsprop", {"centered": True}, torch.optim.RMSprop, {"centered": True}),
    ("rmsprop", {"lr": 0.003, "eps": 1e-6, "momentum": 0.5, "centered": True}, torch.optim.RMSprop,
     {"lr": 0.003, "eps": 1e-6, "momentum": 0.5, "centered": True}),
    ("adadelta", {}, torch.optim.Adadelta, {}),
    ("adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5}, torch.optim.Adadelta, {"lr": 0.5, "rho": 0.95, "eps": 1e-5}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in h.items()) or 'defaults'}" for n, h, _, _ in CASES]


def initial_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


def gradient_sequence(n=STEPS, dtype=np.float64, seed=1):
    """A fixed sequence of gradients whose scale changes from step to step (as in training)."""
    rng = np.random.default_rng(seed)
    return [{k: (rng.normal(size=s) * rng.uniform(0.1, 3.0)).astype(dtype) for k, s in SHAPES.items()} for _ in range(n)]


def run_torch(cls, kwargs, params, grads_seq):
    """Parameters after each step of the torch optimizer (fed the same gradients)."""
    tensors = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    opt = cls(list(tensors.values()), **kwargs)
    history = []
    for grads in grads_seq:
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        opt.step()
        history.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
    return history


def assert_close(actual, expected, rtol):
    """Elementwise ``|a − e| ≤ rtol · (|e| + max|e|·1e-3)``: relative, with a floor 1e-3 of the
    array's scale so an element that happens to sit near zero is not judged on its own tiny size."""
    for k in expected:
        e = np.asarray(expected[k], np.float64)
        a = np.asarray(actual[k], np.float64)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * 1e-3 * np.abs(e).max(), err_msg=k)


@pytest.mark.parametrize("name,hyper,torch_cls,torch_kwargs", CASES, ids=IDS)
def test_matches_torch_float64(name, hyper, torch_cls, torch_kwargs):
    params = initial_params()
    start = {k: p.copy() for k, p in params.items()}
    grads_seq = gradient_sequence()
    expected = run_torch(torch_cls, torch_kwargs, start, grads_seq)
    opt = make_optimizer(name, **hyper)
    for step, grads in enumerate(grads_seq):
        opt.step(params, grads)
        assert all(p.dtype == np.float64 for p in params.values())
        assert_close(params, expected[step], 1e-12)
    # The parameters really moved (the comparison is not between two unchanged arrays).
    assert all(np.abs(params[k] - start[k]).max() > 1e-4 for k in params)


@pytest.mark.parametrize("name,hyper,torch_cls,torch_kwargs", CASES, ids=IDS)
def test_float32_keeps_dtype_and_matches_torch(name, hyper, torch_cls, torch_kwargs):
    params = initial_params(np.float32)
    grads_seq = gradient_sequence(dtype=np.float32)
    expected = run_torch(torch_cls, torch_kwargs, {k: p.copy() for k, p in params.items()}, grads_seq)
    opt = make_optimizer(name, **hyper)
    for grads in grads_seq:
        opt.step(params, grads)
    assert all(p.dtype == np.float32 for p in params.values())
    assert all(a.dtype == np.float32 for k, a in opt.state_dict().items() if "/" in k and not k.startswith("t/"))
    # float32 rounding (ε ≈ 6e-8) accumulated over 10 steps of O(1) parameters.
    assert_close(params, expected[-1], 1e-5)


@pytest.mark.parametrize("name,hyper", [(n, h) for n, h, _, _ in CASES], ids=IDS)
def test_state_dict_resumes_bit_exactly(name, hyper):
    grads_seq = gradient_sequence()
    params = initial_params()
    opt = make_optimizer(name, **hyper)
    for grads in grads_seq[:5]:
        opt.step(params, grads)
    saved_params = {k: p.copy() for k, p in params.items()}
    # What a checkpoint writes: a flat str → ndarray dict, and a JSON config.
    state = opt.state_dict()
    assert all(isinstance(k, str) and isinstance(a, np.ndarray) for k, a in state.items())
    assert int(state["step"]) == 5
    config = json.loads(json.dumps(opt.config()))
    state = {k: a.copy() for k, a in state.items()}
    for grads in grads_seq[5:]:
        opt.step(params, grads)

    fresh = make_optimizer(**config)
    assert type(fresh) is type(opt) and fresh.config() == opt.config()
    fresh.load_state_dict(state)
    for grads in grads_seq[5:]:
        fresh.step(saved_params, grads)
    for k in params:
        np.testing.assert_array_equal(saved_params[k], params[k], err_msg=k)
    assert fresh.iterations == opt.iterations == 10
    for k, a in opt.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], a, err_msg=k)


def test_state_dict_holds_copies_and_the_documented_keys():
    params = initial_params()
    opt = Adam()
    opt.step(params, gradient_sequence(1)[0])
    state = opt.state_dict()
    assert set(state) == {"step"} | {f"{s}/{k}" for s in ("m", "v", "t") for k in SHAPES}
    assert state["step"].shape == () and state["t/0.W"].dtype == np.int64
    state["m/0.W"][...] = 123.0
    assert not (opt.state["0.W"]["m"] == 123.0).any()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_config_round_trip_and_defaults_are_torchs(name):
    opt = make_optimizer(name.upper())
    config = opt.config()
    assert config["name"] == name and json.loads(json.dumps(config)) == config
    assert make_optimizer(**config).config() == config
    defaults = {
        "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
        "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta,
    }[name]([torch.zeros(1, requires_grad=True)]).defaults
    for key, value in config.items():
        if key == "name":
            continue
        if (name, key) == ("sgd", "lr"):
            # torch.optim.SGD's default lr is 1e-3 in torch 2.13; ours stays 0.01, the interface
            # the project fixed (and that SGD has had since its first version).
            assert value == 0.01 and defaults["lr"] == 1e-3
            continue
        if key in ("beta1", "beta2"):
            assert value == defaults["betas"][key == "beta2"]
        else:
            assert value == defaults[key], key


def test_sgd_keeps_its_positional_interface():
    p = {"W": np.array([1.0, 2.0])}
    SGD(0.1).step(p, {"W": np.array([10.0, -10.0])})
    np.testing.assert_array_equal(p["W"], [0.0, 3.0])
    assert isinstance(SGD(), Optimizer) and SGD().lr == 0.01


def test_a_parameter_that_first_appears_later_gets_its_own_step_count():
    """Adam's bias correction uses each parameter's own step count (as torch's per-parameter state)."""
    opt = Adam(lr=0.01)
    a = {"a": np.zeros(2)}
    for _ in range(3):
        opt.step(a, {"a": np.ones(2)})
    both = {"a": a["a"], "b": np.zeros(2)}
    opt.step(both, {"a": np.ones(2), "b": np.array([5.0, -0.5])})
    # A parameter's first Adam step is −lr·g/(|g| + ε) ≈ −lr·sign(g), whatever the global step.
    np.testing.assert_allclose(both["b"], [-0.01, 0.01], rtol=1e-7)
    assert opt.state_dict()["t/a"] == 4 and opt.state_dict()["t/b"] == 1


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: Adam(beta1=1.5), "Adam: beta1 must be in [0, 1); got 1.5"),
        (lambda: Adam(beta2=1.0), "Adam: beta2 must be in [0, 1); got 1.0"),
        (lambda: Adam(eps=0.0), "Adam: eps must be a positive finite number; got 0.0"),
        (lambda: SGD(lr=0), "SGD: lr must be a positive finite number; got 0"),
        (lambda: SGD(lr=float("inf")), "SGD: lr must be a positive finite number; got inf"),
        (lambda: SGD(lr="0.1"), "SGD: lr must be a positive finite number; got '0.1'"),
        (lambda: SGD(momentum=-0.1), "SGD: momentum must be in [0, 1); got -0.1"),
        (lambda: SGD(nesterov=True), "SGD: nesterov=True needs momentum > 0"),
        (lambda: SGD(momentum=0.9, nesterov=1), "SGD: nesterov must be True or False; got 1"),
        (lambda: Adagrad(initial_accumulator_value=-1.0), "Adagrad: initial_accumulator_value must be >= 0; got -1.0"),
        (lambda: RMSprop(alpha=1.0), "RMSprop: alpha must be in [0, 1); got 1.0"),
        (lambda: RMSprop(eps=-1e-8), "RMSprop: eps must be a positive finite number"),
        (lambda: RMSprop(centered="yes"), "RMSprop: centered must be True or False"),
        (lambda: Adadelta(rho=float("nan")), "Adadelta: rho must be finite; got nan"),
        (lambda: Adadelta(lr=-1.0), "Adadelta: lr must be a positive finite number; got -1.0"),
        (lambda: make_optimizer("lbfgs"), "make_optimizer: name must be one of sgd, adam, adagrad, rmsprop, adadelta"),
        (lambda: make_optimizer("adam", momentum=0.9), "Adam has no hyperparameter 'momentum'; its hyperparameters are lr, beta1, beta2, eps"),
    ],
)
def test_hyperparameter_errors(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_step_errors_name_the_parameter():
    params = initial_params()
    grads = gradient_sequence(1)[0]
    opt = Adam()
    with pytest.raises(ValueError, match=r"Adam.step: grads has no entry for parameter '0.U'"):
        opt.step(params, {k: g for k, g in grads.items() if k != "0.U"})
    with pytest.raises(ValueError, match=r"grads\['0.b'\] must be an array of the parameter's shape \(6,\)"):
        opt.step(params, {**grads, "0.b": np.zeros(5)})
    with pytest.raises(ValueError, match=r"grads\['0.W'\] .* dtype float64; got shape \(4, 6\), dtype float32"):
        opt.step(params, {**grads, "0.W": grads["0.W"].astype(np.float32)})
    # A failed step changes nothing: neither the parameters nor the state.
    assert opt.iterations == 0 and opt.state == {}


def test_load_state_dict_errors():
    params = initial_params()
    opt = Adam()
    opt.step(params, gradient_sequence(1)[0])
    with pytest.raises(ValueError, match=r"slot 'momentum_buffer', which Adam does not keep \(its slots: 'm', 'v', 't'\)"):
        opt.load_state_dict({"step": np.array(1), "momentum_buffer/0.W": np.zeros((4, 6))})
    with pytest.raises(ValueError, match="state has no 'step' entry"):
        opt.load_state_dict({"m/0.W": np.zeros((4, 6))})
    with pytest.raises(ValueError, match="unknown key 'banana'"):
        opt.load_state_dict({"step": np.array(1), "banana": np.zeros(1)})
    # State saved for another model: caught on the next step, with both shapes named.
    other = Adam()
    other.load_state_dict({**opt.state_dict(), "m/0.W": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"state m/0.W has shape \(2, 2\) but the parameter has \(4, 6\)"):
        other.step(params, gradient_sequence(1)[0])


# --- regularisation ------------------------------------------------------------------------


def reg_problem(dtype=np.float64, seed=3):
    rng = np.random.default_rng(seed)
    params = {"0.W": rng.normal(size=(4, 6)), "0.U": rng.normal(size=(3, 6)), "0.b": rng.normal(size=6), "1.W": rng.normal(size=(6, 1))}
    # Keep every weight away from 0, where |w| has its kink (finite differences straddle it otherwise).
    params = {k: (np.where(np.abs(p) < 0.05, 0.05, p) if p.ndim > 1 else p).astype(dtype) for k, p in params.items()}
    grads = {k: rng.normal(size=p.shape).astype(dtype) for k, p in params.items()}
    return params, grads


@pytest.mark.parametrize("kind", ["L2", "l2", "L1", "l1"])
def test_penalty_and_grad_matches_the_formula(kind):
    params, grads = reg_problem()
    before = {k: g.copy() for k, g in grads.items()}
    wd = 0.03
    value = penalty_and_grad(params, grads, kind, wd)
    weights = [k for k in params if params[k].ndim >= 2]
    if kind.upper() == "L2":
        assert value == pytest.approx(wd / 2 * sum(np.sum(params[k] ** 2) for k in weights), rel=1e-14)
        for k in weights:
            np.testing.assert_allclose(grads[k], before[k] + wd * params[k], rtol=1e-15)
    else:
        assert value == pytest.approx(wd * sum(np.sum(np.abs(params[k])) for k in weights), rel=1e-14)
        for k in weights:
            np.testing.assert_allclose(grads[k], before[k] + wd * np.sign(params[k]), rtol=1e-15)
    np.testing.assert_array_equal(grads["0.b"], before["0.b"])  # biases untouched


@pytest.mark.parametrize("kind", ["L1", "L2"])
def test_penalty_gradient_matches_finite_differences(kind):
    params, _ = reg_problem()
    wd = 0.7
    grads = {k: np.zeros_like(p) for k, p in params.items()}
    penalty_and_grad(params, grads, kind, wd)
    loss = lambda: penalty_and_grad(params, {k: np.zeros_like(p) for k, p in params.items()}, kind, wd)  # noqa: E731
    report = gradcheck(loss, params, grads)
    report.assert_ok(1e-8)
    assert np.abs(report.numeric["0.b"]).max() == 0.0 and np.abs(grads["0.b"]).max() == 0.0


@pytest.mark.parametrize("kind,wd", [(None, 0.1), ("none", 0.1), ("NONE", 0.1), ("L2", 0.0), ("L1", 0)])
def test_no_regularisation_changes_nothing(kind, wd):
    params, grads = reg_problem()
    before = {k: g.copy() for k, g in grads.items()}
    assert penalty_and_grad(params, grads, kind, wd) == 0.0
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_penalty_keeps_float32():
    params, grads = reg_problem(np.float32)
    penalty_and_grad(params, grads, "L2", 0.1)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_penalty_errors():
    params, grads = reg_problem()
    with pytest.raises(ValueError, match=r"penalty_and_grad: kind must be one of None, 'none', 'L1', 'L2' \(case-insensitive\); got 'L3'"):
        penalty_and_grad(params, grads, "L3", 0.1)
    with pytest.raises(ValueError, match=r"penalty_and_grad: weight_decay must be a finite number >= 0; got -0.1"):
        penalty_and_grad(params, grads, "L2", -0.1)
    with pytest.raises(ValueError, match=r"penalty_and_grad: grads has no entry for parameter '1.W'"):
        penalty_and_grad(params, {k: g for k, g in grads.items() if k != "1.W"}, "L1", 0.1)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3], ids=["clips", "clips-a-little", "no-clip"])
def test_clip_grad_norm_matches_torch(max_norm):
    _, grads = reg_problem()
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    before = {k: g.copy() for k, g in grads.items()}
    norm = clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(expected_norm, rel=1e-14)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g**2) for g in before.values())), rel=1e-14)
    for t, (k, g) in zip(tensors, grads.items()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14, err_msg=k)
    if max_norm < norm:
        assert np.sqrt(sum(np.sum(g**2) for g in grads.values())) == pytest.approx(max_norm, rel=1e-6)
    else:
        for k in grads:
            np.testing.assert_array_equal(grads[k], before[k])


def test_clip_grad_norm_at_exactly_max_norm_scales_like_torch():
    """At n = max_norm torch still multiplies by max_norm / (n + 1e-6) < 1; so do we."""
    grads = {"W": np.array([[3.0, 4.0]])}
    t = torch.tensor([[0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(grads["W"])
    torch.nn.utils.clip_grad_norm_([t], 5.0)
    assert clip_grad_norm(grads, 5.0) == 5.0
    np.testing.assert_array_equal(grads["W"], t.grad.numpy())
    assert grads["W"][0, 1] < 4.0


def test_clip_grad_norm_non_finite_and_errors():
    grads = {"W": np.array([1.0, np.inf]), "b": np.array([1.0])}
    assert clip_grad_norm(grads, 1.0) == np.inf
    np.testing.assert_array_equal(grads["b"], [1.0])  # left alone so the caller can see the divergence
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a positive finite number"):
            clip_grad_norm({"W": np.ones(2)}, bad)
