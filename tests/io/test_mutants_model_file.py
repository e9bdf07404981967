"""bptt.io.model_file's refusals, where mutation testing found no test (docs/mutation.md).

Each message is the one the module documents for that mistake, naming the function called and
the file; the files are written here by hand (safetensors with and without bptt's metadata).
"""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from bptt.io.model_file import load_checkpoint, read_file, read_model, save_model, write_file
from bptt.model import Sequential, load_model


def test_a_missing_file_is_named_by_the_function_called(tmp_path):
    missing = str(tmp_path / "nope.bptt")
    for fn in (read_file, read_model, load_model, load_checkpoint):
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: no such file: {missing!r}$"):
            fn(missing)


def test_a_plain_safetensors_file_is_not_a_model(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    save_file({"a": np.zeros(2, np.float32)}, path)  # no __metadata__ at all
    with pytest.raises(ValueError) as info:
        read_file(path)
    assert str(info.value) == f"read_file: {path!r} is not a bptt model or checkpoint file (KeyError: 'bptt')"


@pytest.mark.parametrize("load", [read_model, load_model, load_checkpoint])
def test_a_document_without_a_model(tmp_path, load):
    path = str(tmp_path / "empty.bptt")
    write_file(path, {"training": {"epoch": 1}}, {"param/x": np.zeros(1)})
    with pytest.raises(ValueError, match=rf"^{load.__name__}: {path!r} holds no model configuration$"):
        load(path)


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / "m.bptt")
    save_model(Sequential.from_tmva("DENSE|3|TANH,LINEAR", "1|4", seed=0), path)
    with pytest.raises(ValueError, match=rf"^load_checkpoint: {path!r} is a model file, not a training checkpoint$"):
        load_checkpoint(path)
    assert isinstance(load_model(path), Sequential)


def test_read_model_gives_the_configuration_and_the_parameters(tmp_path):
    model = Sequential.from_tmva("GRU|3|2|4|0|0,LINEAR", "4|2", seed=5)
    path = save_model(model, tmp_path / "m.bptt")
    config, params = read_model(path)
    assert config == model.config()
    assert sorted(params) == sorted(model.parameters())
    for k, p in model.parameters().items():
        np.testing.assert_array_equal(params[k], p)
