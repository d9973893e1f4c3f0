"""IndexBinaryMultiHash: multi-index hashing (Norouzi et al. 2012).

The code is cut into `nhash` substrings of b bits, one table each. By the pigeonhole principle a
code within radius r of the query matches some substring within ⌊r / nhash⌋ flips, so setting
nflip to that keeps the search exact.
"""

import faiss

from hashindex.backends.faiss_common import RangeSearchBackend


class MultiHashBackend(RangeSearchBackend):
    name = "multihash"

    @classmethod
    def make_index(cls, bits, count, options):
        substring_bits = min(options.substring_bits, bits)
        return faiss.IndexBinaryMultiHash(bits, bits // substring_bits, substring_bits)

    def prepare(self, radius):
        self.index.nflip = min(radius // self.index.nhash, self.index.b)

    def next_radius(self, radius):
        """The largest radius the next flip count covers: every radius up to it costs the same
        probes."""
        flips = (radius + 1) // self.index.nhash
        return self.index.nhash * (flips + 1) - 1
