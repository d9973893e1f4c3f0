"""What a build is asked to do (BuildConfig) and what it did (BuildReport)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hashindex.backends import BACKENDS, DEFAULT_FAISS_BACKEND, FAISS_BACKENDS, check_backend
from hashindex.codes import check_bits
from hashindex.embedding.embedder import DEFAULT_MODEL
from hashindex.errors import HashIndexError
from hashindex.models import DEFAULT_VARIANT, VARIANTS, check_variant
from hashindex.options import Options
from indexer.documents import ColumnOptions


@dataclass(frozen=True)
class BuildConfig:
    """Input, code model, index and run settings of one build (saved into its manifest)."""

    # input
    input: str
    out: str
    format: str | None = None  # None: by extension
    columns: ColumnOptions = ColumnOptions()
    # codes
    model: str = DEFAULT_MODEL  # the sentence-transformers text model
    variant: str = DEFAULT_VARIANT
    bits: int = 64
    variant_options: Options | None = None  # the variant's options (None: its defaults)
    encoder: str | None = None  # reuse a trained encoder folder instead of training
    # index
    backend: str = DEFAULT_FAISS_BACKEND  # the FAISS index built beside the table
    backend_options: dict = field(default_factory=dict)  # its knobs, stored as the defaults
    substring_index: bool = True
    store_embeddings: bool = False
    shard_rows: int = 100_000
    # run
    batch_rows: int = 8_192
    embed_batch_size: int = 64
    overwrite: bool = False
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def check(self) -> None:
        """Every setting that needs no file: fails in a second, before anything is read."""
        check_bits(self.bits)
        check_variant(self.variant)
        check_backend(self.backend, FAISS_BACKENDS)
        BACKENDS[self.backend].split_options(self.backend_options)
        options_class = VARIANTS[self.variant].options
        if self.variant_options is not None and type(self.variant_options) is not options_class:
            raise HashIndexError(f"variant {self.variant} takes {options_class.__name__}, not "
                                 f"{type(self.variant_options).__name__}")
        for name in ("shard_rows", "batch_rows", "embed_batch_size"):
            if getattr(self, name) < 1:
                raise HashIndexError(f"--{name.replace('_', '-')} {getattr(self, name)} must be "
                                     "at least 1")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class BuildReport:
    out: Path
    documents: int = 0
    skipped: int = 0
    embedded: int = 0  # texts the model actually embedded (the rest came from the cache)
    removed_leftovers: list[tuple[Path, int]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class StageClock:
    """Seconds spent per stage (read, embed, train, encode, write), summed over calls."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
