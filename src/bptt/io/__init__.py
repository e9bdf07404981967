"""Files: the bptt model file and training checkpoints (JSON configuration + safetensors arrays)."""

from .model_file import load_checkpoint, load_model, read_file, save_checkpoint, save_model, write_file

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "write_file", "read_file"]
