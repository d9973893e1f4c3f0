"""One adapter interface for every hashing method compared in benchmarks: fit, then encode."""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class HashingMethod:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reads_tokens: bool = False  # fits and encodes packed token rows (models/sequence.py)

    def __init__(self, bits: int, seed: int = 0):
        self.bits = bits
        self.seed = seed

    def fit(self, embeddings: np.ndarray) -> HashingMethod:
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 (n, d) → packed uint8 (n, bits/8)."""
        raise NotImplementedError


def pca(embeddings: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), projection (d, components)) of the top principal directions."""
    mean = embeddings.mean(axis=0)
    _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
    return mean, vt[:components].T.astype(np.float32)


def sign_codes(projected: np.ndarray) -> np.ndarray:
    return np.packbits(projected > 0, axis=1, bitorder="big")
