"""IndexBinaryHash: one hash table on the first b bits, probed with nflip bit flips.

Exact here: b = min(bits, 64) and nflip = the radius, so every code within the radius has a
prefix within nflip flips of the query's prefix, and FAISS filters by the full distance.
"""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend


class HashBackend(RangeSearchBackend):
    name = "hash"
    description = "FAISS IndexBinaryHash: table on a ≤64-bit prefix, probed by bit flips (exact)"
    exact = True

    @classmethod
    def make_index(cls, bits, count):
        return faiss.IndexBinaryHash(bits, min(bits, 64))

    def prepare(self, radius):
        self.index.nflip = radius
