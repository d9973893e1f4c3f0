"""IndexBinaryIVF: codes clustered into lists by Hamming k-means; a query scans nprobe lists.

Approximate: a neighbour in an unvisited list is missed.
"""

import faiss
import numpy as np

from hashindex.backends.faiss_common import FaissBackend
from hashindex.search_backend import empty_candidates


class IVFBackend(FaissBackend):
    name = "ivf"
    exact = False

    @classmethod
    def make_index(cls, bits, count, options):
        nlist = options.nlist or int(max(1, min(65536, round(np.sqrt(max(count, 1))))))
        nlist = max(1, min(nlist, max(count, 1)))  # k-means needs a point per list
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        index.cp.min_points_per_centroid = 1  # small collections train without warnings
        return index

    def search(self, query_code, k, max_radius, options=None):
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        from hashindex.backends.options import IVFSearchOptions

        self.index.nprobe = min((options or IVFSearchOptions()).nprobe, self.index.nlist)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        _, _, radius = self.knn_within(query, k, max_radius)
        # complete ties at the k-th distance within the visited lists
        labels, distances = self.range_within(query, radius)
        touched = int(self.index.ntotal * self.index.nprobe / self.index.nlist)
        return self.finish(labels, distances, radius, touched)
