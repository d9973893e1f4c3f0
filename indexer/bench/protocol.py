"""The evaluation protocol: a seeded database/query split, every method fitted on the database
part only, Hamming ranking against label relevance and exact float neighbours, and the
Hamming-ball engine with cosine re-ranking of candidate budgets."""

from __future__ import annotations

import time
from dataclasses import dataclass

import faiss
import numpy as np

from hashindex.backends import backend_class
from hashindex.baselines import create_method
from hashindex.errors import HashIndexError
from hashindex.metrics import (
    mean_average_precision,
    precision_at_k,
    recall_at_k,
    relevance,
)

SPLIT_SEED = 12345
TUNING_SEED = 777  # the tuning split re-splits the database part; the query part stays unseen
RERANK_BUDGETS = (0.005, 0.01, 0.02, 0.05)  # candidates as a fraction of the database
QUERY_FRACTION, MAX_QUERIES = 0.2, 1000
MIN_DATABASE = 100  # the exact top-100 that recall@100 compares against


@dataclass
class Split:
    database: np.ndarray
    queries: np.ndarray
    database_labels: np.ndarray
    query_labels: np.ndarray
    true_neighbours: np.ndarray  # exact cosine top-100 of each query in the database
    map_depth: int
    description: str
    database_sequences: np.ndarray | None = None  # packed token rows, for sequence variants
    query_sequences: np.ndarray | None = None


def query_count(documents: int) -> int:
    return min(MAX_QUERIES, max(1, int(round(documents * QUERY_FRACTION))))


def make_split(embeddings, labels, seed=SPLIT_SEED, sequences=None) -> Split:
    order = np.random.default_rng(seed).permutation(len(embeddings))
    n_queries = query_count(len(embeddings))
    queries, database = order[:n_queries], order[n_queries:]
    exact = faiss.IndexFlatIP(embeddings.shape[1])
    exact.add(np.ascontiguousarray(embeddings[database]))
    _, neighbours = exact.search(np.ascontiguousarray(embeddings[queries]), 100)
    return Split(embeddings[database], embeddings[queries], labels[database], labels[queries],
                 neighbours, min(len(database), 1000),
                 f"seeded (seed {seed}) {len(database)} database / {n_queries} query documents",
                 sequences[database] if sequences is not None else None,
                 sequences[queries] if sequences is not None else None)


def tuning_split(split: Split) -> Split:
    """A split of the database part alone, for choosing defaults without seeing the queries."""
    inner = make_split(split.database, split.database_labels, seed=TUNING_SEED,
                       sequences=split.database_sequences)
    inner.description = f"tuning split: the database part of {split.description}, re-split " \
                        f"{inner.description}"
    return inner


def ranking_metrics(ranked: np.ndarray, split: Split) -> dict:
    relevant = relevance(ranked, split.database_labels, split.query_labels)
    counts = np.bincount(split.database_labels, minlength=split.query_labels.max() + 1)
    total = np.minimum(counts[split.query_labels], split.map_depth)
    return {
        "precision@10": precision_at_k(relevant, 10),
        "precision@100": precision_at_k(relevant, 100),
        "map": mean_average_precision(relevant, total),
        "recall@10": recall_at_k(ranked, split.true_neighbours, 10),
        "recall@100": recall_at_k(ranked, split.true_neighbours, 100),
    }


def float_upper_bound(split: Split) -> dict:
    exact = faiss.IndexFlatIP(split.database.shape[1])
    exact.add(np.ascontiguousarray(split.database))
    _, ranked = exact.search(np.ascontiguousarray(split.queries), split.map_depth)
    return ranking_metrics(ranked, split)


def hamming_ranking(db_codes, query_codes, bits, depth) -> np.ndarray:
    index = faiss.IndexBinaryFlat(bits)
    index.add(db_codes)
    _, ranked = index.search(query_codes, depth)
    return ranked


NOT_RETRIEVED = -1  # pads a short ranking: no database index equals it, so it is never a hit


def pad_ranking(rows: np.ndarray, length: int) -> np.ndarray:
    """The ranking cut or padded to `length` with NOT_RETRIEVED (never by repeating rows: a
    repeated row could be counted as a hit it is not)."""
    out = np.full(length, NOT_RETRIEVED, dtype=np.int64)
    out[: min(length, len(rows))] = rows[:length]
    return out


def engine_metrics(db_codes, query_codes, bits, split: Split) -> list[dict]:
    """Hamming-ball engine: plain top-10, then cosine re-ranking of growing candidate budgets."""
    table = backend_class("table").build(db_codes, bits)
    n = len(db_codes)
    rows = []
    for budget in (None, *RERANK_BUDGETS):
        wanted = 10 if budget is None else max(10, int(round(budget * n)))
        touched, radii, top = [], [], []
        start = time.perf_counter()
        for code, query in zip(query_codes, split.queries):
            found = table.search(code, wanted, bits)
            touched.append(found.documents_touched / n)
            radii.append(found.radius)
            if budget is None:
                top.append(pad_ranking(found.rows[:10], 10))
            else:
                scores = split.database[found.rows] @ query
                top.append(pad_ranking(found.rows[np.argsort(-scores)[:10]], 10))
        seconds = time.perf_counter() - start
        rows.append({
            "rerank_budget": 0.0 if budget is None else budget,
            "touched_fraction": float(np.mean(touched)),
            "radius": float(np.mean(radii)),
            "engine_recall@10": recall_at_k(np.array(top), split.true_neighbours, 10),
            "queries_per_second": len(query_codes) / seconds,
        })
    return rows


def evaluate(method_name: str, bits: int, seed: int, split: Split) -> tuple[dict, list[dict]]:
    started = time.perf_counter()
    method = create_method(method_name, bits, seed)
    database, queries = ((split.database_sequences, split.query_sequences)
                         if method.reads_tokens else (split.database, split.queries))
    if database is None:
        raise HashIndexError(f"{method_name} reads token sequences; the dataset has none")
    method.fit(database)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    db_codes = method.encode(database)
    encode_seconds = time.perf_counter() - started
    query_codes = method.encode(queries)
    if db_codes.shape[1] * 8 != method.bits:
        raise HashIndexError(f"{method_name} made {db_codes.shape[1] * 8}-bit codes, not the "
                             f"{method.bits} asked for")
    bits = method.bits  # sign keeps the embedding dimension
    ranked = hamming_ranking(db_codes, query_codes, bits, split.map_depth)
    summary = {"method": method_name, "bits": bits, "seed": seed,
               "fit_seconds": fit_seconds, "encode_seconds": encode_seconds,
               "documents": len(database), "embed_passes": 2 if method.reads_tokens else 1,
               **ranking_metrics(ranked, split)}
    return summary, engine_metrics(db_codes, query_codes, bits, split)
