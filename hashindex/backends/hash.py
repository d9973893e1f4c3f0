"""IndexBinaryHash: one hash table on the first b bits, probed with nflip bit flips.

Exact here: nflip = the radius (at most b), so every code within the radius has a prefix within
nflip flips of the query's prefix, and FAISS filters the bucket contents by the full distance.
b = min(bits, prefix_bits), 20 by default, keeps the flips bounded (Σ C(20, ≤r) ≤ 2^20 probes)
while buckets stay small up to about a million documents.
"""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend


class HashBackend(RangeSearchBackend):
    name = "hash"

    @classmethod
    def make_index(cls, bits, count, options):
        return faiss.IndexBinaryHash(bits, min(bits, options.prefix_bits))

    def prepare(self, radius):
        self.index.nflip = min(radius, self.index.b)
