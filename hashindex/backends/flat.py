"""IndexBinaryFlat: brute-force scan of every code. Exact; the reference for the others."""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend


class FlatBackend(RangeSearchBackend):
    name = "flat"
    description = "FAISS IndexBinaryFlat: exact brute-force Hamming scan (SIMD popcount)"
    exact = True

    @classmethod
    def make_index(cls, bits, count):
        return faiss.IndexBinaryFlat(bits)

    def radius_for_k(self, query, k, max_radius):
        # one k-NN scan gives the k-th distance directly
        _, distances = self.knn(query, k)
        if len(distances) < k:
            return max_radius
        return int(min(distances[-1], max_radius))

    def search(self, query_code, k, max_radius):
        result = super().search(query_code, k, max_radius)
        result.documents_touched = result.buckets_touched = int(self.index.ntotal)
        return result

