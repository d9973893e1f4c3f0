"""A navigable graph over the documents, searched by the query code's Hamming distance.

The graph is HNSW's (Malkov & Yashunin 2018), built by FAISS over the float embeddings, so its
edges join true neighbours; only the edges are kept. A query walks it with the cheapest
distance there is, the Hamming distance of the codes (a few popcounts, where a float distance
costs hundreds of multiply-adds): greedy descent through the upper layers, then a beam search
of width ef_search in layer 0. The beam's documents are the candidates the engine re-ranks by
cosine with the stored vectors. Approximate: a neighbour the walk never reaches is missed;
ef_search trades speed for recall. Measured in benchmarks/results/frontier.

`walk=vectors` compares the float query with the stored re-rank vectors instead (int8, a
scale per row: a quarter of a float's bytes): a Hamming distance is a coarse guide, so the
beam must be ~8x wider for the same recall, while the int8 score is nearly the float one, so
the beam is already ranked and needs no re-rank and the query needs no code.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from numba import njit

from hashindex.array_files import load_array
from hashindex.backends.options import GraphBuildOptions, GraphSearchOptions
from hashindex.bitops import code_words, popcount
from hashindex.errors import HashIndexError
from hashindex.prefetch import prefetch_row
from hashindex.search_backend import Backend, Candidates, empty_candidates

NO_VECTORS = np.zeros((1, 1), dtype=np.int8)  # the walk's vector arguments in walk=codes
NO_SCALES = np.ones(1, dtype=np.float32)

GRAPH_FILES = ("neighbors.npy", "offsets.npy", "header.npy", "codes.npy")


class GraphBackend(Backend):
    name = "graph"
    exact = False

    reads_vectors = True  # the engine attaches the segment's VectorStore (walk=vectors)
    walks = True  # takes walk_past: a row the walk treats as visited (search_backend)

    def __init__(self, bits: int, neighbors, offsets, header, codes):
        super().__init__(bits)
        self.vectors = None  # the re-rank vectors of these rows, attached by the engine
        self._walked = (None,)  # (vectors, their int8 matrix and scales as plain arrays)
        # plain ndarray views of the (memory-mapped) files: numba checks a memmap argument
        # ~5x slower, ~2 us a query over the walk's arguments
        self.neighbors = np.asarray(neighbors)  # int32: every node's neighbours, by level
        self.offsets = np.asarray(offsets)  # int64 (N + 1,): where each node's lists start
        self.header = np.asarray(header)  # int64: entry point, top level, HNSW's offsets
        self.codes = np.asarray(codes)  # uint64 (N, W): the codes by row, as key words
        self.visits = threading.local()  # each thread's visited marks: searches run in parallel

    @classmethod
    def build(cls, codes, bits, options=None, embeddings=None):
        import faiss

        options = options or GraphBuildOptions()
        if embeddings is None:
            raise HashIndexError("the graph backend is built over the documents' embeddings; "
                                 "build the index with --backend graph or --store-embeddings")
        words = code_words(codes)
        if len(codes) == 0:
            return cls(bits, np.zeros(0, np.int32), np.zeros(1, np.int64),
                       np.array([-1, 0, 0, 0], np.int64), words)
        index = faiss.IndexHNSWFlat(embeddings.shape[1], options.neighbours,
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options.ef_construction
        for start in range(0, len(embeddings), 65_536):
            index.add(np.ascontiguousarray(embeddings[start : start + 65_536], np.float32))
        graph = index.hnsw
        header = np.concatenate([[graph.entry_point, graph.max_level],
                                 faiss.vector_to_array(graph.cum_nneighbor_per_level)])
        return cls(bits, faiss.vector_to_array(graph.neighbors).astype(np.int32),
                   faiss.vector_to_array(graph.offsets).astype(np.int64),
                   header.astype(np.int64), words)

    def nbytes(self) -> int:
        """Bytes a search keeps hot: the neighbour lists, their offsets and the codes."""
        return sum(int(a.nbytes) for a in (self.neighbors, self.offsets, self.header,
                                           self.codes))

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = (self.neighbors, self.offsets, self.header, self.codes)
        for name, array in zip(GRAPH_FILES, arrays):
            np.save(directory / name, array)
        return [directory / name for name in GRAPH_FILES]

    @staticmethod
    def open_files(directory: Path) -> tuple:
        """Every array memory-mapped now: a reader keeps the build it opened."""
        return tuple(load_array(directory / name) for name in GRAPH_FILES)  # headers checked

    def search(self, query_code, k, max_radius, options=None, embedding=None,
               walk_past: int | None = None):
        """The beam's rows: by Hamming distance to `query_code` (walk=codes), or with
        walk=vectors by score against `embedding` (the rows' Hamming distances then computed
        only when a code is given, else 0)."""
        if len(self.offsets) <= 1:
            return empty_candidates(False, max_radius)
        options = options or GraphSearchOptions()
        ef = min(max(options.ef_search, k), len(self.offsets) - 1)  # never wider than the rows
        by_vectors = options.walk == "vectors" or (
            options.walk == "auto" and embedding is not None and self.vectors is not None
            and getattr(self.vectors, "scales", None) is not None)
        stamp = getattr(self.visits, "stamp", None)
        if stamp is None or self.visits.generation == 255:
            # one byte a node (FAISS's VisitedTable): it stays in the cache; cleared every
            # 255 queries
            stamp = self.visits.stamp = np.zeros(len(self.offsets) - 1, dtype=np.uint8)
            self.visits.generation = 0
        self.visits.generation += 1
        if walk_past is not None:  # never entered: the walk goes as if the row were not there
            stamp[walk_past] = self.visits.generation
        if by_vectors:
            vectors, scales, query = self.walk_vectors(embedding)
            words = np.zeros(self.codes.shape[1], dtype=np.uint64)
        else:
            vectors, scales, query = NO_VECTORS, NO_SCALES, np.zeros(1, dtype=np.float32)
            words = code_words(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))[0]
        rows, keys, expanded, compared = beam_search(
            self.neighbors, self.offsets, self.header, self.codes, words, vectors, scales,
            query, by_vectors, ef, stamp, self.visits.generation)
        if not by_vectors:
            distances = keys.astype(np.int64)
            keep = distances <= max_radius
            rows, distances = rows[keep], distances[keep]
            return Candidates.ranked(rows, distances,
                                     radius=distances.max() if len(distances) else 0,
                                     buckets=expanded, documents=compared, exact=False)
        scores = -keys
        if query_code is not None:
            query_words = code_words(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
            distances = popcount_rows(self.codes, rows, query_words[0])
            if max_radius < self.bits:  # a radius cap holds here too
                keep = distances <= max_radius
                rows, distances, scores = rows[keep], distances[keep], scores[keep]
        else:
            distances = np.zeros(len(rows), dtype=np.int64)
        order = np.lexsort((rows, -scores))
        return Candidates(rows[order], distances[order],
                          radius=int(distances.max()) if len(distances) else 0,
                          buckets_touched=expanded, documents_touched=compared, exact=False,
                          scores=scores[order])

    def walk_vectors(self, embedding):
        """(int8 vectors, scales, float32 query) for walk=vectors, or a one-line error."""
        if self.vectors is None or getattr(self.vectors, "scales", None) is None:
            raise HashIndexError("the graph's walk=vectors needs the index's int8 re-rank "
                                 "vectors: build with --store-embeddings (--vector-dtype int8)")
        if embedding is None:
            raise HashIndexError("the graph's walk=vectors needs a float query (text or an "
                                 "embedding), not a bare code; use walk=codes")
        if self._walked[0] is not self.vectors:
            self._walked = (self.vectors, np.asarray(self.vectors.vectors),
                            np.asarray(self.vectors.scales))
        return (self._walked[1], self._walked[2],
                np.ascontiguousarray(embedding, dtype=np.float32))


@njit(cache=True, nogil=True)
def popcount_rows(codes, rows, query):
    out = np.empty(len(rows), dtype=np.int64)
    for i in range(len(rows)):
        out[i] = _distance(codes, rows[i], query)
    return out


@njit(cache=True, nogil=True, fastmath=True)
def _score(vectors, scales, row, query):
    # not inlined by numba: inlined, it would lose fastmath in the walk and add the 384
    # products one after another (372 against ~50 ns a row)
    total = np.float32(0.0)
    for j in range(vectors.shape[1]):
        total += np.float32(vectors[row, j]) * query[j]
    return total * scales[row]


@njit(cache=True, nogil=True, inline="always")
def _distance(codes, row, query):
    total = 0
    for w in range(codes.shape[1]):
        total += popcount(codes[row, w] ^ query[w])
    return total


@njit(cache=True, nogil=True)
def _push(keys, values, size, key, value):
    """Push onto a binary min-heap held in (keys, values)[:size]; returns the new size."""
    i = size
    keys[i], values[i] = key, value
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        values[parent], values[i] = values[i], values[parent]
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _pop(keys, values, size):
    """Remove the heap's smallest key; returns (key, value, new size)."""
    key, value = keys[0], values[0]
    size -= 1
    keys[0], values[0] = keys[size], values[size]
    i = 0
    while True:
        left, smallest = 2 * i + 1, i
        if left < size and keys[left] < keys[smallest]:
            smallest = left
        if left + 1 < size and keys[left + 1] < keys[smallest]:
            smallest = left + 1
        if smallest == i:
            break
        keys[smallest], keys[i] = keys[i], keys[smallest]
        values[smallest], values[i] = values[i], values[smallest]
        i = smallest
    return key, value, size


