"""Embedding cache keyed by model and text hash (SQLite, one file per model).

Rebuilding with another variant or bit width then embeds nothing, and an interrupted build
resumes: texts are embedded in small chunks and committed every COMMIT_SECONDS (and at the end
of every batch), so a kill loses seconds of embedding work, not a whole batch.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from pathlib import Path

import numpy as np

from hashindex.errors import HashIndexError

COMMIT_SECONDS = 2.0
CHUNK_TEXTS = 256  # texts per model call inside a batch: the unit of work a kill can lose


def default_cache_dir() -> Path:
    root = os.environ.get("HASHINDEX_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "hashindex"
    )
    return Path(root)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:20]


class EmbeddingCache:
    def __init__(self, directory: Path, model_name: str):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")
        digest = hashlib.sha256(model_name.encode()).hexdigest()[:10]
        self.path = directory / f"embeddings-{slug}-{digest}.sqlite"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path)
            self.connection.execute("CREATE TABLE IF NOT EXISTS embeddings "
                                    "(key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
            self.connection.commit()
        except (OSError, sqlite3.Error) as error:
            raise HashIndexError(
                f"--cache-dir {directory}: cannot write the embedding cache there ({error}); "
                "pass a writable --cache-dir or --no-cache"
            ) from None
        self.last_commit = time.monotonic()

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk
            )
            for key, vector in rows:
                found[key] = np.frombuffer(vector, dtype=np.float32)
        return found

    def put_many(self, keys: list[bytes], vectors: np.ndarray, commit: bool = True) -> None:
        """Store vectors; commit now, or (commit=False) only once COMMIT_SECONDS have passed."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.connection.executemany(
            "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
            [(key, vector.tobytes()) for key, vector in zip(keys, vectors)],
        )
        if commit or time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        self.connection.commit()
        self.last_commit = time.monotonic()

    def dimension(self) -> int | None:
        """Length of the stored vectors (every vector of one model has it), None when empty."""
        row = self.connection.execute("SELECT length(vector) FROM embeddings LIMIT 1").fetchone()
        return row[0] // np.dtype(np.float32).itemsize if row else None

    def close(self) -> None:
        self.connection.close()


def embed_with_cache(
    texts: list[str], embedder, cache: EmbeddingCache | None
) -> tuple[np.ndarray, int]:
    """Embeddings for texts, computing only those the cache lacks. Returns (vectors, computed)."""
    if cache is None:
        return embedder.embed(texts), len(texts)
    keys = [text_key(t) for t in texts]
    found = cache.get_many(keys)
    missing = [i for i, key in enumerate(keys) if key not in found]
    first_text = {keys[i]: texts[i] for i in reversed(missing)}
    # length-bucketed: chunks of similar lengths pad little (the batch is the sorting window)
    unique_missing = sorted(dict.fromkeys(keys[i] for i in missing),
                            key=lambda key: len(first_text[key]))
    # with workers, each chunk goes whole to the next free worker while done ones commit
    chunks = [unique_missing[start : start + CHUNK_TEXTS]
              for start in range(0, len(unique_missing), CHUNK_TEXTS)]
    texts_of = [[first_text[key] for key in chunk] for chunk in chunks]
    embed_chunks = getattr(embedder, "embed_chunks", None)
    results = embed_chunks(texts_of) if embed_chunks else map(embedder.embed, texts_of)
    for chunk, vectors in zip(chunks, results):
        cache.put_many(chunk, vectors, commit=False)
        found.update(zip(chunk, vectors))
    if unique_missing:
        cache.commit()
    return np.stack([found[k] for k in keys]).astype(np.float32), len(unique_missing)
