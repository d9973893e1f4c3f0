"""What a build is asked to do (BuildConfig) and what it did (BuildReport)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hashindex.backends import BACKENDS, FAISS_BACKENDS, check_backend
from hashindex.codes import check_bits
from hashindex.embedding.embedder import DEFAULT_MODEL
from hashindex.embedding.runtimes import (
    DEFAULT_QUANTIZE,
    DEFAULT_RUNTIME,
    check_embedding_settings,
    resolve_quantization,
)
from hashindex.errors import HashIndexError
from hashindex.models import DEFAULT_VARIANT, VARIANTS, check_variant, reads_tokens
from hashindex.options import Options
from hashindex.tuning import DEFAULT_TARGET, check_target
from hashindex.validation import (
    FLAG,
    INTEGER,
    OPTIONAL_PATH,
    OPTIONAL_TEXT,
    PATH,
    TEXT,
    check_arguments,
)
from hashindex.vectors import VECTOR_DTYPES
from indexer.documents import ColumnOptions, column_options

ENGINES = ("local", "ray")
AUTO_BACKEND = "auto"
ARGUMENT_KINDS = {  # checked as a BuildConfig is made
    "input": PATH, "out": PATH, "format": OPTIONAL_TEXT, "model": PATH,
    "embed_backend": TEXT, "quantize": TEXT, "calibrate_on_input": FLAG, "device": TEXT,
    "embed_threads": INTEGER,
    "embed_workers": INTEGER, "max_tokens": INTEGER, "variant": TEXT, "bits": INTEGER,
    "encoder": OPTIONAL_PATH, "backend": TEXT, "backend_options": ((dict,), "a dict"),
    "substring_index": FLAG, "store_embeddings": FLAG, "vector_dtype": TEXT,
    "shard_rows": INTEGER, "engine": TEXT, "ray_address": OPTIONAL_TEXT,
    "batch_rows": INTEGER, "embed_batch_size": INTEGER, "overwrite": FLAG,
    "target_recall": ((int, float), "a number"),
    "cache_dir": OPTIONAL_PATH, "use_cache": FLAG, "show_progress": FLAG,
}


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
    embed_backend: str = DEFAULT_RUNTIME  # the runtime it runs in (runtimes.py)
    # none (the model's own numbers), int8 (static scales calibrated on the bundled
    # calibration set: one export per model and machine, cached), or auto: int8 where the
    # runtime takes it
    quantize: str = DEFAULT_QUANTIZE
    calibrate_on_input: bool = False  # int8: scales from this input's first documents instead
    device: str = "cpu"  # torch only: cpu or cuda
    embed_threads: int = 0  # 0: every core (divided among the workers)
    embed_workers: int = 1  # processes embedding in parallel, each its own model
    max_tokens: int = 0  # cut texts there (0: the model's max sequence length)
    variant: str = DEFAULT_VARIANT
    bits: int = 64
    variant_options: Options | None = None  # the variant's options (None: its defaults)
    encoder: str | None = None  # reuse a trained encoder folder instead of training
    # index
    # the second backend built beside the table; auto: the exact scan of the vectors for a
    # small index, the graph above (indexer/build/tune.py), flat where no vectors are kept
    backend: str = AUTO_BACKEND
    backend_options: dict = field(default_factory=dict)  # its knobs, stored as the defaults
    substring_index: bool = True
    store_embeddings: bool = True  # keep them (vectors/): hits ranked by cosine (else by code)
    vector_dtype: str = "int8"  # how: int8 with a scale per row, or float16
    target_recall: float = DEFAULT_TARGET  # what queries are tuned to by default
    shard_rows: int = 100_000
    # run
    engine: str = "local"  # local, or ray (indexer/build/ray_engine.py)
    ray_address: str | None = None  # the cluster to join (None: this Ray, or a local one)
    batch_rows: int = 8_192  # rows read at a time (the ray engine: rows per part)
    embed_batch_size: int = 64
    overwrite: bool = False
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def __post_init__(self):
        """Each argument's kind, where it enters (a Python caller's; the CLI's are typed), and
        `columns` given as a mapping made a ColumnOptions."""
        object.__setattr__(self, "columns", column_options(self.columns, "BuildConfig"))
        check_arguments("BuildConfig", vars(self), ARGUMENT_KINDS)

    @property
    def quantization(self) -> str:
        """`quantize` made concrete for the runtime (auto: int8 where it takes it)."""
        return resolve_quantization(self.embed_backend, self.quantize)

    def check(self) -> None:
        """Every setting that needs no file: fails in a second, before anything is read."""
        check_bits(self.bits)
        if self.device not in ("cpu", "cuda"):
            raise HashIndexError(f"--device {self.device!r}: choose cpu or cuda")
        if self.device != "cpu" and self.columns.embedding_column is not None:
            raise HashIndexError(f"--device {self.device} is where the text model runs, and "
                                 "precomputed embeddings (--embedding-column) need none; drop "
                                 "--device")
        check_embedding_settings(self.embed_backend, self.quantize, self.device,
                                 self.embed_workers)
        if self.max_tokens < 0:
            raise HashIndexError(f"--max-tokens {self.max_tokens} must be 0 (the model's own) "
                                 "or more")
        if self.embed_threads < 0:
            raise HashIndexError(f"--embed-threads {self.embed_threads} must be 0 (every core) "
                                 "or more")
        if self.engine not in ENGINES:
            raise HashIndexError(f"--engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.ray_address and self.engine != "ray":
            raise HashIndexError("--ray-address is for --engine ray")
        check_variant(self.variant)
        if reads_tokens(self.variant):
            if self.columns.embedding_column is not None:
                raise HashIndexError(f"--variant {self.variant} reads the text model's token "
                                     "embeddings, which precomputed embeddings do not carry; "
                                     "index the text, or choose a variant that reads vectors")
            if self.engine == "ray":
                raise HashIndexError(f"--variant {self.variant}: the ray engine builds the "
                                     "variants that read pooled vectors; build it with "
                                     "--engine local")
        check_backend(self.backend, (AUTO_BACKEND, *FAISS_BACKENDS))
        if self.backend == AUTO_BACKEND:
            if self.backend_options:
                raise HashIndexError("--backend-option sets a knob of a named backend; name it "
                                     "with --backend (auto chooses one by the index's size)")
        else:
            BACKENDS[self.backend].split_options(self.backend_options)
        if self.backend == "exact" and not self.store_embeddings:
            raise HashIndexError("--backend exact scans the stored vectors, which "
                                 "--no-store-embeddings leaves out; keep them or choose "
                                 "another backend")
        check_target(self.target_recall, "--target-recall")
        for knob in ("prefix_bits", "substring_bits"):  # a part of the code: at most all of it
            value = self.backend_options.get(knob)
            if value is not None and value > self.bits:
                raise HashIndexError(f"--backend-option {knob}={value} is more than the code's "
                                     f"{self.bits} bits; use 1 to {self.bits}")
        options_class = VARIANTS[self.variant].options
        if self.variant_options is not None and type(self.variant_options) is not options_class:
            raise HashIndexError(f"variant {self.variant} takes {options_class.__name__}, not "
                                 f"{type(self.variant_options).__name__}")
        if self.vector_dtype not in VECTOR_DTYPES:
            raise HashIndexError(f"--vector-dtype {self.vector_dtype!r}: choose one of "
                                 f"{', '.join(VECTOR_DTYPES)}")
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
    truncated: int = 0  # of those, texts longer than the model's max sequence length (cut)
    max_tokens: int = 0  # that length
    removed_leftovers: list[tuple[Path, int]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    backend: str = ""  # the second backend built (what --backend auto chose)
    tuning: dict | None = None  # the recall/speed sweep recorded in the manifest


class StageClock:
    """Seconds spent per stage (read, embed, train, encode, write), summed over calls."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
