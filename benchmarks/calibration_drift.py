"""int8 text model calibrated on the bundled set against calibrated on the input (issue 30,
item 5): how much of the fp32 top-10 an exact scan of each one's vectors keeps.

    python -m benchmarks.calibration_drift debian-packages 5000
    python -m benchmarks.calibration_drift manpages 2000

The corpus's first N documents; 500 of them as queries (their own row left out); the fp32
reference vectors from benchmarks.defaults' cache (run it first).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks.defaults import load_corpus
from hashindex.embedding.cache import default_cache_dir
from hashindex.embedding.embedder import Embedder
from indexer.build.text_model import CALIBRATION_TEXTS, CALIBRATION_WINDOW
from indexer.samples import bundled_sample_texts


def top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = vectors[queries] @ vectors.T
    scores[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-scores, axis=1)[:, :10]


def main(argv: list[str] | None = None) -> None:
    name, count = (argv or sys.argv[1:])[:2]
    count = int(count)
    corpus = load_corpus(name, False, default_cache_dir() / "bench" / "defaults")
    texts = [d["text"] if isinstance(d, dict) else d for d in corpus.documents[:count]]
    reference = np.asarray(corpus.document_vectors[:count], dtype=np.float32)
    queries = np.arange(0, count, max(1, count // 500))[:500]
    truth = top10(reference, queries)
    window = min(count, CALIBRATION_WINDOW)
    on_input = [texts[i] for i in np.linspace(0, window - 1, CALIBRATION_TEXTS).astype(int)]
    for label, calibration in (("the bundled set", bundled_sample_texts()[:CALIBRATION_TEXTS]),
                               ("the input", on_input)):
        started = time.perf_counter()
        embedder = Embedder(backend="openvino", quantize="int8", calibration_texts=calibration)
        vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
        found = top10(vectors, queries)
        kept = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
        print(f"{name}, {count} documents: int8 calibrated on {label}: exact top-10 kept "
              f"{kept:.4f}, mean cosine to fp32 {np.mean(np.sum(vectors * reference, 1)):.5f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
