"""Label precision@k, mean average precision and recall@k against exact neighbours.

`ranked` is (queries, depth) database indices ordered best first.
"""

from __future__ import annotations

import numpy as np


def relevance(ranked: np.ndarray, database_labels: np.ndarray,
              query_labels: np.ndarray) -> np.ndarray:
    """bool (queries, depth): does each retrieved document share the query's label?"""
    return database_labels[ranked] == query_labels[:, None]


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """Mean over queries of the fraction of the top k that is relevant."""
    return float(relevant[:, :k].mean()) if k else 0.0


def mean_average_precision(relevant: np.ndarray, total_relevant: np.ndarray | None = None) -> float:
    """mAP over the ranked depth: mean over queries of Σ_k P@k·rel_k / (relevant count).

    `total_relevant` (per query) normalises by every relevant document in the database, as in
    the semantic-hashing literature; without it, by the relevant ones retrieved.
    """
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_sum = (hits / ranks * relevant).sum(axis=1)
    denominator = total_relevant if total_relevant is not None else relevant.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(denominator > 0, precision_sum / np.maximum(denominator, 1), 0.0)
    return float(ap.mean())


def recall_at_k(ranked: np.ndarray, true_neighbours: np.ndarray, k: int) -> float:
    """Mean fraction of the exact top-k neighbours found in the method's top k."""
    found = [len(np.intersect1d(r[:k], t[:k])) / k for r, t in zip(ranked, true_neighbours)]
    return float(np.mean(found))
