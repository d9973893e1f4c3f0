"""The peers of benchmarks/defaults.py, ann-benchmarks style: every method behind one adapter
(`fit` the float32 document vectors, `sweep` its knob settings, `set_knob` one of them,
`query` one vector → row ids, `nbytes` of what a query keeps in memory), registered by name
in PEERS. A sweep runs from the fastest setting to the most exact one (its last setting:
exhaustive, or all but the int8 rounding of a quantized peer), so a test can check each
adapter against brute force.

Threads: an adapter builds with `build_threads` and queries with one (the caller pins every
library to one thread before importing them; each query here is one vector, one call).
The optional peers (scann, hnswlib, usearch: the `bench` extra) are imported in `fit`, so the
registry lists them all and a missing one is skipped by name.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

EF_SWEEP = (10, 16, 24, 32, 48, 64, 96, 128, 256, 512)
EF_QUICK = (16, 64, 512)


class Peer:
    """One method behind one interface; `quantized` peers may swap near-ties at their most
    exact setting (int8 rounding), the others return the brute-force top-k there."""

    name = ""
    family = ""
    quantized = False

    def __init__(self, build_threads: int | None = None):
        self.build_threads = build_threads or os.cpu_count() or 1

    def fit(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def sweep(self, quick: bool = False) -> list[dict]:
        return [{}]

    def set_knob(self, **setting) -> None:
        pass

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError


def ef_sweep(quick: bool) -> list[dict]:
    return [{"ef_search": e} for e in (EF_QUICK if quick else EF_SWEEP)]


class FaissFlat(Peer):
    name, family = "faiss-flat", "FAISS IndexFlatIP (exact float32)"

    def fit(self, vectors):
        import faiss

        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def query(self, vector, k):
        return self.index.search(vector[None], k)[1][0]

    def nbytes(self):
        return self.index.ntotal * self.index.d * 4


class FaissHNSW(Peer):
    """FAISS HNSW, M 32, efConstruction 200, over float32 or int8 (scalar-quantized) vectors."""

    def __init__(self, int8: bool, build_threads: int | None = None):
        super().__init__(build_threads)
        self.int8 = int8
        self.quantized = int8
        self.name = "faiss-hnsw-sq8" if int8 else "faiss-hnsw-flat"
        self.family = ("FAISS IndexHNSWSQ (int8, M 32)" if int8
                       else "FAISS IndexHNSWFlat (float32, M 32)")

    def fit(self, vectors):
        import faiss

        d = vectors.shape[1]
        if self.int8:
            self.index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, 32,
                                           faiss.METRIC_INNER_PRODUCT)
        else:
            self.index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 200
        faiss.omp_set_num_threads(self.build_threads)
        try:
            self.index.train(vectors)
            self.index.add(vectors)
        finally:
            faiss.omp_set_num_threads(1)

    def sweep(self, quick=False):
        return ef_sweep(quick)

    def set_knob(self, ef_search):
        self.index.hnsw.efSearch = ef_search

    def query(self, vector, k):
        return self.index.search(vector[None], k)[1][0]

    def nbytes(self):
        import faiss

        return len(faiss.serialize_index(self.index))


class ScaNN(Peer):
    """ScaNN: a k-means tree (√n leaves), anisotropic quantization (AH, 2 dims per 4-bit
    block, threshold 0.2), the AH shortlist reordered by exact float32 dot products. Knobs:
    leaves searched and the shortlist's length."""

    name, family = "scann", "ScaNN (tree + AH + reorder)"
    LEAF_SHARES = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    REORDER = (20, 50, 100, 200, 400)

    def fit(self, vectors):
        import scann

        n = len(vectors)
        self.leaves = max(2, round(math.sqrt(n)))
        self.n = n
        builder = (scann.scann_ops_pybind.builder(vectors, 10, "dot_product")
                   .tree(num_leaves=self.leaves, num_leaves_to_search=self.leaves,
                         training_sample_size=min(n, 250_000))
                   .score_ah(2, anisotropic_quantization_threshold=0.2)
                   .reorder(max(self.REORDER)))
        builder.set_n_training_threads(self.build_threads)
        self.searcher = builder.build()
        self.setting = {"leaves": self.leaves, "reorder": max(self.REORDER)}

    def sweep(self, quick=False):
        shares = (1 / 32, 1.0) if quick else self.LEAF_SHARES
        reorders = (100,) if quick else self.REORDER
        settings = [{"leaves": max(1, round(self.leaves * share)), "reorder": r}
                    for share in shares for r in reorders]
        if quick:
            settings.append({"leaves": self.leaves, "reorder": max(self.REORDER)})
        return settings

    def set_knob(self, leaves, reorder):
        self.setting = {"leaves": leaves, "reorder": reorder}

    def query(self, vector, k):
        rows, _ = self.searcher.search(vector, final_num_neighbors=k,
                                       pre_reorder_num_neighbors=max(k, self.setting["reorder"]),
                                       leaves_to_search=self.setting["leaves"])
        return rows.astype(np.int64)

    def nbytes(self):
        with tempfile.TemporaryDirectory(prefix="scann-") as folder:
            self.searcher.serialize(folder)
            return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


