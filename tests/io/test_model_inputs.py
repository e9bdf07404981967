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
