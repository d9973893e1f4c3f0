"""Multi-index hashing over the table's distinct codes (Norouzi, Punjani & Fleet, CVPR 2012).

Each code is cut into m substrings of (up to) 16 bits. If a code lies within Hamming distance
m·(s+1) − 1 of the query, at least one of its substrings lies within s of the query's: so
probing every substring's own small table by bit flips of weight 0..s finds every code of that
ball, with C(16, s) probes per substring instead of C(bits, r) for the whole code. That is what
keeps k-NN sublinear when the k-th neighbour sits at a radius where whole-code flips explode.

Substring j's table lists the run starts (positions in the table's sorted keys, one per
distinct code) sorted by substring value, with `offsets[j]` over the 2^16 values. Positions
are stored in as few bytes as the table's size allows: 3 up to 16.7M documents, where a
uint32 would spend a quarter of each entry on zeros. The first substring is the top 16 bits of
the sorted keys, so it needs no list: its offsets point straight into the keys.
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


def position_bytes(count: int) -> int:
    """Bytes a position below `count` needs: 3, 4 or 8."""
    return 3 if count <= 1 << 24 else 4 if count <= 1 << 32 else 8


def pack_positions(positions: np.ndarray, width: int) -> np.ndarray:
    """int64 positions → (n, width) little-endian bytes."""
    raw = np.ascontiguousarray(positions, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(raw[:, :width])


def unpack_positions(packed: np.ndarray) -> np.ndarray:
    """(n, width) little-endian bytes → int64 positions."""
    raw = np.zeros((len(packed), 8), dtype=np.uint8)
    raw[:, : packed.shape[1]] = packed
    return raw.view("<u8").reshape(-1).astype(np.int64)


class SubstringIndex:
    def __init__(self, positions: np.ndarray, offsets: np.ndarray):
        self.positions = positions  # (m - 1, D, width) bytes: run starts by substring j ≥ 1
        self.offsets = offsets  # (m, 2^16 + 1); row 0 into the keys, rows j ≥ 1 into positions

    @classmethod
    def build(cls, distinct_codes: np.ndarray, run_starts: np.ndarray,
              documents: int) -> SubstringIndex:
        """From the table's distinct codes (in key order) and where each one's run starts."""
        values = substring_values(distinct_codes)
        width = position_bytes(documents)
        dtype = np.uint32 if documents < 2**32 else np.uint64
        run_starts = np.asarray(run_starts, dtype=np.int64)
        positions = np.empty((len(values) - 1, len(run_starts), width), dtype=np.uint8)
        offsets = np.empty((len(values), VALUES + 1), dtype=dtype)
        grid = np.arange(VALUES + 1)
        # the sorted keys are already in the first substring's order, runs included
        offsets[0] = np.r_[run_starts, documents][np.searchsorted(values[0], grid)]
        for j in range(1, len(values)):
            order = np.argsort(values[j], kind="stable")
            positions[j - 1] = pack_positions(run_starts[order], width)
            offsets[j] = np.searchsorted(values[j][order], grid)
        return cls(positions, offsets)

    @property
    def substrings(self) -> int:
        return len(self.offsets)

    @staticmethod
    def query_values(query_code: np.ndarray) -> np.ndarray:
        return substring_values(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))[:, 0]

    def substring_candidates(self, query_values: np.ndarray, substring: int,
                             substring_radius: int) -> np.ndarray:
        """Positions whose `substring` is at distance exactly `substring_radius` from the
        query's: run starts for j ≥ 1, every position of those runs for substring 0."""
        probes = query_values[substring] ^ substring_masks(substring_radius)
        offsets = self.offsets[substring]
        starts = offsets[probes].astype(np.int64)
        entries = ranges_index(starts, offsets[probes + 1].astype(np.int64) - starts)
        if substring == 0:
            return entries
        return unpack_positions(np.asarray(self.positions[substring - 1][entries]))

    def candidates(self, query_code: np.ndarray, substring_radius: int) -> np.ndarray:
        """Positions whose substring j is at distance exactly `substring_radius` from the
        query's, for any j (may repeat)."""
        values = self.query_values(query_code)
        return np.concatenate([self.substring_candidates(values, j, substring_radius)
                               for j in range(self.substrings)])
