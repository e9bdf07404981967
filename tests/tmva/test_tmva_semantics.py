"""What the booking-string options DO (issue 19, point 1): WeightInitialization's distributions as
TMVA's TCpu::Initialize* draw them, VarTransform fitted and kept, TrainingStrategy phases trained
one after the other, RandomSeed, and the options accepted without effect said aloud. Oracles:
TMVA's formulas written out here, scipy's truncated normal, and fit called by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bptt.layers import LSTM, Dense
from bptt.layers.dropout import Dropout
from bptt.model import Sequential
from bptt.tmva import TMVAOptionError
from bptt.tmva._common import TMVAOptionWarning
from bptt.tmva.network import plan_from_options
from bptt.transforms import VarTransform

I, H, T, D_IN, D_OUT = 40, 30, 2, 400, 300
BIG = f"InputLayout={T}|{I}:Layout=LSTM|{H}|{I}|{T}|0|0,DENSE|{D_IN}|TANH,DENSE|{D_OUT}|TANH,LINEAR:RandomSeed=3"


def weights(init):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TMVAOptionWarning)
        model = plan_from_options(f"{BIG}:WeightInitialization={init}").model
    lstm, dense = model.layers[0], model.layers[2]  # LSTM, DENSE|400, DENSE|300 (fan_in 400), LINEAR
    assert isinstance(lstm, LSTM) and isinstance(dense, Dense) and dense.params["W"].shape == (D_IN, D_OUT)
    return model, lstm, dense


def gate_blocks(a, gates=4):
    return np.split(a, gates, axis=1)


def test_zero_makes_every_parameter_zero():
    model, _, _ = weights("ZERO")
    assert all(not p.any() for p in model.parameters().values())


def test_identity_is_one_on_the_diagonal_of_every_gate_matrix():
    model, lstm, dense = weights("IDENTITY")
    for block in gate_blocks(lstm.params["W"]):
        np.testing.assert_array_equal(block, np.eye(I, H))
    for block in gate_blocks(lstm.params["U"]):
        np.testing.assert_array_equal(block, np.eye(H))
    np.testing.assert_array_equal(dense.params["W"], np.eye(D_IN, D_OUT))
    assert not any(p.any() for k, p in model.parameters().items() if k.endswith(".b"))


def test_gauss_is_normal_with_sigma_sqrt_two_over_fan_in():
    _, lstm, dense = weights("GAUSS")
    W = dense.params["W"]
    assert abs(W.std() / np.sqrt(2 / D_IN) - 1) < 0.01 and abs(W.mean()) < 0.002
    assert stats.kstest(W.ravel() / np.sqrt(2 / D_IN), "norm").pvalue > 1e-3
    assert abs(lstm.params["W"].std() / np.sqrt(2 / I) - 1) < 0.03  # each gate's (H, I) matrix: fan_in I


def test_uniform_is_uniform_within_sqrt_two_over_fan_in():
    _, _, dense = weights("UNIFORM")
    W, a = dense.params["W"], np.sqrt(2 / D_IN)
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.999 * a
    assert stats.kstest(W.ravel(), stats.uniform(-a, 2 * a).cdf).pvalue > 1e-3


def test_xavier_uniform_bound_is_per_gate_matrix():
    _, lstm, _ = weights("XAVIERUNIFORM")
    bound = np.sqrt(6 / (I + H))  # TMVA's per-gate (H, I) matrix, not the stacked (4H, I)
    W = lstm.params["W"]
    assert np.abs(W).max() <= bound and np.abs(W).max() > np.sqrt(6 / (I + 4 * H))
    assert np.abs(W).max() > 0.99 * bound


def test_xavier_is_a_normal_truncated_at_two_sigma_with_tmvas_sigma():
    _, _, dense = weights("XAVIER")
    W = dense.params["W"]
    sigma = np.sqrt(6 / (D_IN + D_OUT))  # TMVA's InitializeGlorotNormal: sqrt(6), not sqrt(2)
    assert np.abs(W).max() <= 2 * sigma and np.abs(W).max() > 1.99 * sigma
    oracle = stats.truncnorm(-2, 2, scale=sigma)
    assert abs(W.std() / oracle.std() - 1) < 0.01
    assert stats.kstest(W.ravel(), oracle.cdf).pvalue > 1e-3


def test_the_default_weight_initialization_is_tmvas_xavier():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TMVAOptionWarning)
        default = plan_from_options(BIG).model
    explicit, _, _ = weights("XAVIER")
    for k, p in default.parameters().items():
        np.testing.assert_array_equal(explicit.parameters()[k], p)


# ─────────────────────────────────────────────────────────────────── VarTransform

SMALL = "InputLayout=5|3:Layout=GRU|4|3|5|0|0,LINEAR:RandomSeed=11"
STRAT = "TrainingStrategy=LearningRate=0.01,BatchSize=10,MaxEpochs=2,TestRepetitions=1,Optimizer=SGD,Momentum=0.0"


def task(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 5, 3)) * [1.0, 10.0, 100.0] + 5).astype(np.float32)
    return X, (X[:, :, 0].mean(axis=1) > 5).astype(np.float32)


def test_no_var_transform_means_the_inputs_as_they_are():
    plan = plan_from_options(f"{SMALL}:{STRAT}")
    assert plan.model.input_transform is None and plan.phases[0]["standardize"] is False
    X, y = task()
    plan.fit(X, y, verbose=False)
    assert plan.model.input_transform is None


def test_var_transform_is_fitted_on_all_training_events_and_kept(tmp_path):
    X, y = task()
    plan = plan_from_options(f"{SMALL}:VarTransform=N,D:{STRAT}")
    plan.fit(X, y, verbose=False)
    t = plan.model.input_transform
    oracle = VarTransform("N,D").fit(X)
    np.testing.assert_array_equal(t.transform(X), oracle.transform(X))
    back = Sequential.load(plan.model.save(str(tmp_path / "m.bptt")))
    np.testing.assert_array_equal(back.predict_proba(X), plan.model.predict_proba(X))


def test_an_unsupported_var_transform_is_an_option_error():
    with pytest.raises(TMVAOptionError, match=r"VarTransform=P .*TMVA's PCA transformation"):
        plan_from_options(f"{SMALL}:VarTransform=P")


# ─────────────────────────────────────────────────────────────────── phases

TWO = ("TrainingStrategy=LearningRate=0.05,BatchSize=10,MaxEpochs=2,ConvergenceSteps=50,TestRepetitions=1,Optimizer=SGD,"
       "Momentum=0.0|LearningRate=0.01,BatchSize=20,MaxEpochs=3,ConvergenceSteps=50,TestRepetitions=1,Optimizer=ADAM,"
       "WeightDecay=0.1,Regularization=L2")


def test_two_phases_are_two_successive_fits():
    X, y = task()
    plan = plan_from_options(f"{SMALL}:{TWO}")
    history = plan.fit(X, y, verbose=False)
    assert history.phase == [1, 1, 2, 2, 2] and history.phase_starts == [0, 2] and history.epoch == [1, 2, 3, 4, 5]
    # by hand: TMVA's defaults (XAVIER, no transformation), the options of each phase written out
    twin = Sequential.from_tmva("GRU|4|3|5|0|0,LINEAR", "5|3", seed=11, weight_initialization="XAVIER")
    common = dict(validation_split=0.2, seed=11, standardize=False, verbose=False, early_stopping=50)
    twin.fit(X, y, epochs=2, batch_size=10, optimizer="sgd", learning_rate=0.05, momentum=0.0, weight_decay=0.0,
             regularization=None, **common)
    twin.fit(X, y, epochs=3, batch_size=20, optimizer="adam", learning_rate=0.01, momentum=0.3, weight_decay=0.2,
             regularization="L2", optimizer_options={"beta1": 0.9, "beta2": 0.999, "eps": 1e-7},  # TMVA's TAdam
             **common)
    for k, p in twin.parameters().items():
        np.testing.assert_array_equal(plan.model.parameters()[k], p, err_msg=k)


def test_phases_resume_from_their_checkpoints(tmp_path):
    X, y = task()
    ckpt = str(tmp_path / "run.ckpt")
    plan = plan_from_options(f"{SMALL}:{TWO}")
    plan.fit(X, y, verbose=False, checkpoint=ckpt)
    assert (tmp_path / "run.phase1.ckpt").is_file() and (tmp_path / "run.phase2.ckpt").is_file()
    again = plan_from_options(f"{SMALL}:{TWO}")
    history = again.fit(X, y, verbose=False, checkpoint=ckpt, resume=ckpt)
    assert history.phase == [1, 1, 2, 2, 2]
    for k, p in plan.model.parameters().items():
        np.testing.assert_array_equal(again.model.parameters()[k], p, err_msg=k)


def test_each_phase_has_its_own_drop_config():
    plan = plan_from_options(f"{SMALL}:TrainingStrategy=DropConfig=0.0+0.5|DropConfig=0.0+0.25,MaxEpochs=1")
    drops = [layer for layer in plan.model.layers if isinstance(layer, Dropout)]
    assert len(drops) == 1 and plan.dropout == [[0.5], [0.25]]


# ─────────────────────────────────────────────────────────── seeds, notes, shapes


def test_random_seed_zero_draws_a_seed_and_says_so():
    a, b = plan_from_options(SMALL.replace("RandomSeed=11", "RandomSeed=0")), plan_from_options("InputLayout=5|3:Layout=GRU|4|3|5|0|0,LINEAR")
    assert a.seed_drawn and b.seed_drawn and a.seed != b.seed
    same = plan_from_options(SMALL)
    assert not same.seed_drawn and same.seed == 11 and same.phases[0]["seed"] == 11


@pytest.mark.parametrize(
    "option, said",
    [
        ("Architecture=GPU", "Architecture=GPU: bptt runs on the CPU"),
        ("!H:V", "!H: bptt's output"),
        ("TrainingStrategy=Repetitions=3,TestRepetitions=1", "Repetitions=3: ignored"),
        ("TrainingStrategy=TestRepetitions=7", "TestRepetitions=7: bptt evaluates the validation loss after every epoch"),
        ("CreateMVAPdfs", "CreateMVAPdfs: no MVA PDFs are made"),
    ],
)
def test_options_without_effect_are_said(option, said):
    with pytest.warns(TMVAOptionWarning, match=said):
        plan = plan_from_options(f"{SMALL}:{option}")
    assert any(said in note for note in plan.notes)


def test_nothing_is_said_when_every_option_acts():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TMVAOptionWarning)
        plan_from_options(f"{SMALL}:Architecture=CPU:{STRAT}")


def test_batch_layout_is_checked_as_tmva_checks_it():
    with pytest.warns(TMVAOptionWarning, match=r"BatchLayout=10\|5\|3 \(checked"):
        plan_from_options(f"{SMALL}:BatchLayout=10|5|3:{STRAT}")
    with pytest.raises(TMVAOptionError, match=r"BatchLayout=100\|5\|3: batch depth 100 must equal BatchSize=10"):
        plan_from_options(f"{SMALL}:BatchLayout=100|5|3:{STRAT}")


def test_data_that_do_not_fit_input_layout_are_refused_in_tmvas_terms():
    plan = plan_from_options(f"{SMALL}:{STRAT}")
    X, y = task()
    with pytest.raises(TMVAOptionError, match=r"^InputLayout=5\|3 says 3 features per time step; the data have 4"):
        plan.fit(np.zeros((8, 5, 4), np.float32), y[:8])
    with pytest.raises(TMVAOptionError, match=r"^InputLayout=5\|3 says 5 time steps; the data have 8"):
        plan.fit(np.zeros((8, 8, 3), np.float32), y[:8])


def test_the_command_line_says_the_layout_mismatch_and_exits_2(tmp_path, capsys):
    from bptt.cli import main
    from bptt.data.arrays import write_npz

    rng = np.random.default_rng(0)
    data = write_npz(str(tmp_path / "d.npz"), rng.normal(size=(40, 5, 4)).astype(np.float32),
                     (rng.random(40) > 0.5).astype(np.float32))
    code = main(["train", data, "--options", f"{SMALL}:{STRAT}", "--out", str(tmp_path / "m.bptt"), "--quiet"])
    assert code == 2
    assert "InputLayout=5|3 says 3 features per time step; the data have 4" in capsys.readouterr().err
