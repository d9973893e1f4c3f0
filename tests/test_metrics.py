"""Metric functions against hand-computed cases."""

import numpy as np
import pytest

from hashindex.metrics import (
    mean_average_precision,
    precision_at_k,
    recall_at_k,
    relevance,
)


def test_precision_map_recall_by_hand():
    database_labels = np.array([0, 1, 0, 1, 0])
    query_labels = np.array([0, 1])
    ranked = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    relevant = relevance(ranked, database_labels, query_labels)
    assert relevant.tolist() == [[True, False, True, False], [False, True, False, True]]
    assert precision_at_k(relevant, 1) == pytest.approx(0.5)  # (1 + 0) / 2
    assert precision_at_k(relevant, 2) == pytest.approx(0.5)
    # query 0: hits at ranks 1, 3 → (1/1 + 2/3) / 3 relevant in the database
    # query 1: hits at ranks 2, 4 → (1/2 + 2/4) / 2 relevant in the database
    expected = ((1 + 2 / 3) / 3 + (1 / 2 + 2 / 4) / 2) / 2
    assert mean_average_precision(relevant, np.array([3, 2])) == pytest.approx(expected)
    # normalised by retrieved relevant documents instead
    expected_retrieved = ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 4) / 2) / 2
    assert mean_average_precision(relevant) == pytest.approx(expected_retrieved)
    truth = np.array([[0, 2, 4], [9, 8, 7]])
    assert recall_at_k(np.array([[4, 0, 1], [1, 2, 3]]), truth, 3) == pytest.approx(
        (2 / 3 + 0) / 2)
