"""TMVA's evaluation figures (bptt.metrics' efficiencies and KS test, bptt.results): expected values
by hand, from scikit-learn and scipy, and from ROOT 6.40's own TH1::KolmogorovTest on fixed
histograms (tests/fixtures/ks_root.json, written by tools/make_ks_oracle.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.stats
from scipy.special import kolmogorov
from sklearn import metrics as skm

from bptt.metrics import efficiency_curve, kolmogorov_probability, ks_test_binned, roc_auc, signal_efficiency_at
from bptt.results import (
    Sample,
    classifier_output,
    classifier_results,
    evaluate_events,
    output_histograms,
    output_range,
    overtraining_test,
)

ORACLE = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "ks_root.json")


@pytest.fixture(scope="module")
def root_oracle():
    with open(ORACLE) as f:
        return json.load(f)


def weighted_sample(seed, n=400, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = y * 0.8 + rng.normal(0, 1, n)
    if ties:
        s = np.round(s, 1)
    return y, s, rng.uniform(0.2, 3.0, n)


# ──────────────────────────────────────────────────────────── efficiencies, by hand and sklearn

# y, s, w by hand: sorted by score: 0.9 S(2), 0.8 B(1), 0.4 S(1), 0.1 B(3); signal weight 3, background 4
HAND = ([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1], [2.0, 1.0, 1.0, 3.0])


def test_efficiency_curve_by_hand():
    eff_b, eff_s, cuts = efficiency_curve(*HAND[:2], sample_weight=HAND[2])
    np.testing.assert_allclose(eff_b, [0, 0, 0.25, 0.25, 1])
    np.testing.assert_allclose(eff_s, [0, 2 / 3, 2 / 3, 1, 1])
    np.testing.assert_array_equal(cuts, [np.inf, 0.9, 0.8, 0.4, 0.1])
    # without weights every event counts 1
    eff_b, eff_s, _ = efficiency_curve(*HAND[:2])
    np.testing.assert_allclose(eff_b, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(eff_s, [0, 0.5, 0.5, 1, 1])


def test_signal_efficiency_at_by_hand():
    y, s, w = HAND
    # between (0, 2/3) and (0.25, 2/3): flat
    assert signal_efficiency_at(y, s, 0.01, w) == pytest.approx(2 / 3)
    # exactly on the vertical step at eff_b = 0.25: the top of it
    assert signal_efficiency_at(y, s, 0.25, w) == pytest.approx(1.0)
    # tied scores: the straight line from (0, 0) to (1, 1)
    assert signal_efficiency_at([1, 0], [0.5, 0.5], 0.3) == pytest.approx(0.3)
    # a sloped segment: 3 S → (0, 1/2); 2 S and 2 B tied → (1/2, 1); 1 B → (1, 1); at 1/4: 3/4
    assert signal_efficiency_at([1, 1, 0, 0], [3, 2, 2, 1], 0.25) == pytest.approx(0.75)


def test_roc_integral_by_hand():
    # pairs (signal, background) weighted: 0.9 beats both (2·1 + 2·3), 0.4 beats 0.1 (1·3): 11 of 3·4
    assert roc_auc(*HAND[:2], sample_weight=HAND[2]) == pytest.approx(11 / 12)
    eff_b, eff_s, _ = efficiency_curve(*HAND[:2], sample_weight=HAND[2])
    assert np.trapezoid(eff_s, eff_b) == pytest.approx(11 / 12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_efficiency_curve_and_levels_match_sklearn(seed, ties):
    y, s, w = weighted_sample(seed, ties=ties)
    eff_b, eff_s, cuts = efficiency_curve(y, s, w)
    fpr, tpr, thr = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(eff_b, fpr, atol=1e-12)
    np.testing.assert_allclose(eff_s, tpr, atol=1e-12)
    np.testing.assert_array_equal(cuts[1:], thr[1:])
    for level in (0.01, 0.1, 0.3):
        # np.interp is the straight line between the points around the level (fpr increases strictly
        # here except along vertical steps, which a random level does not hit)
        assert signal_efficiency_at(y, s, level, w) == pytest.approx(np.interp(level, fpr, tpr), abs=1e-12)


def test_negative_weights_follow_the_curve_from_the_origin():
    # sorted: 0.9 S(1), 0.8 B(2), 0.5 B(-1), 0.3 S(1), 0.2 B(1); background total 2
    y, s, w = [1, 1, 0, 0, 0], [0.9, 0.3, 0.8, 0.5, 0.2], [1, 1, 2, -1, 1]
    eff_b, eff_s, _ = efficiency_curve(y, s, w)
    np.testing.assert_allclose(eff_b, [0, 0, 1, 0.5, 0.5, 1])
    np.testing.assert_allclose(eff_s, [0, 0.5, 0.5, 0.5, 1, 1])
    assert signal_efficiency_at(y, s, 0.3, w) == pytest.approx(0.5)  # first crossing of 0.3: (0, .5)→(1, .5)


def test_efficiency_errors():
    with pytest.raises(ValueError, match=r"^efficiency_curve: the background events' sample_weight sums to -1; "):
        efficiency_curve([1, 0, 0], [0.2, 0.1, 0.3], [1, -2, 1])
    with pytest.raises(ValueError, match=r"^efficiency_curve: sample_weight must have one value per label, shape \(2,\)"):
        efficiency_curve([1, 0], [0.2, 0.1], [1, 1, 1])
    with pytest.raises(ValueError, match=r"^efficiency_curve: sample_weight contains NaN at index 1"):
        efficiency_curve([1, 0], [0.2, 0.1], [1, np.nan])
    for bad in (0, 1, 1.5, -0.1, True, "0.1", None):
        with pytest.raises(ValueError, match=r"^signal_efficiency_at: background_efficiency must be a number in \(0, 1\)"):
            signal_efficiency_at([1, 0], [0.2, 0.1], bad)


# ──────────────────────────────────────────────────────────── Kolmogorov–Smirnov

@pytest.mark.parametrize("z", [0.0, 0.04, 0.2, 0.5, 0.8, 0.99, 1.0, 1.3, 2.0, 3.5, 8.0])
def test_kolmogorov_probability_matches_scipy(z):
    assert kolmogorov_probability(z) == pytest.approx(kolmogorov(z), rel=1e-12, abs=1e-300)
    assert kolmogorov_probability(-z) == kolmogorov_probability(z)


def test_kolmogorov_probability_rejects_non_numbers():
    for bad in (float("nan"), "1", None, True):
        with pytest.raises(ValueError, match=r"^kolmogorov_probability: z must be a number"):
            kolmogorov_probability(bad)


@pytest.mark.parametrize("seed", range(3))
def test_ks_unweighted_one_event_per_bin_is_the_unbinned_test(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=300), rng.normal(0.15 * seed, 1, size=200)
    values = np.unique(np.r_[a, b])
    h1 = np.bincount(np.searchsorted(values, a), minlength=len(values))
    h2 = np.bincount(np.searchsorted(values, b), minlength=len(values))
    probability, distance = ks_test_binned(h1, h2)
    expected = scipy.stats.ks_2samp(a, b)
    assert distance == pytest.approx(expected.statistic, abs=1e-12)
    assert probability == pytest.approx(scipy.stats.kstwobign.sf(np.sqrt(300 * 200 / 500) * expected.statistic), rel=1e-10)


def test_ks_matches_root_kolmogorov_test(root_oracle):
    assert len(root_oracle["histograms"]) == 4
    for case in root_oracle["histograms"]:
        probability, distance = ks_test_binned(case["counts1"], case["counts2"], case["sumw2_1"], case["sumw2_2"])
        assert distance == pytest.approx(case["distance"], abs=1e-12), case["name"]
        # ROOT's TMath::KolmogorovProb truncates its series: agreement to 1e-8
        assert probability == pytest.approx(case["probability"], abs=1e-8), case["name"]


def test_ks_by_hand():
    # cumulative fractions (1/2, 1) and (0, 1): D = 1/2; n = 2·2/(2+2) = 1 → Q(0.5)
    assert ks_test_binned([1, 1], [0, 2]) == (pytest.approx(kolmogorov(0.5)), 0.5)
    # weights: effective entries (Σw)²/Σw² = 16/8 = 2 and 2: same as above
    assert ks_test_binned([2, 2], [0, 4], [4, 4], [0, 8])[0] == pytest.approx(kolmogorov(0.5))
    assert ks_test_binned([3, 1, 2], [3, 1, 2]) == (1.0, 0.0)


def test_ks_errors():
    with pytest.raises(ValueError, match=r"^ks_test_binned: counts1 and counts2 must have the same bins; got 2 and 3 bins"):
        ks_test_binned([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"^ks_test_binned: each histogram needs a positive sum of contents; got 0 and 3"):
        ks_test_binned([0, 0], [1, 2])
    with pytest.raises(ValueError, match=r"^ks_test_binned: sumw2_1 and sumw2_2 must have one value per bin, 2"):
        ks_test_binned([1, 2], [1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match=r"^ks_test_binned: counts2 must be a non-empty 1-D array of finite bin contents"):
        ks_test_binned([1, 2], [1, np.inf])


# ──────────────────────────────────────────────────────────── TMVA's overtraining check, as ROOT

def oracle_sample(part) -> Sample:
    return Sample.checked("oracle", (np.asarray(part["scores"], np.float32).astype(np.float64),
                                     part["classes"], np.asarray(part["weights"], np.float32).astype(np.float64)))


def test_tmva_binning_and_overtraining_match_root(root_oracle):
    assert [c["name"] for c in root_oracle["tmva"]] == ["similar", "overtrained_weighted", "outlier"]
    for case in root_oracle["tmva"]:
        test, train = oracle_sample(case["test"]), oracle_sample(case["train"])
        low, high = output_range(test)
        assert (low, high) == (pytest.approx(case["low"], abs=1e-12), pytest.approx(case["high"], abs=1e-12))
        result = overtraining_test(train, test)
        assert result["nbins"] == 40
        for label, signal in (("signal", True), ("background", False)):
            counts, sumw2 = output_histograms(*test.of_class(signal), low, high)
            ref = case[label]
            # ROOT normalised its histograms (NormHist): compare shapes and effective entries
            np.testing.assert_allclose(counts / counts.sum(), np.divide(ref["counts1"], sum(ref["counts1"])), atol=1e-12)
            np.testing.assert_allclose(counts.sum() ** 2 / sumw2.sum(), sum(ref["counts1"]) ** 2 / sum(ref["sumw2_1"]), rtol=1e-9)
            assert result[label]["distance"] == pytest.approx(ref["distance"], abs=1e-9), (case["name"], label)
            assert result[label]["probability"] == pytest.approx(ref["probability"], abs=1e-8), (case["name"], label)
    # the fixture has what it should: an overtrained case that fails, a similar one that passes,
    # and an outlier that narrows the range below the test sample's largest output
    assert root_oracle["tmva"][1]["signal"]["probability"] < 1e-2 < root_oracle["tmva"][0]["signal"]["probability"]
    outlier = root_oracle["tmva"][2]
    assert outlier["high"] < max(outlier["test"]["scores"])


def test_output_histograms_find_bins_as_root():
    # ROOT's bin of x: 1 + int(nbins·(x − low)/(high − low)); the top edge belongs to the overflow
    counts, sumw2 = output_histograms([0.0, 0.25, 0.5, 0.999, 1.0, -0.01], [1, 2, 3, 4, 5, 6], 0.0, 1.0, nbins=4)
    np.testing.assert_array_equal(counts, [1, 2, 3, 4])
    np.testing.assert_array_equal(sumw2, [1, 4, 9, 16])


def test_training_outputs_all_outside_the_range_fail_the_test():
    test = Sample.checked("test", ([0.1, 0.2, 0.6, 0.7], [0, 0, 1, 1], None))
    train = Sample.checked("train", ([5.0, 6.0, 0.65, 0.62], [0, 0, 1, 1], None))
    result = overtraining_test(train, test)
    assert result["background"] == {"probability": 0.0, "distance": 1.0}
    assert result["signal"]["probability"] > 0.5


# ──────────────────────────────────────────────────────────── classifier_results, files, table

@pytest.fixture()  # per test, so that each test is seen to run the code it checks (mutation testing)
def results():
    rng = np.random.default_rng(5)

    def sample(n, sharper):
        y = rng.integers(0, 2, n)
        s = 1 / (1 + np.exp(-rng.normal((1.0 + sharper) * (2 * y - 1), 1.0)))
        return s, y, rng.uniform(0.5, 1.5, n)

    train, test = sample(600, 0.8), sample(500, 0.0)
    return classifier_results("BPTT_LSTM", train=train, test=test), train, test


def test_classifier_results_figures(results):
    r, train, test = results
    m = r.metrics
    assert m["roc_integral"]["test"] == pytest.approx(skm.roc_auc_score(test[1], test[0], sample_weight=test[2]), abs=1e-12)
    assert m["roc_integral"]["train"] == pytest.approx(skm.roc_auc_score(train[1], train[0], sample_weight=train[2]), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(test[1], test[0], sample_weight=test[2], drop_intermediate=False)
    for key, level in (("0.01", 0.01), ("0.10", 0.1), ("0.30", 0.3)):
        e = m["signal_efficiency"][key]
        assert e["test"] == pytest.approx(np.interp(level, fpr, tpr), abs=1e-12)
        w = test[2][test[1] == 1]
        assert e["test_error"] == pytest.approx(np.sqrt(e["test"] * (1 - e["test"]) * np.sum(w**2) / w.sum() ** 2))
    assert m["events"]["test"]["signal"] == int(np.sum(test[1] == 1))
    assert m["events"]["test"]["background"] == int(np.sum(test[1] == 0)) != m["events"]["test"]["signal"]
    assert m["events"]["train"]["background_weight"] == pytest.approx(train[2][train[1] == 0].sum())
    assert m["weighted"] is True
    # the training sample is sharper: its efficiencies are higher and the KS test sees it
    assert m["signal_efficiency"]["0.10"]["train"] > m["signal_efficiency"]["0.10"]["test"]
    assert m["overtraining"]["signal"]["probability"] < 0.01


def test_table_in_tmva_style(results):
    r = results[0]
    text = r.table()
    e = r.metrics["signal_efficiency"]
    row = [line for line in text.splitlines() if line.startswith("dataset              BPTT_LSTM      : ")]
    assert row == [f"dataset              BPTT_LSTM      : {e['0.01']['test']:.3f} ({e['0.01']['train']:.3f})       "
                   f"{e['0.10']['test']:.3f} ({e['0.10']['train']:.3f})      {e['0.30']['test']:.3f} ({e['0.30']['train']:.3f})"]
    assert "Name:         Method:          @B=0.01    @B=0.10    @B=0.30    ROC-integ" in text
    assert f"{r.metrics['roc_integral']['test']:.3f}" in text
    assert "Testing for overtraining using the Kolmogorov-Smirnov test" in text
    assert "overtrained?" in text  # the probability is below 0.05
    assert "event weights used" in text


def test_unweighted_results_say_so():
    y = np.r_[np.ones(50), np.zeros(50)]
    s = np.linspace(0, 1, 100)[::-1] + 0.0
    r = classifier_results("M", train=(s, y, None), test=(s, y, np.ones(100)))
    assert r.metrics["weighted"] is False
    assert r.metrics["roc_integral"]["test"] == 1.0
    assert r.metrics["overtraining"]["signal"] == {"probability": 1.0, "distance": 0.0}
    assert "event weights: none" in r.table()


def test_write_root_trees(results, tmp_path):
    import uproot

    r, train, test = results
    rng = np.random.default_rng(1)
    X_train, X_test = rng.normal(size=(600, 2, 3)), rng.normal(size=(500, 2, 3))
    path = r.write_root(tmp_path / "out.root", X_train, X_test, [("vars_time0", 3), ("x*2", 1), ("y", 2)])
    assert os.listdir(tmp_path) == ["out.root"]
    with uproot.open(path) as f:
        assert {k.split(";")[0] for k in f.keys()} == {"dataset", "dataset/TrainTree", "dataset/TestTree"}
        for tree, (s, y, w), X in (("TrainTree", train, X_train), ("TestTree", test, X_test)):
            t = f[f"dataset/{tree}"]
            assert t.classname == "TTree"
            a = t.arrays(library="np")
            assert list(a) == ["classID", "className", "weight", "vars_time0", "x_2", "y", "BPTT_LSTM"]
            np.testing.assert_array_equal(a["classID"], np.where(y == 1, 0, 1))  # TMVA: 0 signal, 1 background
            assert list(a["className"][:6]) == ["Signal" if v == 1 else "Background" for v in y[:6]]
            np.testing.assert_allclose(a["weight"], w, rtol=1e-7)
            np.testing.assert_allclose(a["BPTT_LSTM"], s, rtol=1e-7)
            flat = X.reshape(len(X), 6)
            np.testing.assert_allclose(a["vars_time0"], flat[:, :3], rtol=1e-7)
            np.testing.assert_allclose(a["x_2"], flat[:, 3], rtol=1e-7)
            np.testing.assert_allclose(a["y"], flat[:, 4:], rtol=1e-7)
            assert a["x_2"].ndim == 1 and a["y"].shape == (len(X), 2)


def test_write_root_errors(results, tmp_path):
    r = results[0]
    with pytest.raises(ValueError, match=r"^write_root: the inputs must hold 6 values per event for 600 events"):
        r.write_root(tmp_path / "a.root", np.zeros((600, 5)), np.zeros((500, 6)), [("a", 6)])
    with pytest.raises(ValueError, match=r"^write_root: variables given without the inputs"):
        r.write_root(tmp_path / "a.root", None, None, [("a", 6)])
    bad = classifier_results("weight", train=(r.train.scores, r.train.y, None), test=(r.test.scores, r.test.y, None))
    with pytest.raises(ValueError, match=r"^write_root: the method name 'weight' must be a branch name"):
        bad.write_root(tmp_path / "a.root")
    assert os.listdir(tmp_path) == []


def test_write_json_and_plots(results, tmp_path):
    r = results[0]
    path = r.write_json(tmp_path / "m.json", source="data.root")
    data = json.loads(open(path).read())
    assert data["method"] == "BPTT_LSTM" and data["source"] == "data.root"
    assert data["metrics"]["roc_integral"] == r.metrics["roc_integral"]
    paths = r.plot(str(tmp_path), prefix="m_")
    assert [os.path.basename(p) for p in paths] == ["m_overtraining.png", "m_roc.png"]
    for p in paths:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(p) > 10_000


def test_classifier_results_input_errors():
    with pytest.raises(ValueError, match=r"^classifier_results: test must be a tuple \(scores, y, weights\); got dict"):
        classifier_results("M", train=([0.1, 0.2], [0, 1], None), test={})
    with pytest.raises(ValueError, match=r"^classifier_results \(train\): y_true holds only label 1"):
        classifier_results("M", train=([0.1, 0.2], [1, 1], None), test=([0.1, 0.2], [0, 1], None))


class _Loss:
    def __init__(self, name):
        self.name = name


class _Model:
    def __init__(self, loss, out):
        self.loss, self.out = _Loss(loss), np.asarray(out)

    def predict_proba(self, X):
        return self.out

    def decision_function(self, X):
        return self.out


def test_classifier_output_of_each_loss():
    X = np.zeros((3, 1, 1))
    np.testing.assert_array_equal(classifier_output(_Model("bce", [0.1, 0.9, 0.5]), X), [0.1, 0.9, 0.5])
    np.testing.assert_array_equal(classifier_output(_Model("mse", [[0.3], [0.2], [1.5]]), X), [0.3, 0.2, 1.5])
    np.testing.assert_array_equal(classifier_output(_Model("softmax_ce", [[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]]), X), [0.7, 0.1, 0.5])
    with pytest.raises(ValueError, match=r"^classifier_output: a softmax_ce network with output shape \(3,\) gives no"):
        classifier_output(_Model("softmax_ce", np.ones((3, 3)) / 3), X)


class _ScoreFirstInput:
    """A stand-in classifier whose output is the event's first input value (a sigmoid network's
    probability would do the same job; this keeps the expected scores exact)."""

    loss = _Loss("bce")

    def predict_proba(self, X):
        return np.asarray(X)[:, 0, 0]


def test_evaluate_events_scores_both_parts_in_file_order():
    from bptt.data.events import Events

    rng = np.random.default_rng(2)
    X = rng.uniform(size=(40, 2, 3))
    y = np.r_[np.ones(20), np.zeros(20)]
    is_train = np.arange(40) % 2 == 0
    w = rng.uniform(0.5, 2.0, 40)
    events = Events(X=X, y=y, weights=w, is_train=is_train, variables=[("a", 3), ("b", 3)], source="f.root")
    r = evaluate_events(_ScoreFirstInput(), events, "M")
    np.testing.assert_array_equal(r.test.scores, X[~is_train, 0, 0])
    np.testing.assert_array_equal(r.train.scores, X[is_train, 0, 0])
    np.testing.assert_array_equal(r.train.weights, w[is_train])
    np.testing.assert_array_equal(r.test.y, y[~is_train])
    assert r.metrics["roc_integral"]["test"] == pytest.approx(
        skm.roc_auc_score(y[~is_train], X[~is_train, 0, 0], sample_weight=w[~is_train]), abs=1e-12)
    no_test = Events(X=X, y=y, weights=w, is_train=np.ones(40, bool), source="f.root")
    with pytest.raises(ValueError, match=r"^evaluate_events: the events of f.root have no test part \(all 40 are for training\)"):
        evaluate_events(_ScoreFirstInput(), no_test, "M")


def test_whole_table_of_a_perfect_classifier_by_hand():
    y = np.r_[np.ones(50), np.zeros(50)]
    s = np.linspace(1, 0, 100)
    r = classifier_results("M", train=(s, y, None), test=(s, y, None), dataset="ds")
    rule = "-" * 115
    expected = "\n".join([
        "Evaluation on 50 signal and 50 background test events (50 + 50 for training); event weights: none (every event counts 1)",
        "",
        "Evaluation results ranked by best signal efficiency and purity (area)",
        rule,
        "DataSet       MVA              Signal efficiency at bkg eff.(error):",
        "Name:         Method:          @B=0.01    @B=0.10    @B=0.30    ROC-integ",
        "ds            M              : 1.000(00)  1.000(00)  1.000(00)  1.000",
        rule,
        "",
        "Testing efficiency compared to training efficiency (overtraining check)",
        rule,
        "DataSet              MVA              Signal efficiency: from test sample (from training sample) ",
        "Name:                Method:          @B=0.01             @B=0.10            @B=0.30   ",
        rule,
        "ds                   M              : 1.000 (1.000)       1.000 (1.000)      1.000 (1.000)",
        rule,
        "",
        "Testing for overtraining using the Kolmogorov-Smirnov test (40 bins, TH1::KolmogorovTest):",
        "M: signal (background) probability = 1 (1)",
    ])
    assert r.table() == expected


def test_table_of_weighted_events_and_large_errors():
    # sorted: 0.9 B → (1/4, 0); 0.6 S(w 3) → (1/4, 3/4); 0.5 B → (1/2, 3/4); 0.3 S(w 1) → (1/2, 1); then B, B
    y = [1, 1, 0, 0, 0, 0]
    s = [0.6, 0.3, 0.9, 0.5, 0.2, 0.1]
    w = [3.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    r = classifier_results("M", train=(s, y, w), test=(s, y, w))
    e = r.metrics["signal_efficiency"]
    assert (e["0.01"]["test"], e["0.10"]["test"], e["0.30"]["test"]) == (0.0, 0.0, 0.75)
    # effective signal events (3 + 1)² / (9 + 1) = 1.6: error √(0.75 · 0.25 / 1.6) = 0.342, printed as TMVA: (342)
    assert e["0.30"]["test_error"] == pytest.approx(np.sqrt(0.75 * 0.25 / 1.6))
    assert r.metrics["roc_integral"]["test"] == pytest.approx(11 / 16)  # (3·3 + 1·2) / (4·4)
    lines = r.table().splitlines()
    assert lines[0].endswith("event weights used: signal 4, background 4 in the test sample")
    assert lines[6] == "dataset       M              : 0.000(00)  0.000(00)  0.750(342)  0.688"


# ──────────────────────────────────────────────────────────── details that mutation testing asked for

def _np_mean_rms(x, w):
    mean = np.average(x, weights=w)
    return mean, np.sqrt(np.average((x - mean) ** 2, weights=w))


@pytest.mark.parametrize("swap", [False, True])
def test_output_range_narrows_each_side_to_its_class(swap):
    # one class: 0 (weight 9999) and an outlier -100 (weight 1); the other: 5 (weight 9999) and 60 (weight 1):
    # the low edge is the first class's mean - 10 RMS, the high edge the second's mean + 10 RMS
    a = (np.array([0.0, -100.0]), np.array([9999.0, 1.0]))
    b = (np.array([5.0, 60.0]), np.array([9999.0, 1.0]))
    sig, bkg = (b, a) if swap else (a, b)
    test = Sample.checked("test", (np.r_[sig[0], bkg[0]], [1, 1, 0, 0], np.r_[sig[1], bkg[1]]))
    (ma, ra), (mb, rb) = _np_mean_rms(*a), _np_mean_rms(*b)
    assert rb < 1  # the RMS is not floored at 1
    low, high = output_range(test)
    assert low == pytest.approx(ma - 10 * ra, abs=1e-9) and low > -100
    assert high == pytest.approx(mb + 10 * rb + 1e-5, abs=1e-9) and high < 60


def test_output_histograms_with_an_offset_range():
    counts, _ = output_histograms([1.0, 1.3, 1.6, 1.99, 2.0, 0.9], [1, 1, 1, 1, 1, 1], 1.0, 2.0, nbins=2)
    np.testing.assert_array_equal(counts, [2, 2])


def test_overtraining_test_bins_and_odd_training_classes():
    test = Sample.checked("test", ([0.1, 0.2, 0.3, 0.6, 0.7, 0.8], [0, 0, 0, 1, 1, 1], None))
    # two bins over [0.1, 0.8 + 1e-5): background test (3, 0), signal test (0, 3)
    train = Sample.checked("train", ([0.15, 0.5, 0.7, 0.75], [0, 0, 1, 1], None))
    r = overtraining_test(train, test, nbins=2)
    assert r["nbins"] == 2 and r["range"] == [0.1, pytest.approx(0.80001)]
    # background: (3, 0) against (1, 1): D = 1/2, n = 3·2/5
    assert r["background"]["distance"] == pytest.approx(0.5)
    assert r["background"]["probability"] == pytest.approx(kolmogorov(0.5 * np.sqrt(6 / 5)))
    assert r["signal"] == {"probability": 1.0, "distance": 0.0}
    # the signal's training outputs all outside the range: probability 0; the background still tested
    out = overtraining_test(Sample.checked("train", ([0.15, 0.5, 5.0, 6.0], [0, 0, 1, 1], None)), test)
    assert out["signal"] == {"probability": 0.0, "distance": 1.0} and out["background"]["probability"] > 0
    # training weights that cancel: nothing to compare either
    out = overtraining_test(Sample.checked("train", ([0.15, 0.2, 0.7, 0.75], [0, 0, 1, 1], [1, 1, 1, -1])), test)
    assert out["signal"] == {"probability": 0.0, "distance": 1.0}
    # small weights (a total below 1) are compared as any others
    out = overtraining_test(Sample.checked("train", ([0.15, 0.2, 0.7, 0.75], [0, 0, 1, 1], [0.1, 0.1, 0.1, 0.1])), test)
    assert out["signal"]["probability"] > 0.5


def test_weighted_flag_looks_at_both_samples():
    s, y = [0.2, 0.8, 0.3, 0.7], [0, 1, 0, 1]
    assert classifier_results("M", train=(s, y, None), test=(s, y, [1, 2, 1, 1])).metrics["weighted"] is True
    assert classifier_results("M", train=(s, y, [1, 2, 1, 1]), test=(s, y, None)).metrics["weighted"] is True
    assert classifier_results("M", train=(s, y, [1, 1, 1, 1]), test=(s, y, None)).metrics["weighted"] is False


def test_samples_may_be_given_as_sample_objects_and_are_checked():
    s, y = [0.2, 0.8, 0.3, 0.7], [0, 1, 0, 1]
    given = Sample.checked("x", (s, y, [1, 2, 3, 4]))
    r = classifier_results("M", train=given, test=given)
    np.testing.assert_array_equal(r.train.weights, [1, 2, 3, 4])
    assert r.method == "M" and r.dataset == "dataset"
    with pytest.raises(ValueError, match=r"^classifier_results: train must be a tuple \(scores, y, weights\); got tuple"):
        classifier_results("M", train=(s, y), test=(s, y, None))
    with pytest.raises(ValueError, match=r"^classifier_results \(test\): sample_weight must have one value per label"):
        classifier_results("M", train=(s, y, None), test=(s, y, [1, 2]))


def test_evaluate_events_names_the_method_and_a_nameless_source():
    from bptt.data.events import Events

    X = np.linspace(0, 1, 8).reshape(8, 1, 1)
    y = np.r_[np.zeros(4), np.ones(4)]
    events = Events(X=X, y=y, weights=np.ones(8), is_train=np.arange(8) % 2 == 0)
    assert evaluate_events(_ScoreFirstInput(), events, "DL_LSTM").method == "DL_LSTM"
    events.is_train[:] = True
    with pytest.raises(ValueError, match=r"^evaluate_events: the events of the data have no test part"):
        evaluate_events(_ScoreFirstInput(), events, "M")


class _TwoOutputs:
    """Probabilities and raw outputs that differ, to see which one is used."""

    def __init__(self, loss, proba, raw):
        self.loss, self.proba, self.raw = _Loss(loss), np.asarray(proba, np.float32), np.asarray(raw, np.float32)

    def predict_proba(self, X):
        return self.proba[: len(X)]

    def decision_function(self, X):
        return self.raw[: len(X)]


def test_classifier_output_uses_probabilities_or_outputs_as_tmva():
    X = np.zeros((2, 1, 1))
    np.testing.assert_allclose(classifier_output(_TwoOutputs("bce", [[0.1], [0.9]], [[-2], [2]]), X), [0.1, 0.9])
    np.testing.assert_allclose(classifier_output(_TwoOutputs("mse", [[9], [9]], [[0.3], [1.5]]), X), [0.3, 1.5])
    soft = _TwoOutputs("softmax_ce", [[0.3, 0.7], [0.8, 0.2]], [[-1.0, 1.0], [1.0, -1.0]])
    np.testing.assert_allclose(classifier_output(soft, X), [0.7, 0.2])


def test_branch_names_of_variables():
    import uproot

    s, y = [0.2, 0.8, 0.3, 0.7], [0, 1, 0, 1]
    r = classifier_results("BPTT_lstm", train=(s, y, None), test=(s, y, None))
    names = ["classID", "weight", "BPTT_lstm", "a b", "a-b", "a*b", "()", "(x)", "Jet_PT", "maxX", "maxX"]
    variables = [(n, 1) for n in names]
    X = np.arange(4 * len(names), dtype=float).reshape(4, len(names))
    import tempfile

    path = r.write_root(os.path.join(tempfile.mkdtemp(), "v.root"), X, X, variables)
    with uproot.open(path) as f:
        t = f["dataset/TestTree"]
        assert t.keys() == ["classID", "className", "weight", "classID_1", "weight_1", "BPTT_lstm_1", "a_b", "a_b_1",
                            "a_b_2", "var", "x", "Jet_PT", "maxX", "maxX_1", "BPTT_lstm"]
        assert t.title == "TestTree" and f["dataset/TrainTree"].title == "TrainTree"
        for branch in ("weight", "BPTT_lstm", "a_b"):
            assert t[branch].typename == "float"  # TMVA's trees hold floats
        np.testing.assert_array_equal(t["maxX_1"].array(library="np"), X[:, -1])
    for bad in (None, "1abc", "a-b", "className"):
        with pytest.raises(ValueError, match=r"^write_root: the method name .* must be a branch name"):
            classifier_results(bad, train=(s, y, None), test=(s, y, None)).write_root(os.path.join(tempfile.mkdtemp(), "v.root"))


def test_json_has_the_dataset_and_the_extra_keys(tmp_path):
    s, y = [0.2, 0.8, 0.3, 0.7], [0, 1, 0, 1]
    r = classifier_results("M", train=(s, y, None), test=(s, y, None), dataset="ds")
    r.extra["run"] = 7
    data = json.loads(open(r.write_json(tmp_path / "r.json", source="f")).read())
    assert (data["dataset"], data["run"], data["source"], data["method"]) == ("ds", 7, "f", "M")


def test_plot_draws_what_the_results_hold(monkeypatch, tmp_path):
    import bptt.plots

    calls = {}

    def record(name):
        def fn(*args, **kwargs):
            calls[name] = (args, kwargs)
            return str(args[-1] if name == "plot_rejection" else args[2])
        return fn

    monkeypatch.setattr(bptt.plots, "plot_overtraining", record("plot_overtraining"))
    monkeypatch.setattr(bptt.plots, "plot_rejection", record("plot_rejection"))
    test = ([0.1, 0.9, 0.4, 0.6, 0.3], [0, 1, 0, 1, 1], [1, 2, 1, 1, 3])
    train = ([0.2, 0.8, 0.35, 0.65], [0, 1, 0, 1], [2, 1, 1, 1])
    r = classifier_results("M", train=train, test=test)
    paths = r.plot(str(tmp_path))
    assert paths == [str(tmp_path / "overtraining.png"), str(tmp_path / "roc.png")]
    (t_arg, tr_arg, path), kw = calls["plot_overtraining"]
    assert path == str(tmp_path / "overtraining.png")
    np.testing.assert_array_equal(t_arg["signal"][0], [0.9, 0.6, 0.3])
    np.testing.assert_array_equal(t_arg["signal"][1], [2, 1, 3])
    np.testing.assert_array_equal(t_arg["background"][0], [0.1, 0.4])
    np.testing.assert_array_equal(tr_arg["signal"][0], [0.8, 0.65])
    np.testing.assert_array_equal(tr_arg["background"][1], [2, 1])
    ks = r.metrics["overtraining"]
    assert kw == {"value_range": tuple(ks["range"]), "bins": 40,
                  "ks": {"signal": ks["signal"]["probability"], "background": ks["background"]["probability"]},
                  "title": "M: classifier output, training vs test"}
    (curves, path), kw = calls["plot_rejection"]
    assert path == str(tmp_path / "roc.png") and kw == {"title": "M: background rejection vs signal efficiency"}
    eff_s, rejection, area = curves["M"]
    fpr, tpr, _ = skm.roc_curve(test[1], test[0], sample_weight=test[2], drop_intermediate=False)
    np.testing.assert_allclose(eff_s, tpr)
    np.testing.assert_allclose(rejection, 1 - fpr)
    assert area == r.metrics["roc_integral"]["test"]


def test_metrics_messages_and_boundaries_mutation_testing_asked_for():
    # efficiency_curve: the label checks speak in its name; a total weight of exactly 0 is refused
    with pytest.raises(ValueError, match=r"^efficiency_curve: y_true holds only label 1 \(signal\)"):
        efficiency_curve([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"^efficiency_curve: the signal events' sample_weight sums to 0; "):
        efficiency_curve([1, 1, 0], [0.2, 0.3, 0.1], [1, -1, 1])
    with pytest.raises(ValueError, match=r"^efficiency_curve: the background events' sample_weight sums to 0; "):
        efficiency_curve([1, 0, 0], [0.2, 0.3, 0.1], [1, 1, -1])
    # ks_test_binned: each argument named in its message; sums below 1 are fine, a zero sum is not
    for args, name in ((([np.nan, 1], [1, 1]), "counts1"), (([1, 1], [1, 1], [1, np.inf], None), "sumw2_1"),
                       (([1, 1], [1, 1], None, [np.nan, 1]), "sumw2_2")):
        with pytest.raises(ValueError, match=rf"^ks_test_binned: {name} must be a non-empty 1-D array of finite bin contents"):
            ks_test_binned(*args)
    with pytest.raises(ValueError, match=r"^ks_test_binned: counts1 must be a 1-D array of bin contents; got list"):
        ks_test_binned(["a", "b"], [1, 2])
    with pytest.raises(ValueError, match=r"^ks_test_binned: counts2 must be a non-empty 1-D array of finite bin contents; got shape \(1, 2\)"):
        ks_test_binned([1, 2], [[1, 2]])
    assert ks_test_binned([0.25, 0.25], [0.1, 0.3], [0.1, 0.1], [0.1, 0.1])[1] == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"^ks_test_binned: each histogram needs a positive sum of contents; got 3 and 0"):
        ks_test_binned([1, 2], [0, 0])


def test_kolmogorov_probability_near_two_keeps_its_precision():
    for z in (1.5, 1.9, 1.99):
        assert kolmogorov_probability(z) == pytest.approx(kolmogorov(z), rel=1e-14, abs=0)
