"""bptt.optim where mutation testing found no test (docs/mutation.md): the exact messages of the
hyperparameter, ``step`` and ``load_state_dict`` checks (each names the class, the argument and
the value received), the counters' bounds (a fresh optimizer's step 0 round-trips), parameter
names with a ``/``, the state arrays each optimizer keeps (none for plain SGD, no momentum buffer
for RMSprop without momentum, the centered average's sign) and the state following a parameter
converted to another dtype. Expected values are written by hand from the documented formulas.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bptt.optim import SGD, Adadelta, Adagrad, Adam, RMSprop, make_optimizer


def raises_exactly(message):
    """pytest.raises(ValueError) matching the whole message, written out literally."""
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


# --- hyperparameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: Adagrad(eps=0.0), "Adagrad: eps must be a positive finite number; got 0.0"),
        (lambda: Adagrad(initial_accumulator_value="0.1"),
         "Adagrad: initial_accumulator_value must be a real number; got '0.1'"),
        (lambda: Adagrad(initial_accumulator_value=float("inf")),
         "Adagrad: initial_accumulator_value must be finite; got inf"),
        (lambda: Adadelta(eps=0), "Adadelta: eps must be a positive finite number; got 0"),
        (lambda: RMSprop(momentum=1.0), "RMSprop: momentum must be in [0, 1); got 1.0"),
        (lambda: SGD(momentum=True), "SGD: momentum must be a real number; got True"),
        (lambda: SGD(nesterov=True), "SGD: nesterov=True needs momentum > 0; got momentum=0.0"),
        (lambda: make_optimizer(None),
         "make_optimizer: name must be one of sgd, adam, adagrad, rmsprop, adadelta (case-insensitive); got None"),
        (lambda: make_optimizer("adam", rho=0.9, momentum=0.9),
         "make_optimizer: Adam has no hyperparameter 'momentum', 'rho'; its hyperparameters are lr, beta1, beta2, eps"),
    ],
    ids=["adagrad-eps", "adagrad-iav-str", "adagrad-iav-inf", "adadelta-eps", "rmsprop-momentum",
         "sgd-momentum-bool", "sgd-nesterov", "name-none", "two-unknown"],
)
def test_hyperparameter_messages_name_class_argument_and_value(make, message):
    with raises_exactly(message):
        make()


# --- step ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "param,grad,message",
    [
        ([1.0, 2.0], [0.1, 0.2], "Adam.step: params['w'] must be a float32 or float64 NumPy array; got list"),
        (np.array([1, 2]), np.array([1, 2]),
         "Adam.step: params['w'] must be a float32 or float64 NumPy array; got ndarray of dtype int64"),
        (np.array([1.0, 2.0]), [0.1, 0.2],
         "Adam.step: grads['w'] must be an array of the parameter's shape (2,) and dtype float64; got list"),
    ],
    ids=["param-list", "param-int", "grad-list"],
)
def test_step_refuses_what_is_not_a_float_array(param, grad, message):
    opt = Adam()
    with raises_exactly(message):
        opt.step({"w": param}, {"w": grad})
    assert opt.iterations == 0 and opt.state == {}


def test_state_follows_a_parameter_converted_to_float32():
    # "State is kept in each parameter's dtype": after model.astype(float32) the state follows.
    p = {"w": np.array([1.0, -1.0])}
    opt = Adam(lr=0.1)
    opt.step(p, {"w": np.array([0.5, 0.5])})
    p = {"w": p["w"].astype(np.float32)}
    opt.step(p, {"w": np.array([0.5, 0.5], np.float32)})
    state = opt.state_dict()
    assert state["m/w"].dtype == np.float32 and state["v/w"].dtype == np.float32
    # m after two steps of g = 0.5: 0.1·0.5·0.9 + 0.1·0.5 = 0.095
    np.testing.assert_allclose(state["m/w"], [0.095, 0.095], rtol=1e-6)
    assert p["w"].dtype == np.float32


@pytest.mark.parametrize(
    "opt,keys",
    [
        (SGD(lr=0.1), ["step", "t/w"]),  # momentum 0: no buffer
        (SGD(lr=0.1, momentum=0.5), ["momentum_buffer/w", "step", "t/w"]),
        (RMSprop(), ["square_avg/w", "step", "t/w"]),  # momentum 0: no buffer
        (RMSprop(momentum=0.5, centered=True), ["grad_avg/w", "momentum_buffer/w", "square_avg/w", "step", "t/w"]),
    ],
    ids=["sgd", "sgd-momentum", "rmsprop", "rmsprop-momentum-centered"],
)
def test_state_keeps_only_the_slots_its_options_use(opt, keys):
    p = {"w": np.array([1.0, 2.0])}
    for _ in range(2):
        opt.step(p, {"w": np.array([0.5, -1.0])})
    assert sorted(opt.state_dict()) == keys


def test_plain_sgd_steps_are_lr_times_the_gradient():
    p = {"w": np.array([1.0, 2.0])}
    opt = SGD(lr=0.1)
    opt.step(p, {"w": np.array([1.0, -2.0])})
    opt.step(p, {"w": np.array([3.0, 1.0])})
    np.testing.assert_allclose(p["w"], [1.0 - 0.1 - 0.3, 2.0 + 0.2 - 0.1], rtol=1e-15)


def test_rmsprop_centered_keeps_the_running_mean_of_the_gradient():
    # ā ← α ā + (1−α) g, from 0: 0.01·2 = 0.02, then 0.99·0.02 + 0.01·(−1) = 0.0098
    p = {"w": np.array([0.0])}
    opt = RMSprop(alpha=0.99, centered=True)
    opt.step(p, {"w": np.array([2.0])})
    np.testing.assert_allclose(opt.state_dict()["grad_avg/w"], [0.02], rtol=1e-12)
    opt.step(p, {"w": np.array([-1.0])})
    np.testing.assert_allclose(opt.state_dict()["grad_avg/w"], [0.0098], rtol=1e-12)


# --- state_dict / load_state_dict ----------------------------------------------------------------


def test_a_fresh_optimizer_round_trips_with_step_zero():
    state = Adam().state_dict()
    assert list(state) == ["step"] and state["step"].dtype == np.int64 and state["step"] == 0
    twin = Adam()
    twin.iterations = 5
    twin.load_state_dict(state)
    assert twin.iterations == 0 and twin.state == {}


def test_the_step_counters_are_int64():
    opt = SGD(momentum=0.5)
    opt.step({"w": np.ones(2)}, {"w": np.ones(2)})
    state = opt.state_dict()
    assert state["step"].dtype == np.int64 and state["t/w"].dtype == np.int64
    assert int(state["step"]) == 1 and int(state["t/w"]) == 1


def test_a_parameter_name_with_a_slash_round_trips():
    params = {"encoder/W": np.array([1.0, 2.0])}
    opt = Adam(lr=0.1)
    opt.step(params, {"encoder/W": np.array([0.5, -0.5])})
    twin = Adam(lr=0.1)
    twin.load_state_dict(opt.state_dict())
    assert set(twin.state) == {"encoder/W"}
    a, b = {"encoder/W": params["encoder/W"].copy()}, {"encoder/W": params["encoder/W"].copy()}
    opt.step(a, {"encoder/W": np.array([1.0, 1.0])})
    twin.step(b, {"encoder/W": np.array([1.0, 1.0])})
    np.testing.assert_array_equal(a["encoder/W"], b["encoder/W"])


@pytest.mark.parametrize("step", [np.array(3), np.array([3]), np.array(3, np.uint8)], ids=["0-d", "1-element", "uint8"])
def test_a_counter_may_be_0d_or_one_element(step):
    opt = Adam()
    opt.load_state_dict({"step": step, "t/w": step})
    assert opt.iterations == 3 and opt.state_dict()["t/w"] == 3


@pytest.mark.parametrize(
    "state,message",
    [
        ([("step", 0)], "Adam.load_state_dict: state must be a dict of arrays from state_dict(); got list"),
        ({"step": np.array(1.5)},
         "Adam.load_state_dict: step must be a non-negative integer counter (0-d or 1-element array); got array(1.5)"),
        ({"step": np.array([1, 2])},
         "Adam.load_state_dict: step must be a non-negative integer counter (0-d or 1-element array); got array([1, 2])"),
        ({"step": np.array(-1)},
         "Adam.load_state_dict: step must be a non-negative integer counter (0-d or 1-element array); got array(-1)"),
        ({"step": np.array(1), "t/0.W": np.array(-2)},
         "Adam.load_state_dict: t/0.W must be a non-negative integer counter (0-d or 1-element array); got array(-2)"),
        ({"step": np.array(1), "m/0.W": np.zeros(2, np.int64)},
         "Adam.load_state_dict: m/0.W must be a float32 or float64 array; got dtype int64"),
        ({"step": np.array(1), "m/": np.zeros(2)},
         "Adam.load_state_dict: unknown key 'm/'; expected 'step' or '<slot>/<parameter name>'"),
    ],
    ids=["not-a-dict", "float-step", "two-steps", "negative-step", "negative-t", "int-slot", "empty-name"],
)
def test_load_state_dict_messages(state, message):
    opt = Adam()
    with raises_exactly(message):
        opt.load_state_dict(state)
