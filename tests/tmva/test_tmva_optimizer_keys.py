"""The TrainingStrategy keys MethodDL reads for its optimizers (ADAM_beta1, ADAM_beta2, ADAM_eps,
ADAGRAD_eps, RMSPROP_rho, RMSPROP_eps, ADADELTA_rho, ADADELTA_eps; ROOT PR #7318, the Higgs
tutorial), TMVA's defaults for them, their way to the optimizer through fit_arguments and fit's
optimizer_options, and the warnings where TMVA ignores what it is given."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from bptt.model import Sequential
from bptt.optim import Adam, make_optimizer
from bptt.tmva import TMVAOptionError, TMVAOptionWarning, TrainingStrategy, parse_options, parse_training_strategy
from bptt.tmva.network import fit_arguments
from bptt.train import fit

HIGGS = ("LearningRate=1e-3,Momentum=0.9,ConvergenceSteps=10,BatchSize=128,TestRepetitions=1,MaxEpochs=30,"
         "WeightDecay=1e-4,Regularization=None,Optimizer=ADAM,ADAM_beta1=0.9,ADAM_beta2=0.999,ADAM_eps=1.E-7,"
         "DropConfig=0.0+0.0+0.0+0.")


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected
        return fn(*args, **kw)


def test_the_higgs_tutorials_strategy_parses():
    s = quiet(parse_training_strategy, HIGGS)
    assert (s.optimizer, s.adam_beta1, s.adam_beta2, s.adam_eps, s.batch_size, s.max_epochs) == (
        "adam", 0.9, 0.999, 1e-7, 128, 30)
    assert s.optimizer_options() == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-7}


def test_tmvas_defaults_of_the_optimizer_keys():
    s = TrainingStrategy()
    assert (s.adam_beta1, s.adam_beta2, s.adam_eps) == (0.9, 0.999, 1e-7)
    assert s.adagrad_eps == 1e-8
    assert (s.rmsprop_rho, s.rmsprop_eps) == (0.9, 1e-7)
    assert (s.adadelta_rho, s.adadelta_eps) == (0.95, 1e-8)


@pytest.mark.parametrize("text, optimizer, options", [
    ("Optimizer=ADAM,ADAM_beta1=0.8,ADAM_beta2=0.99,ADAM_eps=1e-6", "adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ("Optimizer=ADAM,adam_BETA2=0.95", "adam", {"beta1": 0.9, "beta2": 0.95, "eps": 1e-7}),  # keys: any case
    ("Optimizer=ADAGRAD,ADAGRAD_eps=1e-5", "adagrad", {"eps": 1e-5}),
    ("Optimizer=RMSPROP,RMSPROP_rho=0.5,RMSPROP_eps=1e-3", "rmsprop", {"alpha": 0.5, "eps": 1e-3}),
    ("Optimizer=ADADELTA,ADADELTA_rho=0.7", "adadelta", {"rho": 0.7, "eps": 1e-8}),
    ("Optimizer=SGD", "sgd", {}),
])
def test_each_optimizer_gets_its_own_keys(text, optimizer, options):
    s = quiet(parse_training_strategy, text)
    assert (s.optimizer, s.optimizer_options()) == (optimizer, options)
    args = fit_arguments(s)
    assert args["optimizer"] == optimizer and args["optimizer_options"] == (options or None)


@pytest.mark.parametrize("text, key, optimizer", [
    ("Optimizer=SGD,ADAM_beta1=0.5", "ADAM_beta1", "SGD"),
    ("Optimizer=ADAM,RMSPROP_rho=0.5", "RMSPROP_rho", "ADAM"),
    ("ADADELTA_eps=1e-3", "ADADELTA_eps", "ADAM"),  # ADAM is the default optimizer
])
def test_a_key_of_another_optimizer_is_ignored_as_tmva_does_with_a_warning(text, key, optimizer):
    with pytest.warns(TMVAOptionWarning, match=re.escape(
        f"{key} is read for Optimizer={key.split('_')[0]} only and this phase's optimizer is {optimizer}; TMVA "
        f"ignores it, and so does bptt")):
        s = parse_training_strategy(text)
    assert "0.5" not in str(s.optimizer_options()) and "0.001" not in str(s.optimizer_options())


def test_the_warning_names_the_phase_and_entry():
    with pytest.warns(TMVAOptionWarning, match=r"^TrainingStrategy phase 2 entry 2 'ADAM_eps=1e-3': "):
        parse_training_strategy("Optimizer=ADAM,ADAM_eps=1e-3|Optimizer=SGD,ADAM_eps=1e-3")


@pytest.mark.parametrize("entry, message", [
    ("ADAM_beta1=1", "ADAM_beta1 must be a number in [0, 1) (Adam's first-moment decay); got '1'"),
    ("ADAM_beta2=-0.1", "ADAM_beta2 must be a number in [0, 1) (Adam's second-moment decay); got '-0.1'"),
    ("ADAM_eps=0", "ADAM_eps must be a positive number (Adam's epsilon); got '0'"),
    ("ADAGRAD_eps=x", "ADAGRAD_eps must be a positive number (Adagrad's epsilon); got 'x'"),
    ("RMSPROP_rho=1.5", "RMSPROP_rho must be a number in [0, 1) (RMSprop's decay); got '1.5'"),
    ("RMSPROP_eps=-1", "RMSPROP_eps must be a positive number (RMSprop's epsilon); got '-1'"),
    ("ADADELTA_rho=nan", "ADADELTA_rho must be a number in [0, 1) (Adadelta's decay); got 'nan'"),
    ("ADADELTA_eps=inf", "ADADELTA_eps must be a positive number (Adadelta's epsilon); got 'inf'"),
])
def test_optimizer_keys_are_checked(entry, message):
    with pytest.raises(TMVAOptionError, match=f"^TrainingStrategy entry 1 '{re.escape(entry)}': {re.escape(message)}$"):
        parse_training_strategy(entry)


def test_a_missing_comma_is_read_as_tmva_reads_it_with_a_warning():
    """TMVA_RNN_Classification's dense strategy has 'MaxEpochs=20' "DropConfig=…" without a ',':
    TMVA's atoi reads MaxEpochs=20 and the DropConfig is lost."""
    with pytest.warns(TMVAOptionWarning, match=re.escape(
        "TrainingStrategy entry 2 'MaxEpochs=20DropConfig=0.0+0.+0.+0.': '20DropConfig=0.0+0.+0.+0.' looks like two "
        "entries without a ',' between them; TMVA reads MaxEpochs=20 and ignores 'DropConfig=0.0+0.+0.+0.' (its "
        "atoi/atof stop at the first letter), and so does bptt; write 'MaxEpochs=20,DropConfig=0.0+0.+0.+0.' to set both")):
        s = parse_training_strategy("WeightDecay=1e-4,MaxEpochs=20DropConfig=0.0+0.+0.+0.,Optimizer=SGD")
    assert (s.max_epochs, s.drop_config, s.optimizer) == (20, [], "sgd")
    with pytest.warns(TMVAOptionWarning):
        assert parse_training_strategy("LearningRate=0.5Optimizer=SGD").learning_rate == 0.5


