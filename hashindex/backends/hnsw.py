"""IndexBinaryHNSW: a navigable small-world graph over the codes. Approximate; FAISS has no
range search for it, so ties at the k-th distance are not completed."""

import faiss
import numpy as np

from hashindex.backends.faiss_common import FaissBackend
from hashindex.search_backend import empty_candidates


class HNSWBackend(FaissBackend):
    name = "hnsw"
    exact = False

    @classmethod
    def make_index(cls, bits, count, options):
        index = faiss.IndexBinaryHNSW(bits, options.neighbours)
        index.hnsw.efConstruction = options.ef_construction
        return index

    def search(self, query_code, k, max_radius, options=None):
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        from hashindex.backends.options import HNSWSearchOptions

        k = min(k, self.index.ntotal)  # FAISS takes an int: a k past the rows gains nothing
        self.index.hnsw.efSearch = max((options or HNSWSearchOptions()).ef_search, k)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        labels, distances, radius = self.knn_within(query, k, max_radius)
        return self.finish(labels, distances, radius, max(self.index.hnsw.efSearch, k))
