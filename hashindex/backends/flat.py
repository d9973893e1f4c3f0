"""IndexBinaryFlat: brute-force scan of every code. Exact; the reference for the others."""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend


class FlatBackend(RangeSearchBackend):
    name = "flat"
    scans = True

    @classmethod
    def make_index(cls, bits, count, options):
        return faiss.IndexBinaryFlat(bits)

    def within_k(self, query, k, max_radius):
        """One k-NN scan gives the k-th distance, one range scan completes its ties."""
        _, distances = self.knn(query, k)
        radius = max_radius if len(distances) < k else int(min(distances[-1], max_radius))
        labels, distances = self.range_within(query, radius)
        return labels, distances, radius, int(self.index.ntotal)
