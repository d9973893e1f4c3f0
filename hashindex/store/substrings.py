"""Multi-index hashing over the table's distinct codes (Norouzi, Punjani & Fleet, CVPR 2012).

Each code is cut into m substrings of (up to) 16 bits. If a code lies within Hamming distance
m·(s+1) − 1 of the query, at least one of its substrings lies within s of the query's: so
probing every substring's own small table by bit flips of weight 0..s finds every code of that
ball, with C(16, s) probes per substring instead of C(bits, r) for the whole code. That is what
keeps k-NN sublinear when the k-th neighbour sits at a radius where whole-code flips explode.

Substring j's table is `order[j]`: the distinct-code indices sorted by substring value, with
`offsets[j]` over the 2^16 values. The first substring is the top 16 bits of the sorted keys,
so its order is the identity and is not stored.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

SUBSTRING_BITS = 16
VALUES = 1 << SUBSTRING_BITS


def substring_values(codes: np.ndarray) -> np.ndarray:
    """(n, B) uint8 codes → (m, n) uint32 values of their 2-byte substrings (big-endian)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.shape[1] % 2:
        codes = np.concatenate([codes, np.zeros((len(codes), 1), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(codes.view(">u2").astype(np.uint32).T)


def ranges_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, start + length) for every pair, vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


@lru_cache(maxsize=SUBSTRING_BITS + 1)
def substring_masks(radius: int) -> np.ndarray:
    """The C(16, radius) 16-bit flip masks of weight exactly `radius`."""
    masks = [sum(1 << p for p in combo) for combo in combinations(range(SUBSTRING_BITS), radius)]
    out = np.array(masks, dtype=np.uint32)
    out.setflags(write=False)
    return out


class SubstringIndex:
    def __init__(self, order: np.ndarray, offsets: np.ndarray):
        self.order = order  # (m - 1, M) distinct-code indices by substring value, j ≥ 1
        self.offsets = offsets  # (m, 2^16 + 1)

    @classmethod
    def build(cls, distinct_codes: np.ndarray) -> SubstringIndex:
        values = substring_values(distinct_codes)
        count = values.shape[1]
        dtype = np.uint32 if count < 2**32 else np.uint64
        order = np.empty((len(values) - 1, count), dtype=dtype)
        offsets = np.empty((len(values), VALUES + 1), dtype=dtype)
        grid = np.arange(VALUES + 1)
        for j, row in enumerate(values):
            if j == 0:  # the sorted keys are already in this substring's order
                offsets[0] = np.searchsorted(row, grid)
                continue
            order[j - 1] = np.argsort(row, kind="stable")
            offsets[j] = np.searchsorted(row[order[j - 1]], grid)
        return cls(order, offsets)

    @property
    def substrings(self) -> int:
        return len(self.offsets)

    @staticmethod
    def query_values(query_code: np.ndarray) -> np.ndarray:
        return substring_values(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))[:, 0]

    def substring_candidates(self, query_values: np.ndarray, substring: int,
                             substring_radius: int) -> np.ndarray:
        """Distinct-code indices whose `substring` is at distance exactly `substring_radius`
        from the query's (sorted positions for substring 0, whose order is the identity)."""
        probes = query_values[substring] ^ substring_masks(substring_radius)
        offsets = self.offsets[substring]
        starts = offsets[probes].astype(np.int64)
        positions = ranges_index(starts, offsets[probes + 1].astype(np.int64) - starts)
        if substring == 0:
            return positions
        return np.asarray(self.order[substring - 1][positions], dtype=np.int64)

    def candidates(self, query_code: np.ndarray, substring_radius: int) -> np.ndarray:
        """Indices whose substring j is at distance exactly `substring_radius` from the
        query's, for any j (may repeat)."""
        values = self.query_values(query_code)
        return np.concatenate([self.substring_candidates(values, j, substring_radius)
                               for j in range(self.substrings)])
