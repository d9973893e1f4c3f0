"""IndexBinaryHNSW: a navigable small-world graph over the codes. Approximate; FAISS has no
range search for it, so ties at the k-th distance are not completed."""

import faiss
import numpy as np

from hashindex.backends.base import empty_candidates
from hashindex.backends.faiss_common import FaissBackend

NEIGHBOURS = 32
EF_SEARCH = 64


class HNSWBackend(FaissBackend):
    name = "hnsw"
    description = "FAISS IndexBinaryHNSW: graph search, k nearest found greedily (approximate)"
    exact = False

    @classmethod
    def make_index(cls, bits, count):
        return faiss.IndexBinaryHNSW(bits, NEIGHBOURS)

    def search(self, query_code, k, max_radius):
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        self.index.hnsw.efSearch = max(EF_SEARCH, k)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        labels, distances, radius = self.knn_within(query, k, max_radius)
        return self.finish(labels, distances, radius, max(self.index.hnsw.efSearch, k))
