"""Shared benchmark helpers: synthetic clustered embeddings, timing, the machine record."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time

import numpy as np


def clustered_embeddings(n: int, dim: int = 384, clusters: int = 2000, noise: float = 0.6,
                         seed: int = 0, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 points around random centres (cluster labels returned too)."""
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


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_record() -> str:
    import faiss
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"faiss {faiss.__version__}, numpy {np.__version__}; command: "
            f"`{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
