"""IndexBinaryIVF: codes clustered into lists by Hamming k-means; a query scans nprobe lists.

Approximate: a neighbour in an unvisited list is missed.
"""

import faiss
import numpy as np

from hashindex.backends.base import empty_candidates
from hashindex.backends.faiss_common import FaissBackend

NPROBE = 16


class IVFBackend(FaissBackend):
    name = "ivf"
    description = "FAISS IndexBinaryIVF: scans the nprobe nearest of √N lists (approximate)"
    exact = False

    @classmethod
    def make_index(cls, bits, count):
        nlist = int(max(1, min(65536, round(np.sqrt(max(count, 1))))))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        index.nprobe = min(NPROBE, nlist)
        index.cp.min_points_per_centroid = 1  # small collections train without warnings
        return index

    def search(self, query_code, k, max_radius):
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        _, _, radius = self.knn_within(query, k, max_radius)
        # complete ties at the k-th distance within the visited lists
        labels, distances = self.range_within(query, radius)
        touched = int(self.index.ntotal * self.index.nprobe / self.index.nlist)
        return self.finish(labels, distances, radius, touched)