class HnswLib(Peer):
    name, family = "hnswlib", "hnswlib (float32, M 16)"

    def fit(self, vectors):
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        self.index.init_index(max_elements=len(vectors), ef_construction=200, M=16,
                              random_seed=100)
        self.index.set_num_threads(self.build_threads)
        self.index.add_items(vectors, np.arange(len(vectors)))
        self.index.set_num_threads(1)

    def sweep(self, quick=False):
        return ef_sweep(quick)

    def set_knob(self, ef_search):
        self.index.set_ef(ef_search)

    def query(self, vector, k):
        return self.index.knn_query(vector[None], k)[0][0].astype(np.int64)

    def nbytes(self):
        with tempfile.TemporaryDirectory(prefix="hnswlib-") as folder:
            path = os.path.join(folder, "index.bin")
            self.index.save_index(path)
            return os.path.getsize(path)


class USearch(Peer):
    """usearch's HNSW (connectivity 16, expansion_add 128), cosine, over int8 or float32."""

    def __init__(self, dtype: str, build_threads: int | None = None):
        super().__init__(build_threads)
        self.dtype = dtype
        self.quantized = dtype == "i8"
        self.name = f"usearch-{dtype}"
        self.family = f"usearch ({'int8' if dtype == 'i8' else 'float32'}, connectivity 16)"

    def fit(self, vectors):
        from usearch.index import Index

        self.index = Index(ndim=vectors.shape[1], metric="cos", dtype=self.dtype,
                           connectivity=16, expansion_add=128)
        self.index.add(np.arange(len(vectors)), vectors, threads=self.build_threads)

    def sweep(self, quick=False):
        return ef_sweep(quick)

    def set_knob(self, ef_search):
        self.index.expansion_search = ef_search

    def query(self, vector, k):
        return np.asarray(self.index.search(vector, k, threads=1).keys, dtype=np.int64)

    def nbytes(self):
        return int(self.index.serialized_length)


class SignRescore(Peer):
    """Sign bits of the embedding in a FAISS IndexBinaryFlat; k × oversample candidates
    rescored with the float32 vectors (sentence-transformers' binary quantization recipe,
    Qdrant's oversampling and rescoring)."""

    name = "sign-rescore"
    family = "sign bits (IndexBinaryFlat) + float32 rescoring"
    OVERSAMPLE = (1, 2, 3, 4, 6, 8, 12, 16)

    def fit(self, vectors):
        import faiss

        self.vectors = vectors
        self.bits = vectors.shape[1] - vectors.shape[1] % 8
        self.index = faiss.IndexBinaryFlat(self.bits)
        self.index.add(np.packbits(vectors[:, : self.bits] > 0, axis=1))
        self.oversample = max(self.OVERSAMPLE)

    def sweep(self, quick=False):
        return [{"oversample": o} for o in ((2, 16) if quick else self.OVERSAMPLE)]

    def set_knob(self, oversample):
        self.oversample = oversample

    def query(self, vector, k):
        code = np.packbits(vector[None, : self.bits] > 0, axis=1)
        rows = self.index.search(code, k * self.oversample)[1][0]
        rows = rows[rows >= 0]
        return rows[np.argsort(-(self.vectors[rows] @ vector), kind="stable")[:k]]

    def nbytes(self):
        return len(self.vectors) * (self.bits // 8 + self.vectors.shape[1] * 4)


PEERS: dict[str, type[Peer] | object] = {
    "faiss-flat": FaissFlat,
    "faiss-hnsw-sq8": lambda threads=None: FaissHNSW(True, threads),
    "faiss-hnsw-flat": lambda threads=None: FaissHNSW(False, threads),
    "scann": ScaNN,
    "hnswlib": HnswLib,
    "usearch-i8": lambda threads=None: USearch("i8", threads),
    "usearch-f32": lambda threads=None: USearch("f32", threads),
    "sign-rescore": SignRescore,
}


def make_peer(name: str, build_threads: int | None = None) -> Peer:
    return PEERS[name](build_threads)
