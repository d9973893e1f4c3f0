"""IndexBinaryHash: one hash table on the first b bits, probed with nflip bit flips.

Exact here: nflip = the radius (at most b), so every code within the radius has a prefix within
nflip flips of the query's prefix, and FAISS filters the bucket contents by the full distance.
b = min(bits, 20) keeps the flips bounded (Σ C(20, ≤r) ≤ 2^20 probes) while buckets stay small
up to about a million documents.
"""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend

PREFIX_BITS = 20


class HashBackend(RangeSearchBackend):
    name = "hash"
    description = "FAISS IndexBinaryHash: table on a 20-bit prefix, probed by bit flips (exact)"
    exact = True

    @classmethod
    def make_index(cls, bits, count):
        return faiss.IndexBinaryHash(bits, min(bits, PREFIX_BITS))

    def prepare(self, radius):
        self.index.nflip = min(radius, self.index.b)
