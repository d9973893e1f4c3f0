"""Save and load a trained model as a folder: config.json, model.safetensors (the torch
weights, for training and export) and code_encoder.npz (the encoder as numpy arrays, what the
build and every query encode with). Reading the encoder needs no torch; torch is imported only
to save a model or to load its weights."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hashindex.code_encoder import CodeEncoder
from hashindex.errors import HashIndexError
from hashindex.models import create_model
from hashindex.models.config import ModelConfig
from hashindex.store.fsutil import publish
from hashindex.store.layout import ENCODER_DIR
from hashindex.version import __version__
from hashindex.versioned_json import read_versioned_json

# 2: the variant's options nested under "options"; format 1 (flat) still loads (config.py)
MODEL_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_FILE = "code_encoder.npz"

if TYPE_CHECKING:
    from hashindex.models.base import BinaryAutoencoder


def save_model(
    model: BinaryAutoencoder, path: str | os.PathLike, extra: dict | None = None
) -> Path:
    """Write the model folder atomically: a temporary folder committed into place as every
    on-disk change is (store/fsutil.publish: the user's modes where mkdtemp and safetensors
    make theirs private, everything fsynced, one atomic rename, the parent fsynced)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        config = {
            "format": "hashindex-binary-autoencoder",
            "format_version": MODEL_FORMAT_VERSION,
            "hashindex_version": __version__,
            "model": model.config.to_dict(),
            **(extra or {}),
        }
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE))
        if not model.reads_tokens:  # a sequence model encodes in torch (models/sequence.py)
            model.export_encoder().save(staging / ENCODER_FILE)
        publish(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_model_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise HashIndexError(f"{path} is not a model folder: {CONFIG_FILE} is missing")
    return read_versioned_json(config_path, "model", READABLE_FORMAT_VERSIONS,
                               "retrain the model with this version")


def read_model_files(path: str | os.PathLike) -> tuple[dict, bytes]:
    """The model folder's config and raw weights, read now: a reader that builds the model later
    still gets the model it opened, whatever happens to the folder meanwhile."""
    path = Path(path)
    config = read_model_config(path)
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise HashIndexError(f"{path} is not a model folder: {WEIGHTS_FILE} is missing")
    return config, weights_path.read_bytes()


def read_code_encoder(folder: str | os.PathLike) -> CodeEncoder:
    """A model folder's encoder as numpy arrays, read now (a reader that encodes later still
    uses the encoder it opened). A folder saved before code_encoder.npz existed has it
    exported from its torch weights (which imports torch), and so does a sequence variant's,
    which encodes in torch (a SequenceEncoder)."""
    file = Path(folder) / ENCODER_FILE
    if file.is_file():
        return CodeEncoder.load(io.BytesIO(file.read_bytes()))
    return load_model(folder).export_encoder()


def model_from_files(config: dict, weights: bytes, where: str = "") -> BinaryAutoencoder:
    from safetensors.torch import load

    model = create_model(ModelConfig.from_dict(config["model"]))
    try:
        model.load_state_dict(load(weights))
    except Exception as error:  # safetensors raises several types for a damaged file
        raise HashIndexError(f"{where}/{WEIGHTS_FILE} could not be loaded: {error}") from None
    model.eval()
    return model


def load_model(path: str | os.PathLike) -> BinaryAutoencoder:
    """Rebuild the model from its folder; it produces bit-identical codes to the saved one."""
    return model_from_files(*read_model_files(path), where=str(path))


def read_index_encoder(root: Path, bits: int):
    """The index's code encoder, which must make the manifest's `bits`-bit codes: every
    command that reads or changes an index checks this first (an edited manifest)."""
    encoder = read_code_encoder(root / ENCODER_DIR)
    if encoder.bits != bits:
        raise HashIndexError(f"{root / ENCODER_DIR} makes {encoder.bits}-bit codes but the "
                             f"manifest says {bits}; rebuild the index")
    return encoder
