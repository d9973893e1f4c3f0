"""The indexes the load benchmark builds into --work and reuses (the bundled sample; N
synthetic clustered embeddings), and the queries drawn from the sample's texts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

MAX_WORDS = 20  # words per text query at most


def published(folder: Path) -> bool:
    from hashindex.store.layout import MANIFEST_FILE

    return (folder / MANIFEST_FILE).is_file()  # a build publishes its folder atomically


def sample_index(work: Path) -> Path:
    """The bundled sample as `hashindex build --sample` builds it (embeddings stored)."""
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions
    from indexer.samples import SAMPLE_PATH

    out = work / "sample-index"
    if not published(out):
        print(f"building the bundled sample into {out}", flush=True)
        build_index(BuildConfig(input=str(SAMPLE_PATH), out=str(out),
                                columns=ColumnOptions(id_column="id"), store_embeddings=True,
                                overwrite=True, show_progress=False))
    return out


def synthetic_index(work: Path, documents: int, bits: int, queries: int
                    ) -> tuple[Path, np.ndarray]:
    """N clustered 384-d unit vectors written to Parquet (id, a short text, embedding as
    fixed_size_list<float32>) and built with --embedding-column; `queries` more points of the
    same clusters, never indexed, are the embedding queries."""
    from hashindex.training import TrainConfig
    from indexer.bench.datasets import clustered_embeddings
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions

    folder = work / f"synthetic-{documents}-{bits}"
    out, queries_file = folder / "index", folder / "queries.npy"
    if published(out) and queries_file.is_file():
        return out, np.load(queries_file)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {documents:,} clustered embeddings into {folder}", flush=True)
    vectors, labels = clustered_embeddings(documents + queries)
    data = folder / "documents.parquet"
    write_parquet(data, vectors[queries:], labels[queries:])
    held_out = vectors[:queries].copy()
    del vectors, labels
    print(f"building {documents:,} documents ({bits} bits) into {out}", flush=True)
    build_index(
        BuildConfig(input=str(data), out=str(out),
                    columns=ColumnOptions(text_column="text", id_column="id",
                                          embedding_column="embedding"),
                    bits=bits, store_embeddings=True, overwrite=True, use_cache=False,
                    show_progress=False),
        # the load does not depend on code quality: a short training bounds the build
        train_config=TrainConfig(epochs=5, max_train_docs=50_000, show_progress=False))
    np.save(queries_file, held_out)
    data.unlink()
    return out, held_out


def write_parquet(path: Path, vectors: np.ndarray, labels: np.ndarray,
                  chunk: int = 100_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()),
                        ("embedding", pa.list_(pa.float32(), dim))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(vectors), chunk):
            part = vectors[start : start + chunk]
            rows = range(start, start + len(part))
            writer.write_table(pa.table({
                "id": [f"doc-{i}" for i in rows],
                "text": [f"synthetic document {i} of cluster {labels[i]}" for i in rows],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)), dim),
            }, schema=schema))


def query_sentences() -> list[str]:
    """Distinct sentences of 3 to 20 words (longer ones cut) from the bundled sample's texts,
    shuffled: each text query differs from the last ones sent."""
    import random

    from indexer.samples import bundled_sample_texts

    seen: dict[str, None] = {}
    for text in bundled_sample_texts():
        for sentence in re.split(r"(?<=[.!?:])\s+", text):
            words = sentence.split()
            if len(words) >= 3:
                seen.setdefault(" ".join(words[:MAX_WORDS]))
    out = list(seen)
    random.Random(0).shuffle(out)
    return out


def sample_query_embeddings(index: Path, work: Path, sentences: list[str]) -> np.ndarray:
    """The text model's embeddings of query sentences (computed once, kept in --work): the
    embedding queries are the text queries without the model."""
    from hashindex.engine import HashIndex

    cached = work / f"sample-query-embeddings-{len(sentences)}.npy"
    if not cached.is_file():
        embedder = HashIndex.open(index).embedder()
        np.save(cached, embedder.embed(sentences))
    return np.load(cached)