@pytest.mark.parametrize("entry", ["MaxEpochs=20abc", "MaxEpochs=20Unknown=3", "MaxEpochs=2.5DropConfig=0",
                                   "MaxEpochs=DropConfig=0", "LearningRate=1e-3e-3"])
def test_other_trailing_text_stays_an_error(entry):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TMVAOptionError, match=r"must be"):
            parse_training_strategy(entry)


def test_tmva_loose_option_reading_a_bare_value_sets_its_option():
    """TMVA's Configurable::ParseOptions gives a bare value to the option that has it among its
    predefined values: the Python dense booking of TMVA_RNN_Classification.py ends ':CPU'."""
    assert parse_options("!H:CPU")["architecture"] == "CPU"
    assert parse_options("gpu")["architecture"] == "GPU"
    assert parse_options("XAVIERUNIFORM:SUMOFSQUARES") == {
        "weight_initialization": "XAVIERUNIFORM", "error_strategy": "SUMOFSQUARES"}
    with pytest.raises(TMVAOptionError, match=r"option 2 'CPU': Architecture is already given as option 1"):
        parse_options("Architecture=GPU:CPU")
    with pytest.raises(TMVAOptionError, match=r"unknown option 'TPU'"):
        parse_options("TPU")


def xy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3, 2))
    return X, (X.sum(axis=(1, 2)) > 0).astype(np.float64)


def test_fit_passes_optimizer_options_to_the_optimizer():
    X, y = xy()
    model = Sequential.from_tmva("RESHAPE|FLAT,DENSE|4|TANH,LINEAR", "3|2", dtype=np.float64, seed=1)
    twin = Sequential.from_tmva("RESHAPE|FLAT,DENSE|4|TANH,LINEAR", "3|2", dtype=np.float64, seed=1)
    options = {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3}
    fit(model, X, y, epochs=2, batch_size=16, learning_rate=0.05, optimizer="adam", optimizer_options=options,
        validation_split=0.0, standardize=False, shuffle=False, verbose=False, early_stopping=None)
    fit(twin, X, y, epochs=2, batch_size=16, optimizer=Adam(lr=0.05, **options), validation_split=0.0,
        standardize=False, shuffle=False, verbose=False, early_stopping=None)
    for k, p in twin.parameters().items():
        np.testing.assert_allclose(model.parameters()[k], p, rtol=1e-12, atol=1e-14, err_msg=k)
    default = Sequential.from_tmva("RESHAPE|FLAT,DENSE|4|TANH,LINEAR", "3|2", dtype=np.float64, seed=1)
    fit(default, X, y, epochs=2, batch_size=16, learning_rate=0.05, optimizer="adam", validation_split=0.0,
        standardize=False, shuffle=False, verbose=False, early_stopping=None)
    assert any(not np.allclose(default.parameters()[k], p) for k, p in model.parameters().items())  # they matter


@pytest.mark.parametrize("options, message", [
    ({"rho": 0.5}, "make_optimizer: Adam has no hyperparameter 'rho'"),
    ({"lr": 0.5}, "fit: optimizer_options must not hold lr; got {'lr': 0.5}: use fit's learning_rate and momentum"),
    ({"beta1": 1.5}, "beta1"),
])
def test_fit_refuses_optimizer_options_that_do_not_fit(options, message):
    X, y = xy(16)
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "3|2", dtype=np.float64)
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(model, X, y, epochs=1, optimizer="adam", optimizer_options=options, verbose=False)


def test_optimizer_options_with_an_optimizer_instance_are_refused():
    X, y = xy(16)
    model = Sequential.from_tmva("RESHAPE|FLAT,LINEAR", "3|2", dtype=np.float64)
    with pytest.raises(ValueError, match=r"^fit: optimizer_options \{'eps': 0.1\} are for an optimizer given by name"):
        fit(model, X, y, epochs=1, optimizer=make_optimizer("adam"), optimizer_options={"eps": 0.1}, verbose=False)
