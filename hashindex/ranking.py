"""Candidates → the k hits, ordered by the score they show. Pure functions of arrays."""

from __future__ import annotations

import numpy as np

from hashindex.search_backend import Candidates


def order(candidates: Candidates, embedding, request, vectors, bits: int,
          scores: np.ndarray | None = None):
    """The k best candidates: (rows, distances, scores, by_cosine), ordered by the score
    they show: the cosine to the stored vector (ties by row), or where there is none (no
    `vectors`, a bare code, rerank=False) the code agreement 1 − 2·distance/bits, i.e. by
    distance. Scores come from the vector matrix, never from the shards (or are given)."""
    rows, distances = candidates.rows, candidates.distances
    walked = candidates.scores is not None  # ranked by the vectors already (best first)
    by_cosine = walked or bool(request.rerank and vectors is not None
                               and embedding is not None)
    if walked:
        top = slice(0, request.k)
        scores = candidates.scores
    elif by_cosine:
        if scores is None:
            scores = vectors.scores(rows, embedding)
        top = np.lexsort((rows, -scores))[: request.k]
    else:
        scores = 1.0 - 2.0 * distances / bits
        top = np.lexsort((rows, distances))[: request.k]
    if by_cosine:  # an int8 vector's scale can carry a cosine a hair past 1
        return rows[top], distances[top], np.minimum(scores[top], 1.0), by_cosine
    return rows[top], distances[top], scores[top], by_cosine


def result_notes(request, candidates: Candidates) -> list[str]:
    """What an answer says beside its hits: the request's notes, an empty ball, a filter
    that let fewer than k through."""
    examined, passed = candidates.filtered or (None, None)
    notes = list(request.notes)
    if not len(candidates.rows):  # a cap asked for is the radius searched (a walk reports 0)
        searched = request.max_radius if request.max_radius is not None else candidates.radius
        notes.append(f"no document within radius {searched}"
                     + (" passes the filter" if examined is not None else ""))
    if passed is not None and 0 < passed < request.k:
        notes.append(f"only {passed} documents within radius {candidates.radius} pass "
                     "the filter")
    return notes


def batch_scores(vectors, found: list[Candidates], embeddings: list, request) -> list:
    """Every query's candidate scores from one compiled call (None where not re-ranked, and
    for a single query, whose scores `order` computes itself)."""
    out: list = [None] * len(found)
    if vectors is None or len(found) < 2 or not (request.rerank or request.rerank_candidates):
        return out
    wanted = [i for i, embedding in enumerate(embeddings)
              if embedding is not None and found[i].scores is None]
    if wanted:
        lengths = [len(found[i].rows) for i in wanted]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = np.concatenate([found[i].rows for i in wanted])
        flat = vectors.scores_batch(rows, offsets, np.stack([embeddings[i] for i in wanted]))
        for j, i in enumerate(wanted):
            out[i] = flat[offsets[j] : offsets[j + 1]]
    return out
