"""How much of the exact float top-10 can b-bit codes keep on a corpus, and where a code
model loses it. Ceilings and diagnostics for reading a recall@10 target, not hashing methods:
the float projection keeps what a linear b-dimensional map can before binarisation; codes
optimised freely for every document (queries included, so transductive) show whether b bits
can hold the top-10s at all; a model's recall on its own training documents against unseen
queries separates capacity from generalisation."""

from __future__ import annotations

import faiss
import numpy as np
import torch

from hashindex.baselines.base import pca
from hashindex.embedding.lean import unit_rows
from hashindex.metrics import recall_at_k
from indexer.bench.protocol import hamming_ranking

K = 10


def projected_float_ranking(database, queries, dims: int, depth: int) -> np.ndarray:
    """Cosine ranking over the database's top `dims` principal projections (centred)."""
    mean, projection = pca(database, dims)
    db, q = (unit_rows((x - mean) @ projection) for x in (database, queries))
    index = faiss.IndexFlatIP(dims)
    index.add(np.ascontiguousarray(db))
    return index.search(np.ascontiguousarray(q), depth)[1]


def centred_sign_codes(database, queries) -> tuple[np.ndarray, np.ndarray, int]:
    """Sign bits of every dimension of the centred embedding (padded to whole bytes)."""
    mean = database.mean(axis=0)
    bits = -(-database.shape[1] // 8) * 8

    def pack(x):
        return np.packbits(np.pad(x - mean > 0, ((0, 0), (0, bits - x.shape[1]))), axis=1)

    return pack(database), pack(queries), bits


def in_sample_recall(database: np.ndarray, codes: np.ndarray, bits: int) -> float:
    """Recall@10 with every database document as a query against the others, by codes against
    exact float: what a model keeps on documents it was trained on."""
    found = hamming_ranking(codes, codes, bits, K + 1)
    found = np.array([others(row, i) for i, row in enumerate(found)])
    return recall_at_k(found, top_neighbours(database, database), K)


def others(row: np.ndarray, self_index: int) -> list[int]:
    return [int(j) for j in row if j != self_index][:K]


def free_codes(database: np.ndarray, queries: np.ndarray, initial: np.ndarray, bits: int,
               steps: int = 400, anchors_per_step: int = 1024, temperature: float = 0.02,
               margin: float = 0.05, learning_rate: float = 0.02, seed: int = 0) -> np.ndarray:
    """Packed codes of database then query documents, each optimised directly (no encoder)
    from `initial` (packed, same order) so that its exact top-10 among the database agrees
    with it more than any other database document does: a soft minimum over the top-10's
    agreement above a soft maximum over the rest, by `margin`, through tanh codes sharpened
    as steps pass. Transductive: the queries' own float neighbours are used."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.from_numpy(np.vstack([database, queries]).astype(np.float32))
    n_database, n = len(database), len(database) + len(queries)
    top = top_neighbours(database, vectors.numpy())
    signs = np.unpackbits(initial, axis=1)[:, :bits].astype(np.float32) * 2 - 1
    latent = torch.tensor(signs * 0.5, requires_grad=True)
    optimizer = torch.optim.Adam([latent], lr=learning_rate)
    for step in range(steps):
        sharpness = 1 + 9 * step / max(1, steps - 1)
        rows = torch.randperm(n, generator=generator)[: min(anchors_per_step, n)]
        codes = torch.tanh(sharpness * latent)
        agreement = codes[rows] @ codes[:n_database].T / bits
        positive = torch.zeros_like(agreement, dtype=torch.bool)
        positive.scatter_(1, torch.from_numpy(top[rows.numpy()]), True)
        negative = ~positive
        is_database = rows < n_database
        negative[is_database, rows[is_database]] = False  # a document is not its own neighbour
        low = -temperature * torch.logsumexp((-agreement / temperature).masked_fill(
            ~positive, -1e9), dim=1)
        high = temperature * torch.logsumexp((agreement / temperature).masked_fill(
            ~negative, -1e9), dim=1)
        loss = temperature * torch.nn.functional.softplus(
            (high - low + margin) / temperature).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.packbits(latent.detach().numpy() > 0, axis=1)


def top_neighbours(database: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each row of `vectors`' exact top-10 among the database, itself left out (database rows
    come first in `vectors`)."""
    exact = faiss.IndexFlatIP(database.shape[1])
    exact.add(np.ascontiguousarray(database))
    _, found = exact.search(np.ascontiguousarray(vectors), K + 1)
    return np.array([others(row, i) if i < len(database) else [int(j) for j in row[:K]]
                     for i, row in enumerate(found)], dtype=np.int64)
