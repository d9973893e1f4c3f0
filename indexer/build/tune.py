"""The build's last steps before its manifest: which second backend `--backend auto` builds,
and the recall/speed sweep (hashindex/tuning.py) recorded in the manifest for queries to
choose from."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hashindex.tuning import (
    DEFAULT_TARGET,
    SAMPLE_QUERIES,
    TUNED_K,
    Setting,
    Tuning,
    candidate_settings,
    exact_neighbours,
    sample_rows,
    sweep,
)

AUTO = "auto"
# Up to this many documents the exact scan of the int8 vectors is as quick as a graph walk
# (~25 ns a row) and costs nothing to build; above it `auto` builds the graph.
AUTO_EXACT_ROWS = 5_000
# The exact scan is swept (the reference, and the only setting at recall 1) up to this size;
# beyond it one scan costs milliseconds and the sweep would take minutes.
SWEEP_EXACT_ROWS = 200_000
NO_VECTORS_BACKEND = "flat"  # what auto builds for an index that keeps no vectors


def resolve_backend(config, rows: int):
    """The config with `--backend auto` made concrete for `rows` documents."""
    if config.backend != AUTO:
        return config
    if not config.store_embeddings:
        backend = NO_VECTORS_BACKEND
    else:
        backend = "exact" if rows <= AUTO_EXACT_ROWS else "graph"
    return replace(config, backend=backend)


def swept_backends(backend: str, rows: int) -> list[str]:
    """The backends a build tunes: its second backend, the table, and the exact scan."""
    out = [backend] if backend != "table" else []
    out.append("table")
    if backend != "exact" and rows <= SWEEP_EXACT_ROWS:
        out.append("exact")
    return out


def tune(index, embeddings: np.ndarray, target_recall: float, *, k: int = TUNED_K,
         queries: int = SAMPLE_QUERIES, seed: int = 0) -> Tuning:
    """Sweep `index` (an open HashIndex over `embeddings`' rows, in row order) with a sample
    of its own documents as queries; recall@k against their exact neighbours by the float
    `embeddings`, each query's own row left out of its truth and of its answers, and out of
    the graph's walk (a document walked to through its own node finds its neighbours by the
    edges built for it: tuned that way, a setting fell short on unseen queries)."""
    started = time.perf_counter()
    rows = len(embeddings)
    sample = sample_rows(rows, queries, seed)
    truth = exact_neighbours(embeddings, sample, k)
    vectors = np.ascontiguousarray(embeddings[sample], dtype=np.float32)
    codes = index.all_codes()[sample]  # the documents' own (a sequence variant's from tokens)
    requests: dict[str, object] = {}  # by setting, made once

    def search(i: int, setting: Setting) -> np.ndarray:
        request = requests.get(setting.describe())
        if request is None:
            request = requests[setting.describe()] = index.request(
                k + 1, backend=setting.backend, backend_options=setting.backend_options or None,
                rerank_candidates=setting.rerank_candidates)
        found, _ = index.ranked_rows(codes[i], vectors[i], request, walk_past=int(sample[i]))
        return found[found != sample[i]]

    settings = candidate_settings(swept_backends(index.manifest.backend, rows), rows)
    measured = sweep(search, vectors, truth, settings, k)
    return Tuning(k, len(sample), target_recall, index.row_count,
                  "the build's float32 embeddings (exact cosine)", tuple(measured),
                  round(time.perf_counter() - started, 3))


def tune_manifest(folder: Path, manifest, embeddings: np.ndarray, target_recall: float) -> None:
    """Tune the index being built in `folder` (its manifest not yet written) and record the
    sweep in `manifest`; an index that keeps no vectors ranks by code and is not tuned."""
    if not manifest.store_embeddings or not len(embeddings):
        return
    from hashindex.engine import HashIndex

    index = HashIndex(Path(folder), manifest)
    manifest.tuning = tune(index, embeddings, target_recall).to_dict()


class StoredVectors:
    """An index's stored vectors, dequantized a slice at a time: the truth a re-tuning
    compares with (the build's floats are gone), without a float copy of the whole index."""

    def __init__(self, store, rows: int):
        self.store, self.rows = store, rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, which) -> np.ndarray:
        if isinstance(which, slice):
            which = np.arange(*which.indices(self.rows))
        return self.store.rows(np.asarray(which, dtype=np.int64))


def retune(writer) -> Tuning | None:
    """Tune the index `writer` holds (after a compact) against its stored vectors and commit
    the sweep; None where it keeps no vectors (its hits are ranked by code)."""
    from hashindex.engine import HashIndex

    index = HashIndex.open(writer.root)
    if index.vectors is None:
        return None
    old = index.tuning
    target = old.target_recall if old else float(
        index.manifest.build.get("target_recall", DEFAULT_TARGET))
    tuning = tune(index, StoredVectors(index.vectors, index.row_count), target)
    tuning = replace(tuning, truth="the stored int8 vectors (exact cosine)")
    writer.record_tuning(tuning.to_dict())
    return tuning
