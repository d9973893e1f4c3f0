"""Shared fixtures: small synthetic clustered embeddings, so model tests need no text model;
a fake text model; the headless browser of the page and docs tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# No test asserts a wall-clock time, hypothesis' per-example deadline included: the first call
# of a compiled search pays its numba compile (a second or more on a fresh machine).
settings.register_profile("hashindex", deadline=None)
settings.load_profile("hashindex")

BROWSER_TIMEOUT_MS = 20_000  # Chromium's start (the browser fixture)


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


@pytest.fixture()
def fake_text_model(monkeypatch):
    """Every text model made during the test (a CLI command's, a build's, an add's, an index's
    for queries, one in a process the test starts) is the fake bag-of-words one of helpers.py,
    through the package's own injection point, HASHINDEX_TEXT_MODEL; yields the list of those
    made in this process, in order (their .calls and .texts count their use)."""
    import os
    from pathlib import Path

    import helpers

    from hashindex.embedding.factory import TEXT_MODEL_ENV

    tests = str(Path(__file__).resolve().parent)  # where a started process finds helpers
    monkeypatch.setenv(TEXT_MODEL_ENV, helpers.FAKE_TEXT_MODEL)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        part for part in (tests, os.environ.get("PYTHONPATH")) if part))
    helpers.FAKE_MODELS_MADE.clear()
    yield helpers.FAKE_MODELS_MADE
    helpers.FAKE_MODELS_MADE.clear()


@pytest.fixture(scope="session")
def clustered():
    return clustered_embeddings()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through playwright (the search page's and /docs' tests);
    playwright's own browser download is not available on our machines."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed, and the browser tests drive it: run "
                    "`make setup` (it installs chromium; playwright's own browser download is "
                    "not available here)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox"], timeout=BROWSER_TIMEOUT_MS)
        yield launched
        launched.close()