@njit(cache=True, nogil=True, inline="always")
def _key(codes, words, vectors, scales, query, by_vectors, row):
    """The walk's distance to `row`: Hamming, or the negated score with walk=vectors."""
    if by_vectors:
        return -_score(vectors, scales, row, query)
    return np.float32(_distance(codes, row, words))


@njit(cache=True, nogil=True)
def beam_search(neighbors, offsets, header, codes, words, vectors, scales, query, by_vectors,
                ef, stamp, generation):
    """HNSW's search under _key: greedy through the upper layers from the entry point, then
    a beam of width ef in layer 0. Returns the beam (rows, keys), the nodes expanded and the
    distances computed. `stamp` marks visited nodes with `generation`."""
    entry, top = header[0], header[1]
    levels = header[2:]
    current = entry
    best = _key(codes, words, vectors, scales, query, by_vectors, current)
    compared = 1
    for level in range(top, 0, -1):
        moved = True
        while moved:
            moved = False
            for e in range(offsets[current] + levels[level], offsets[current] + levels[level + 1]):
                node = neighbors[e]
                if node < 0:
                    break
                distance = _key(codes, words, vectors, scales, query, by_vectors, node)
                compared += 1
                if distance < best:
                    best, current, moved = distance, node, True
    degree = levels[1] - levels[0]
    capacity = min(ef * degree, len(stamp)) + 1  # a node is pushed once at most
    cand_keys = np.empty(capacity, np.float32)
    cand_rows = np.empty(capacity, np.int64)
    res_keys = np.empty(ef + 1, np.float32)  # negated distances: a max-heap of the beam
    res_rows = np.empty(ef + 1, np.int64)
    stamp[current] = generation
    n_cand = _push(cand_keys, cand_rows, 0, best, current)
    n_res = _push(res_keys, res_rows, 0, -best, current)
    expanded = 0
    fresh = np.empty(degree, np.int64)  # a node's unvisited neighbours
    keys = np.empty(degree, np.float32)
    while n_cand > 0:
        distance, node, n_cand = _pop(cand_keys, cand_rows, n_cand)
        if n_res >= ef and distance > -res_keys[0]:
            break
        expanded += 1
        n_fresh = 0
        for e in range(offsets[node] + levels[0], offsets[node] + levels[1]):
            other = neighbors[e]
            if other < 0:
                break
            if stamp[other] != generation:
                stamp[other] = generation
                fresh[n_fresh] = other
                n_fresh += 1
                if by_vectors:  # memory, not arithmetic, is a walk's cost
                    prefetch_row(vectors, other)
                else:
                    prefetch_row(codes, other)
        # the distances in one loop of their own, once the rows are on their way
        for i in range(n_fresh):
            keys[i] = _key(codes, words, vectors, scales, query, by_vectors, fresh[i])
        compared += n_fresh
        for i in range(n_fresh):
            other, d = fresh[i], keys[i]
            if n_res < ef or d < -res_keys[0]:
                if n_cand < capacity:
                    n_cand = _push(cand_keys, cand_rows, n_cand, d, other)
                n_res = _push(res_keys, res_rows, n_res, -d, other)
                if n_res > ef:
                    _, _, n_res = _pop(res_keys, res_rows, n_res)
    return res_rows[:n_res].copy(), -res_keys[:n_res], expanded, compared
