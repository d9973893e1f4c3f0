"""Checks a build makes before it reads any document: paths, the encoder to reuse, and the
variant's options against the text model's dimension (one model made and dropped)."""

from __future__ import annotations

import os
from pathlib import Path

from hashindex.embedding.cache import EmbeddingCache, default_cache_dir
from hashindex.errors import HashIndexError
from hashindex.model_io import load_model, read_model_config
from hashindex.models import create_model
from hashindex.store.fsutil import path_error
from hashindex.store.publish import check_target
from hashindex.training import model_config_for
from indexer.build.config import BuildConfig


def check_input(path: str) -> Path:
    """The input path, checked readable now, not after the text model has loaded."""
    source = Path(path)
    if not source.exists():
        raise HashIndexError(f"input {path} does not exist")
    try:
        if source.is_dir():
            os.listdir(source)
        else:
            open(source, "rb").close()
    except OSError as error:
        raise path_error(error, f"input {path}") from None
    return source


def check_paths(config: BuildConfig) -> tuple[Path, Path]:
    """(input, output) paths; the input readable, the output ours to write (publish.py)."""
    source = check_input(config.input)
    target = Path(config.out).absolute()
    check_target(target, config.overwrite, [source], shown=config.out)
    return source.resolve(), target


def open_cache(config: BuildConfig, embedder) -> EmbeddingCache | None:
    if not config.use_cache:
        return None
    return EmbeddingCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir(),
                          getattr(embedder, "cache_name", embedder.name))


def text_dimension(config: BuildConfig, embedder) -> int:
    """The text model's embedding dimension, from the cache when it holds any of its vectors:
    a rebuild whose texts are all cached never loads the model."""
    cache = open_cache(config, embedder)
    cached = cache.dimension() if cache is not None else None
    if cache is not None:
        cache.close()
    return cached or embedder.dimension


def check_variant_options(config: BuildConfig, dim: int) -> None:
    """Make the code model once before any document is read, so that options that only fail
    against the input's dimension (concrete_features) fail in a second, not after embedding."""
    create_model(model_config_for(config.variant, config.bits, dim, config.variant_options))


def check_encoder(config: BuildConfig, model_name: str):
    """Load --encoder and check it was trained on embeddings from the same model."""
    if config.encoder is None:
        return None
    saved = read_model_config(config.encoder)
    trained_on = saved.get("embedding_model")
    if trained_on and trained_on != model_name:
        raise HashIndexError(
            f"--encoder {config.encoder} was trained on embeddings from {trained_on!r}, but this "
            f"build uses {model_name!r}; pass --model {trained_on} or train a new encoder"
        )
    return load_model(config.encoder)
