"""A navigable graph over the documents, searched by the query code's Hamming distance.

The graph is HNSW's (Malkov & Yashunin 2018), built by FAISS over the float embeddings, so its
edges join true neighbours; only the edges are kept. A query walks it with the cheapest
distance there is, the Hamming distance of the codes (a few popcounts, where a float distance
costs hundreds of multiply-adds): greedy descent through the upper layers, then a beam search
of width ef_search in layer 0. The beam's documents are the candidates the engine re-ranks by
cosine with the stored vectors. Approximate: a neighbour the walk never reaches is missed;
ef_search trades speed for recall. Measured in benchmarks/results/frontier.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from numba import njit

from hashindex.backends.options import GraphBuildOptions, GraphSearchOptions
from hashindex.bitops import code_words, popcount
from hashindex.errors import HashIndexError
from hashindex.search_backend import Backend, Candidates, empty_candidates

GRAPH_FILES = ("neighbors.npy", "offsets.npy", "header.npy", "codes.npy")


class GraphBackend(Backend):
    name = "graph"
    exact = False

    def __init__(self, bits: int, neighbors, offsets, header, codes):
        super().__init__(bits)
        self.neighbors = neighbors  # int32: every node's neighbours, level by level
        self.offsets = offsets  # int64 (N + 1,): where each node's lists start
        self.header = header  # int64: entry point, top level, then HNSW's list offsets
        self.codes = codes  # uint64 (N, W): the codes by row, as key words
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
        return tuple(np.load(directory / name, mmap_mode="r") for name in GRAPH_FILES)

    @classmethod
    def from_files(cls, files: tuple, bits: int):
        return cls(bits, *files)

    @classmethod
    def load(cls, directory: Path, bits: int):
        return cls.from_files(cls.open_files(directory), bits)

    def search(self, query_code, k, max_radius, options=None):
        if len(self.offsets) <= 1:
            return empty_candidates(False, max_radius)
        ef = max((options or GraphSearchOptions()).ef_search, k)
        stamp = getattr(self.visits, "stamp", None)
        if stamp is None:
            stamp = self.visits.stamp = np.zeros(len(self.offsets) - 1, dtype=np.int64)
            self.visits.generation = 0
        self.visits.generation += 1
        query = code_words(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))[0]
        rows, distances, expanded, compared = beam_search(
            self.neighbors, self.offsets, self.header, self.codes, query, ef, stamp,
            self.visits.generation)
        keep = distances <= max_radius
        rows, distances = rows[keep], distances[keep]
        return Candidates.ranked(rows, distances,
                                 radius=distances.max() if len(distances) else 0,
                                 buckets=expanded, documents=compared, exact=False)


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


@njit(cache=True, nogil=True)
def beam_search(neighbors, offsets, header, codes, query, ef, stamp, generation):
    """HNSW's search with Hamming distances: greedy through the upper layers from the entry
    point, then a beam of width ef in layer 0. Returns the beam (rows, distances), the nodes
    expanded and the distances computed. `stamp` marks visited nodes with `generation`."""
    entry, top = header[0], header[1]
    levels = header[2:]
    current = entry
    best = _distance(codes, current, query)
    compared = 1
    for level in range(top, 0, -1):
        moved = True
        while moved:
            moved = False
            for e in range(offsets[current] + levels[level], offsets[current] + levels[level + 1]):
                node = neighbors[e]
                if node < 0:
                    break
                distance = _distance(codes, node, query)
                compared += 1
                if distance < best:
                    best, current, moved = distance, node, True
    degree = levels[1] - levels[0]
    capacity = ef * degree + 1
    cand_keys = np.empty(capacity, np.int64)
    cand_rows = np.empty(capacity, np.int64)
    res_keys = np.empty(ef + 1, np.int64)  # negated distances: a max-heap of the beam
    res_rows = np.empty(ef + 1, np.int64)
    stamp[current] = generation
    n_cand = _push(cand_keys, cand_rows, 0, best, current)
    n_res = _push(res_keys, res_rows, 0, -best, current)
    expanded = 0
    while n_cand > 0:
        distance, node, n_cand = _pop(cand_keys, cand_rows, n_cand)
        if n_res >= ef and distance > -res_keys[0]:
            break
        expanded += 1
        for e in range(offsets[node] + levels[0], offsets[node] + levels[1]):
            other = neighbors[e]
            if other < 0:
                break
            if stamp[other] == generation:
                continue
            stamp[other] = generation
            d = _distance(codes, other, query)
            compared += 1
            if n_res < ef or d < -res_keys[0]:
                if n_cand < capacity:
                    n_cand = _push(cand_keys, cand_rows, n_cand, d, other)
                n_res = _push(res_keys, res_rows, n_res, -d, other)
                if n_res > ef:
                    _, _, n_res = _pop(res_keys, res_rows, n_res)
    return res_rows[:n_res].copy(), -res_keys[:n_res], expanded, compared
