"""Shared fixtures: small synthetic clustered embeddings, so model tests need no text model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# No test asserts a wall-clock time, hypothesis' per-example deadline included: the first call
# of a compiled search pays its numba compile (a second or more on a fresh machine).
settings.register_profile("hashindex", deadline=None)
settings.load_profile("hashindex")


def clustered_embeddings(
    n: int = 800, dim: int = 32, clusters: int = 8, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 points around `clusters` random centres, and their cluster labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, n)
    points = centres[labels] + noise * rng.normal(size=(n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), labels


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Exported text models and embedding caches go to a folder of this run, not the user's."""
    import os

    folder = tmp_path_factory.mktemp("hashindex-cache")
    previous = os.environ.get("HASHINDEX_CACHE")
    os.environ["HASHINDEX_CACHE"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["HASHINDEX_CACHE"]
    else:
        os.environ["HASHINDEX_CACHE"] = previous


@pytest.fixture(scope="session")
def clustered():
    return clustered_embeddings()
