"""Files and formats: the bptt model file and training checkpoints (JSON configuration +
safetensors arrays), ONNX export/import, and PyTorch / Keras weight conversion.

onnx, h5py, torch and keras are imported only inside the functions that need them. This package
reads and writes configurations, arrays and layers; it never imports the network
(:mod:`bptt.model`), which builds itself from them: :func:`bptt.model.load_model`,
:func:`bptt.model.import_onnx`.
"""

from .keras_weights import from_keras, layers_from_keras, read_keras_weights, to_keras
from .model_file import load_checkpoint, read_file, read_model, save_checkpoint, save_model, write_file
from .onnx import export_onnx, read_onnx
from .torch_weights import from_torch, load_torch_into, to_torch, torch_state_dict

__all__ = [
    "save_model", "read_model", "save_checkpoint", "load_checkpoint", "write_file", "read_file",
    "export_onnx", "read_onnx",
    "from_torch", "to_torch", "torch_state_dict", "load_torch_into",
    "from_keras", "to_keras", "read_keras_weights", "layers_from_keras",
]
