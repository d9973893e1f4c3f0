"""IndexBinaryFlat: brute-force scan of every code. Exact; the reference for the others."""

import faiss
import numpy as np

from hashindex.backends.base import empty_candidates
from hashindex.backends.faiss_common import RangeSearchBackend


class FlatBackend(RangeSearchBackend):
    name = "flat"
    description = "FAISS IndexBinaryFlat: exact brute-force Hamming scan (SIMD popcount)"
    exact = True

    @classmethod
    def make_index(cls, bits, count):
        return faiss.IndexBinaryFlat(bits)

    def search(self, query_code, k, max_radius):
        """One k-NN scan gives the k-th distance, one range scan completes its ties."""
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        _, distances = self.knn(query, k)
        radius = max_radius if len(distances) < k else int(min(distances[-1], max_radius))
        labels, distances = self.range_within(query, radius)
        return self.finish(labels, distances, radius, int(self.index.ntotal))
