"""A model's ``inputs`` (which branches it reads) survive save and load, and a bad list is refused."""

import numpy as np
import pytest

from bptt.data.events import Events, tmva_split
from bptt.layers import Dense
from bptt.model import Sequential


def test_inputs_round_trip(tmp_path):
    model = Sequential.from_tmva("LSTM|2|3|2,RESHAPE|FLAT,LINEAR", "2|3", seed=0)
    model.inputs = [{"name": "vars_time0", "size": 3}, {"name": "vars_time1", "size": 3}]
    back = Sequential.load(model.save(tmp_path / "m.bptt"))
    assert back.inputs == [{"name": "vars_time0", "size": 3}, {"name": "vars_time1", "size": 3}]
    assert Sequential.load(Sequential([Dense(4, 1)]).save(tmp_path / "n.bptt")).inputs is None


@pytest.mark.parametrize("bad", [[], [{"name": "", "size": 1}], [{"name": "x", "size": 0}], [{"name": "x", "size": True}],
                                 [{"name": "x"}], ["x"], {"name": "x", "size": 1}])
def test_bad_inputs_are_refused(bad):
    cfg = Sequential([Dense(4, 1)]).config()
    cfg["inputs"] = bad
    with pytest.raises(ValueError, match="inputs must be a non-empty list"):
        Sequential.from_config(cfg)


def test_tmva_split_halves_each_class_and_is_seeded():
    y = np.r_[np.ones(7), np.zeros(10)]
    a, b, c = tmva_split(y, seed=100), tmva_split(y, seed=100), tmva_split(y, seed=1)
    assert (a == b).all() and (a != c).any()
    assert int(a[y == 1].sum()) == 3 and int(a[y == 0].sum()) == 5
    ev = Events(X=np.arange(17.0)[:, None], y=y, weights=np.ones(17), is_train=a)
    assert ev.n_train == 8 and ev.n_test == 9
    X_te, y_te, _ = ev.test()
    assert (X_te[:, 0] == np.flatnonzero(~a)).all() and (y_te == y[~a]).all()
    with pytest.raises(ValueError, match=r"weights must have shape \(17,\)"):
        Events(X=np.zeros((17, 1)), y=y, weights=np.ones(3), is_train=a)


# ragged sequences' jagged branches (issue 20): "jagged" and "max_length" in a model's inputs
GOOD = [{"name": "trk_pt", "size": 1, "jagged": True, "max_length": 40}, {"name": "trk_eta", "size": 1, "jagged": True},
        {"name": "met", "size": 1, "jagged": False}]


def test_jagged_inputs_are_kept_as_given():
    cfg = Sequential([Dense(4, 1)]).config()
    cfg["inputs"] = [dict(d) for d in GOOD]
    model = Sequential.from_config(cfg)
    assert model.inputs == GOOD
    cfg["inputs"][0]["max_length"] = 7  # the model holds its own copies
    assert model.inputs[0]["max_length"] == 40


@pytest.mark.parametrize("entry", [
    {"name": "t", "size": 1, "jagged": "yes"}, {"name": "t", "size": 1, "jagged": 1},
    {"name": "t", "size": 1, "jagged": True, "max_length": 0}, {"name": "t", "size": 1, "jagged": True, "max_length": -3},
    {"name": "t", "size": 1, "jagged": True, "max_length": True}, {"name": "t", "size": 1, "jagged": True, "max_length": 2.0},
    {"name": "t", "size": 1, "jagged": True, "max_length": "40"}, {"name": "t", "size": 1, "jagged": True, "unit": "GeV"},
    {"name": 7, "size": 1}, {"name": "t", "size": 1.0}, {"name": "t", "size": -1},
], ids=lambda d: "-".join(f"{k}={v!r}" for k, v in d.items() if k != "name" or v != "t"))
def test_bad_jagged_entries_are_refused_with_the_list_shown(entry):
    cfg = Sequential([Dense(4, 1)]).config()
    cfg["inputs"] = [dict(GOOD[0]), entry]
    message = ("Sequential.from_config: inputs must be a non-empty list of {'name': str, 'size': int > 0} (and "
               "'jagged': bool, 'max_length': int > 0 for a ragged sequence's branches); got " + repr(cfg["inputs"]))
    with pytest.raises(ValueError) as info:
        Sequential.from_config(cfg)
    assert str(info.value) == message


def test_inputs_of_none_mean_no_list():
    cfg = Sequential([Dense(4, 1)]).config()
    cfg["inputs"] = None
    assert Sequential.from_config(cfg).inputs is None
