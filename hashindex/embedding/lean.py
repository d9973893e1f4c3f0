"""A text query's embedding without torch, transformers or sentence-transformers.

A one-shot `hashindex query` used to spend ~5 s importing sentence-transformers (which imports
torch, transformers and scikit-learn) and loading the transformer's torch weights, only to
tokenize one text, hand the ids to the exported model and average its token embeddings. Here
the same steps run on what the model folder and the export already hold: the folder's
`tokenizer.json` in the `tokenizers` library (the engine behind transformers' fast
tokenizers), the exported transformer in its runtime (runners.py), and the folder's pooling
and normalisation in numpy. It serves the models whose modules are a transformer, one pooling
mode of mean, CLS, max or mean-sqrt-len, and optionally a normalisation (all-MiniLM-L6-v2 and
most sentence-transformers text models); any other layout, and every build, goes through
sentence-transformers' own modules (embedder.py). tests/test_lean_query.py holds the two to the
same vectors and the same codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
OTHER_POOLING_FLAGS = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


@dataclass(frozen=True)
class LeanLayout:
    """What a model folder says about tokenizing and pooling, when lean.py can follow it."""

    tokenizer_file: Path
    max_seq_length: int
    lower_case: bool
    pooling: str  # one of POOLING_MODES
    dimension: int


def lean_layout(folder: str | Path) -> LeanLayout | None:
    """The folder's layout if lean.py computes what sentence-transformers would, else None."""
    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        types = [module["type"] for module in sorted(modules, key=lambda m: m["idx"])]
        if types not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
            return None
        if modules[0].get("path", "") != "":
            return None
        settings = json.loads((folder / "sentence_bert_config.json").read_text())
        pooling_path = next(m["path"] for m in modules if m["type"] == POOLING)
        pooling = json.loads((folder / pooling_path / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    chosen = [mode for mode in POOLING_MODES if pooling.get(f"pooling_mode_{mode}")]
    if len(chosen) != 1 or any(pooling.get(flag) for flag in OTHER_POOLING_FLAGS):
        return None
    if not pooling.get("include_prompt", True) or not (folder / "tokenizer.json").exists():
        return None
    return LeanLayout(folder / "tokenizer.json", int(settings.get("max_seq_length") or 512),
                      bool(settings.get("do_lower_case", False)), chosen[0],
                      int(pooling["word_embedding_dimension"]))


class LeanTextModel:
    """Texts → unit-norm vectors through a tokenizer file, an exported transformer (a runner
    from runners.py) and numpy pooling."""

    def __init__(self, layout: LeanLayout, runner, max_tokens: int = 0):
        from tokenizers import Tokenizer

        self.layout = layout
        self.runner = runner
        self.tokenizer = Tokenizer.from_file(str(layout.tokenizer_file))
        self.limit = max_tokens or layout.max_seq_length
        self.tokenizer.enable_truncation(self.limit)
        self.pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.tokenizer.no_padding()  # each text is padded to its own length (padding.py)

    @property
    def dimension(self) -> int:
        return self.layout.dimension

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """One batch of texts: unit-norm float32 (n, dimension), and how many were cut at the
        length limit. Each text is padded to its own fixed length (padding.py), as the
        documents were."""
        from hashindex.embedding.padding import padded_batches

        if self.layout.lower_case:
            texts = [text.lower() for text in texts]
        encodings = self.tokenizer.encode_batch([text.strip() for text in texts])
        cut = sum(bool(encoding.overflowing) for encoding in encodings)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for length, rows in padded_batches([len(e.ids) for e in encodings], len(texts), 0,
                                           self.limit):
            feed = {name: np.zeros((len(rows), length), dtype=np.int64)
                    for name in ("input_ids", "attention_mask", "token_type_ids")}
            feed["input_ids"][:] = self.pad_id
            for j, row in enumerate(rows):
                encoding = encodings[row]
                n = len(encoding.ids)
                feed["input_ids"][j, :n] = encoding.ids
                feed["attention_mask"][j, :n] = encoding.attention_mask
                feed["token_type_ids"][j, :n] = encoding.type_ids
            states = self.runner({name: feed[name] for name in self.runner.inputs})
            out[rows] = unit_rows(pool(states.astype(np.float32), feed["attention_mask"],
                                       self.layout.pooling))
        return out, cut


def pool(states: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling for one mode, in numpy."""
    if mode == "cls_token":
        return states[:, 0]
    weights = mask[:, :, None].astype(np.float32)
    if mode == "max_tokens":
        return np.where(weights > 0, states, np.float32(-1e9)).max(axis=1)
    summed = (states * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), np.float32(1e-9))
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
