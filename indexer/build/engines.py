"""build_index: the one entry to a build, the engine looked up by name (--engine)."""

from __future__ import annotations

from hashindex.errors import HashIndexError
from hashindex.training import TrainConfig
from indexer.build.config import ENGINES, BuildConfig, BuildReport
from indexer.build.local import LocalEngine
from indexer.build.ray_engine import RayEngine
from indexer.build.skeleton import Engine, build

ENGINE_CLASSES: dict[str, type[Engine]] = {cls.name: cls for cls in (LocalEngine, RayEngine)}
assert tuple(ENGINE_CLASSES) == ENGINES  # the names BuildConfig.check accepts


def build_index(config: BuildConfig, *, train_config: TrainConfig | None = None,
                embedder=None) -> BuildReport:
    """Build the index described by `config`; returns what was done and how long it took.
    `embedder` replaces the text model named by config.model (anything with name, dimension
    and embed(texts))."""
    if not isinstance(config, BuildConfig):
        raise HashIndexError(f"build_index: config must be a BuildConfig, not a "
                             f"{type(config).__name__} ({config!r})")
    if train_config is not None and not isinstance(train_config, TrainConfig):
        raise HashIndexError(f"build_index: train_config must be a TrainConfig or None, not a "
                             f"{type(train_config).__name__} ({train_config!r})")
    config.check()
    return build(config, ENGINE_CLASSES[config.engine](),
                 train_config or TrainConfig(show_progress=config.show_progress), embedder)
