"""Test doubles and small corpora shared by the indexer, engine and CLI tests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.training import TrainConfig
from indexer.build import BuildConfig, build_index
from indexer.documents import ColumnOptions

TOPICS = {
    "cooking": "recipe oven bake flour sugar butter dough bread cake roast",
    "space": "rocket orbit planet star galaxy telescope astronaut moon launch",
    "finance": "stock bond market price interest bank loan inflation dividend",
    "football": "goal match team league striker referee penalty stadium coach",
}
FAST_TRAIN = TrainConfig(epochs=5, show_progress=False)
SEGMENT = "segments/seg-000001"  # a fresh build's one segment, relative to the index


class FakeEmbedder:
    """Deterministic bag-of-words embeddings (hashed words), counting its calls."""

    name = "fake-bow-32"
    dimension = 32

    def __init__(self, model: str | None = None, *args, **kwargs):
        """Stands in for Embedder(model, ...) too: the default model is the fake one, any
        other name is reported as given, as a real model would be."""
        from hashindex.embedding.embedder import DEFAULT_MODEL

        self.calls = 0
        self.texts = 0
        if model and model != DEFAULT_MODEL:
            self.name = model

    named = classmethod(lambda cls, model=None, *args, **kwargs: cls(model))

    @classmethod
    def from_spec(cls, spec, **kwargs) -> FakeEmbedder:
        """Stands in for Embedder.from_spec (an index's recorded embedding settings)."""
        return cls(spec.model)

    def embed(self, texts, show_progress=False):
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.md5(word.encode()).digest()
                out[row, digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def embed_tokens(self, texts, max_tokens):
        """(pooled, token embeddings, counts): each word's hashed vector is a token."""
        tokens = np.zeros((len(texts), max_tokens, self.dimension), dtype=np.float32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            for step, word in enumerate(text.lower().split()[:max_tokens]):
                digest = hashlib.md5(word.encode()).digest()
                tokens[row, step, digest[0] % self.dimension] = 1.0 if digest[1] % 2 else -1.0
                tokens[row, step, digest[2] % self.dimension] += 0.5
                lengths[row] = step + 1
        return self.embed(texts), tokens, np.maximum(lengths, 1)


FAKE_TEXT_MODEL = "helpers:make_fake_text_model"  # HASHINDEX_TEXT_MODEL's value (conftest.py)
FAKE_MODELS_MADE: list[FakeEmbedder] = []  # every one make_fake_text_model made


def make_fake_text_model(model: str | None = None, *args, **kwargs) -> FakeEmbedder:
    """The text-model factory the fake_text_model fixture names in HASHINDEX_TEXT_MODEL
    (hashindex/embedding/factory.py): a FakeEmbedder for each Embedder(model, **settings) the
    code makes, recorded in FAKE_MODELS_MADE."""
    made = FakeEmbedder(model)
    FAKE_MODELS_MADE.append(made)
    return made


def corpus(n: int = 120, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        words = rng.choice(TOPICS[topic].split(), size=6)
        docs.append({"doc": f"d{i:04d}", "text": " ".join(words) + f" n{i}", "topic": topic,
                     "year": 2000 + i % 7})
    return docs


def write_input(docs: list[dict], path: Path, fmt: str) -> Path:
    if fmt == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    elif fmt == "parquet":
        path = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(docs), path, row_group_size=25)
    elif fmt == "csv":
        path = path.with_suffix(".csv")
        import csv

        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(docs[0]))
            writer.writeheader()
            writer.writerows(docs)
    elif fmt == "textdir":
        path.mkdir(parents=True)
        for d in docs:
            (path / d["topic"]).mkdir(exist_ok=True)
            (path / d["topic"] / f"{d['doc']}.txt").write_text(d["text"])
    return path


def vector_docs(n: int, prefix: str, seed: int = 0, dim: int = 16, start: int = 0) -> list[dict]:
    """Documents with precomputed embeddings (no text model), ids `{prefix}-{i}`, a year."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return [{"doc": f"{prefix}-{i}", "text": f"document {i}", "year": 2000 + i % 5,
             "vec": v.tolist()} for i, v in enumerate(vectors, start)]


def vector_input(path: Path, n: int, prefix: str, seed: int = 0, dim: int = 16) -> Path:
    """Parquet of vector_docs."""
    return write_input(vector_docs(n, prefix, seed, dim), path, "parquet")


def build(input_path, out, embedder=None, id_column="doc", bits=16, backend="flat",
          cache_dir=None, train_config=FAST_TRAIN, **options) -> object:
    columns = ColumnOptions(
        text_column=options.pop("text_column", "text"),
        id_column=id_column,
        embedding_column=options.pop("embedding_column", None),
        skip_empty=options.pop("skip_empty", False),
    )
    config = BuildConfig(input=str(input_path), out=str(out), columns=columns, bits=bits,
                         backend=backend, show_progress=False,
                         cache_dir=str(cache_dir) if cache_dir else None,
                         use_cache=cache_dir is not None, **options)
    return build_index(config, train_config=train_config, embedder=embedder)


def serve_index(index_path, log_path, ready_seconds: float = 120, args=(), process_out=None):
    """`hashindex serve INDEX` as a real uvicorn process on a free loopback port: a context
    manager yielding its URL once /ready answers 200, stopped with SIGTERM on exit
    (hashindex/app/serve/process.py). `process_out` receives the process, for a test that
    signals it itself."""
    import contextlib

    from hashindex.app.serve.process import ServeProcess

    @contextlib.contextmanager
    def running():
        with ServeProcess(index_path, log_path, args, ready_s=ready_seconds,
                          stop_s=20) as server:
            if process_out is not None:
                process_out.append(server.process)
            yield server.url

    return running()


def tree_snapshot(folder: Path, skip: Path | None = None) -> dict:
    """Every path under folder (links not followed; those under `skip` left out) with its kind,
    size and sha256."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            out[relative] = ("dir",)
        else:
            data = path.read_bytes()
            out[relative] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return out
