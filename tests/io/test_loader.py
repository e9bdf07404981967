"""DataLoader's split, renormalisation, layouts and messages, with hand numbers from TMVA's
DataSetFactory.cxx (MixEvents, RenormEvents) and small files written with uproot."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import uproot

from bptt.data.events import tmva_split
from bptt.data.loader import DataLoader
from bptt.data.splitting import assign_split, parse_split_options, renormalise, split_sizes


@pytest.fixture
def small(tmp_path):
    """sig: 10 entries (x = 0…9), bkg: 7 entries (x = 100…106), arrays a[2] = (x, -x), weight w = 1 + x/100."""
    path = tmp_path / "small.root"
    with uproot.recreate(path) as f:
        for name, x in (("sig", np.arange(10.0)), ("bkg", 100.0 + np.arange(7.0))):
            f[name] = {"x": x, "a": np.stack([x, -x], axis=1).astype(np.float32), "w": 1.0 + x / 100}
    return str(path)


def _loader(path, **kw):
    loader = DataLoader(**kw)
    loader.AddVariable("x")
    loader.AddSignalTree((path, "sig"))
    loader.AddBackgroundTree((path, "bkg"))
    return loader


# ───────────────────────────────────────────── split sizes: DataSetFactory::MixEvents' three cases

@pytest.mark.parametrize(
    "R,S,avail,expected",
    [
        ((0, 0, (0, 0, 10), (5, 5, 5))),   # case C: half and half
        ((0, 0, (0, 0, 7), (3, 3, 3))),    # odd: 3 + 3, one event not used
        ((0, 0, (4, 0, 2), (4, 2, 0))),    # trees assign 4 to training, 2 undefined cannot balance: to testing
        ((0, 0, (0, 6, 2), (2, 6, 2))),    # ... or to training
        ((0, 0, (2, 0, 6), (4, 4, 2))),    # enough undefined: (2+6)/2 each, 2 of them to training
        ((8, 0, (0, 0, 10), (8, 2, 8))),   # case B: the rest for testing
        ((0, 3, (0, 0, 10), (7, 3, 7))),   # case B the other way
        ((3, 2, (0, 0, 10), (3, 2, 5))),   # case A: 5 free, half of them (2) left between the parts
    ],
)
def test_split_sizes_are_tmvas(R, S, avail, expected):
    assert split_sizes(R, S, avail) == expected


@pytest.mark.parametrize("R,S,match", [(11, 0, "nTrain_Signal=11 but class Signal has only 10"),
                                       (0, 12, "nTest_Signal=12 but class Signal has only 10"),
                                       (6, 5, "ask for 11 events but class Signal has only 10")])
def test_more_than_available_is_refused(R, S, match):
    with pytest.raises(ValueError, match=match):
        split_sizes(R, S, (0, 0, 10))


def test_alternate_and_block_assignment():
    rng = np.random.default_rng(0)
    tr, te, _, _ = assign_split(7, 0, 0, 3, 3, 3, "ALTERNATE", rng)
    assert tr.tolist() == [0, 2, 4] and te.tolist() == [1, 3, 5]
    with pytest.warns(UserWarning, match="8 training events asked but alternating over 10 events gives 5"):
        tr, te, _, _ = assign_split(10, 0, 0, 8, 2, 8, "ALTERNATE", rng)  # TMVA alternates all the way
    assert tr.tolist() == [0, 2, 4, 6, 8] and te.tolist() == [1, 3]
    tr, te, _, _ = assign_split(10, 0, 0, 3, 2, 5, "BLOCK", rng)
    assert tr.tolist() == [0, 1, 2] and te.tolist() == [5, 6]


def test_random_split_is_tmva_split_for_the_default():
    y = np.r_[np.ones(10), np.zeros(8)]
    rng = np.random.default_rng(100)
    tr_s, _, _, _ = assign_split(10, 0, 0, 5, 5, 5, "RANDOM", rng)
    tr_b, _, _, _ = assign_split(8, 0, 0, 4, 4, 4, "RANDOM", rng)
    expected = tmva_split(y, seed=100)
    assert np.flatnonzero(expected[:10]).tolist() == tr_s.tolist()
    assert np.flatnonzero(expected[10:]).tolist() == tr_b.tolist()


# ───────────────────────────────────────────── NormMode: DataSetFactory::RenormEvents

def test_renormalise_hand_numbers():
    w = np.array([1.0, 2.0, 3.0, 7.0, 1.0, 1.0, 9.0])
    train = np.array([1, 1, 1, 0, 1, 1, 0], bool)
    cls = np.array([0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(renormalise(w, train, cls, "NONE"), w)
    # NumEvents: each class's training weights sum to its number of training events
    np.testing.assert_allclose(renormalise(w, train, cls, "NUMEVENTS"), [0.5, 1.0, 1.5, 7.0, 1.0, 1.0, 9.0])
    # EqualNumEvents: to the first class's number of training events (3); test weights untouched
    np.testing.assert_allclose(renormalise(w, train, cls, "EQUALNUMEVENTS"), [0.5, 1.0, 1.5, 7.0, 1.5, 1.5, 9.0])
    with pytest.raises(ValueError, match="training weights of class Background sum to 0, so they cannot be scaled to 3"):
        renormalise(np.array([1.0, 1.0, 1.0, 1.0, -1.0]), np.ones(5, bool), np.array([0, 0, 0, 1, 1]), "EQUALNUMEVENTS")


def test_loader_default_is_equal_num_events(small):
    loader = _loader(small)
    loader.SetWeightExpression("w")
    ev = loader.PrepareTrainingAndTestTree("", "SplitMode=Block")
    # signal: 5 train (x 0…4, w 1.00…1.04, sum 5.10) scaled to 5; background: 3 train scaled to 5 as well
    sig_tr = ev.is_train & (ev.y == 1)
    bkg_tr = ev.is_train & (ev.y == 0)
    assert ev.weights[sig_tr].sum() == pytest.approx(5.0) and ev.weights[bkg_tr].sum() == pytest.approx(5.0)
    np.testing.assert_allclose(ev.weights[sig_tr], np.array([1.0, 1.01, 1.02, 1.03, 1.04]) * 5 / 5.10)
    np.testing.assert_allclose(ev.weights[~ev.is_train & (ev.y == 1)], [1.05, 1.06, 1.07, 1.08, 1.09])
    assert ev.X[:, 0].tolist() == [*range(10), 100, 101, 102, 103, 104, 105]  # 7 background: 3 + 3, one left out


def test_train_test_trees_and_train_test_split(small):
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddSignalTree((small, "sig"), 1.0, "Training")
    loader.AddSignalTree((small, "bkg"), 1.0, "Test")
    loader.AddBackgroundTree((small, "bkg"))
    ev = loader.PrepareTrainingAndTestTree("", "TrainTestSplit_Background=0.5:NormMode=None")
    sig = ev.y == 1
    assert ev.is_train[sig].tolist() == [True] * 10 + [False] * 7
    assert ev.n_train == 10 + 3 and ev.n_test == 7 + 4
    with pytest.raises(ValueError, match="give every tree of a class a type"):
        loader.AddSignalTree((small, "sig"))


def test_prepare_forms(small):
    ev = _loader(small).PrepareTrainingAndTestTree("x != 3", 4, 3, 2, 2, "SplitMode=Block:NormMode=None")
    assert ev.X[ev.is_train, 0].tolist() == [0, 1, 2, 4, 100, 101, 102]
    # case A in Block mode: TMVA leaves half of the unused events (3 // 2 = 1, 2 // 2 = 1) before the test part
    assert ev.X[~ev.is_train, 0].tolist() == [6, 7, 104, 105]
    ev = _loader(small).PrepareTrainingAndTestTree("x < 5", "x > 102", "SplitMode=Alternate:NormMode=None")
    assert ev.X[:, 0].tolist() == [0, 1, 2, 3, 103, 104, 105, 106]
    assert ev.is_train.tolist() == [True, False, True, False, True, False, True, False]
    with pytest.raises(ValueError, match="expected \\(cut, options\\)"):
        _loader(small).PrepareTrainingAndTestTree("", 1.5, None)


# ───────────────────────────────────────────── layouts

def test_layouts(small):
    loader = DataLoader()
    loader.AddVariablesArray("a", 2)
    loader.AddVariablesArray("x", 1)
    loader.AddSignalTree((small, "sig"))
    loader.AddBackgroundTree((small, "bkg"))
    assert loader.PrepareTrainingAndTestTree("").X.shape == (16, 3)  # mixed sizes: flat
    assert loader.PrepareTrainingAndTestTree("", input_layout="3|1").X.shape == (16, 3, 1)
    with pytest.raises(ValueError, match=r"InputLayout 2\|2 says 4 inputs per event; the variables give 3 \(a: 2, x\[0\]: 1\)"):
        loader.PrepareTrainingAndTestTree("", input_layout=(2, 2))
    arrays = DataLoader()
    for _ in ("a",):
        arrays.AddVariablesArray("a", 2)
    arrays.AddSignalTree((small, "sig"))
    arrays.AddBackgroundTree((small, "bkg"))
    ev = arrays.PrepareTrainingAndTestTree("")
    assert ev.X.shape == (16, 1, 2) and ev.X[1, 0].tolist() == [1.0, -1.0]
    assert _loader(small).PrepareTrainingAndTestTree("").X.shape == (16, 1)


# ───────────────────────────────────────────── options and messages

@pytest.mark.parametrize(
    "options,match",
    [
        ("nTrain_Sig=3", "bptt has the classes Signal and Background"),
        ("SplitMode=Shuffle", "SplitMode is one of Random, Alternate, Block; got 'Shuffle'"),
        ("NormMode=Equal", "NormMode is one of None, NumEvents, EqualNumEvents"),
        ("nTrain_Signal=1e3", "is a number of events"),
        ("nTrain_Signal=٣", "is a number of events"),
        ("SplitSeed=-1", "SplitSeed is a non-negative integer"),
        ("ScaleWithPreselEff", "does not scale the requested numbers"),
        ("TrainTestSplit_Signal=1.5", "is a fraction"),
        ("Foo=1", "unknown option; TMVA's are nTrain_Signal"),
        ("SplitMode=Block:splitmode=Random", "SplitMode is given twice"),
        ("!V=True", "write either !V or V=False"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_split_options(options)
    assert "PrepareTrainingAndTestTree options" in str(info.value)


def test_options_case_and_defaults():
    o = parse_split_options("ntrain_signal=5:SPLITMODE=block:!V:!Correlations:!CalcCorrelations")
    assert o.n_train["Signal"] == 5 and o.split_mode == "BLOCK" and o.mix_mode == "BLOCK"
    assert o.split_seed == 100 and o.norm_mode == "EQUALNUMEVENTS" and not o.verbose
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_split_options("nTrain_Signal=0:SplitMode=Random:SplitSeed=100:NormMode=NumEvents:!V:!CalcCorrelations")
    with pytest.warns(UserWarning, match=r"no effect in bptt.*Correlations, MixMode=Block"):
        parse_split_options("Correlations:MixMode=Block")


def test_verbose_prints_the_counts(small, capsys):
    _loader(small).PrepareTrainingAndTestTree("", "V")
    assert "dataset: Signal: 5 training and 5 test events of 10 after the cuts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda L: L.AddTree(("f.root", "t"), "Sig"), "class_name must be 'Signal' or 'Background'"),
        (lambda L: L.AddTree("f.root", "Signal"), "name the tree as 'file.root:tree'"),
        (lambda L: L.AddTree(3, "Signal"), "a tree must be an uproot tree"),
        (lambda L: L.AddTree(("f.root", "t"), "Signal", float("nan")), "weight must be a finite number"),
        (lambda L: L.AddTree(("f.root", "t"), "Signal", 1.0, "", "Validation"), "tree_type must be"),
        (lambda L: L.AddVariable("x >"), "expected a number, a branch name"),
        (lambda L: L.AddVariablesArray("abs(x)", 3), "must be a branch name"),
        (lambda L: L.AddVariablesArray("x", 0), "size must be an integer in 1"),
        (lambda L: L.SetWeightExpression("w", "Sig"), "class_name must be 'Signal', 'Background' or ''"),
        (lambda L: (L.AddVariable("x"), L.AddVariable("x")), "variable 'x' is already added"),
    ],
)
def test_api_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(DataLoader())


def test_missing_class_and_no_variables(small):
    loader = DataLoader()
    loader.AddVariable("x")
    loader.AddSignalTree((small, "sig"))
    with pytest.raises(ValueError, match="no tree of class Background; add one with AddBackgroundTree"):
        loader.PrepareTrainingAndTestTree("")
    loader = DataLoader()
    loader.AddSignalTree((small, "sig"))
    loader.AddBackgroundTree((small, "bkg"))
    with pytest.raises(ValueError, match="no input variables"):
        loader.PrepareTrainingAndTestTree("")


def test_cut_removing_a_class_and_label_syntax(small):
    loader = DataLoader()
    loader.AddVariable("twice := 2*x")
    loader.AddSignalTree((small, "sig"))
    loader.AddBackgroundTree((small, "bkg"))
    assert loader.labels == ["twice"] and loader.variables == [("2*x", 1)]
    with pytest.raises(ValueError, match="class Signal has no training events \\(0 events pass the cuts\\)"):
        loader.PrepareTrainingAndTestTree("x > 200", "x > 0", "")
    loader.SetCut("")  # PrepareTrainingAndTestTree's cuts stay with the loader, as in TMVA
    loader.SetWeightExpression("1/(x-3)")
    with pytest.raises(ValueError, match=r"weight expression '1/\(x-3\)' is inf in entry 3 of tree small.root:sig"):
        loader.PrepareTrainingAndTestTree("")


def test_uproot_tree_object(small):
    with uproot.open(small) as f:
        loader = DataLoader()
        loader.AddVariable("x")
        loader.AddSignalTree(f["sig"])
        loader.AddBackgroundTree(f["bkg"])
        ev = loader.PrepareTrainingAndTestTree("")
    assert len(ev.y) == 16 and "small.root:sig (Signal)" in ev.source
