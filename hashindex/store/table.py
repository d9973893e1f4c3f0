"""The hash table: sorted distinct code keys → offsets → row ids, all memory-mappable arrays.

Bucket b holds rows[offsets[b]:offsets[b+1]], every row whose code has key keys[b]. A Hamming
ball of radius r is searched by XOR-ing the query key with every flip mask of weight r and
looking all the probes up at once. For radii where whole-code flips explode, a substring
index (multi-index hashing, substrings.py) finds every code of the ball from 16-bit pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb
from pathlib import Path

import numpy as np

from hashindex.codes import code_bytes as bytes_for_bits
from hashindex.codes import hamming_ball_masks
from hashindex.store.keys import codes_to_keys, find_keys, keys_to_codes, sort_order
from hashindex.store.substrings import SubstringIndex, ranges_index

TABLE_FILES = ("keys.npy", "offsets.npy", "rows.npy")
SUBSTRING_FILES = ("substring_order.npy", "substring_offsets.npy")  # absent in older indexes
# Below one distinct code per 16-bit substring value the substring index is mostly empty
# offsets (1 MiB at 64 bits, whatever the size), and one scan of the codes takes well under a
# millisecond: smaller tables are built without it.
MIN_SUBSTRING_CODES = 1 << 16


def row_dtype(count: int):
    return np.uint32 if count < 2**32 else np.uint64


@dataclass
class BallProbe:
    """Result of probing the table at one radius."""

    rows: np.ndarray  # row ids found at exactly this radius
    buckets: np.ndarray  # bucket indices hit
    probes: int  # codes looked up


class HashTable:
    def __init__(self, bits: int, keys: np.ndarray, offsets: np.ndarray, rows: np.ndarray,
                 substrings: SubstringIndex | None = None):
        self.bits = bits
        self.code_bytes = bytes_for_bits(bits)
        self.keys = keys
        self.offsets = offsets
        self.rows = rows
        self.substrings = substrings
        self._bucket_codes: np.ndarray | None = None

    @classmethod
    def build(cls, codes: np.ndarray, bits: int, substring_index: bool = True) -> HashTable:
        """Group row ids 0..n-1 by code; with `substring_index` (and at least
        MIN_SUBSTRING_CODES distinct codes), also the multi-index over 16-bit substrings
        ((m − 1)·4 more bytes per distinct code, m = bits / 16)."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        keys = codes_to_keys(codes)
        order = sort_order(keys)
        sorted_keys = keys[order] if keys.ndim == 1 else keys[:, order]
        n = len(codes)
        if n:
            if sorted_keys.ndim == 1:
                starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
            else:
                changed = (sorted_keys[:, 1:] != sorted_keys[:, :-1]).any(axis=0)
                starts = np.flatnonzero(np.r_[True, changed])
        else:
            starts = np.zeros(0, dtype=np.int64)
        distinct = sorted_keys[starts] if sorted_keys.ndim == 1 else sorted_keys[:, starts]
        dtype = row_dtype(n + 1)
        offsets = np.r_[starts, n].astype(dtype)
        distinct = np.ascontiguousarray(distinct)
        table = cls(bits, distinct, offsets, order.astype(row_dtype(n)))
        if substring_index and table.distinct_codes >= MIN_SUBSTRING_CODES:
            table.substrings = SubstringIndex.build(table.bucket_codes())
        return table

    def arrays(self) -> dict[str, np.ndarray]:
        out = dict(zip(TABLE_FILES, (self.keys, self.offsets, self.rows)))
        if self.substrings is not None:
            out.update(zip(SUBSTRING_FILES, (self.substrings.order, self.substrings.offsets)))
        return out

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays().values())

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, array in self.arrays().items():
            np.save(directory / name, array)
            paths.append(directory / name)
        return paths

    @classmethod
    def load(cls, directory: Path, bits: int, mmap: bool = True) -> HashTable:
        mode = "r" if mmap else None
        arrays = [np.load(directory / name, mmap_mode=mode) for name in TABLE_FILES]
        substrings = None
        if all((directory / name).is_file() for name in SUBSTRING_FILES):
            substrings = SubstringIndex(
                *(np.load(directory / name, mmap_mode=mode) for name in SUBSTRING_FILES))
        return cls(bits, *arrays, substrings=substrings)

    @property
    def distinct_codes(self) -> int:
        return len(self.offsets) - 1

    def bucket_codes(self) -> np.ndarray:
        """Distinct codes (M, bits/8), decoded from the keys once and kept."""
        if self._bucket_codes is None:
            self._bucket_codes = keys_to_codes(np.asarray(self.keys), self.code_bytes)
        return self._bucket_codes

    def bucket_sizes(self) -> np.ndarray:
        return np.diff(np.asarray(self.offsets, dtype=np.int64))

    def rows_of_buckets(self, buckets: np.ndarray) -> np.ndarray:
        """Concatenated row ids of the given buckets (vectorised gather)."""
        if len(buckets) == 0:
            return np.zeros(0, dtype=np.int64)
        starts = np.asarray(self.offsets[buckets], dtype=np.int64)
        lengths = np.asarray(self.offsets[buckets + 1], dtype=np.int64) - starts
        return np.asarray(self.rows[ranges_index(starts, lengths)], dtype=np.int64)

    def flips_cheaper_than_scan(self, radius: int) -> bool:
        """Probing C(bits, r) flipped codes beats scanning the M distinct codes while C ≤ M."""
        return comb(self.bits, radius) <= max(self.distinct_codes, 1)

    def bucket_distances(self, query_code: np.ndarray) -> np.ndarray:
        """Hamming distance from the query to every distinct code, by popcount on the integer
        keys (one word per code up to 64 bits): the scan path for large radii."""
        query_key = codes_to_keys(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
        counts = np.bitwise_count(np.asarray(self.keys) ^ query_key)
        return counts.astype(np.int64) if counts.ndim == 1 else counts.sum(axis=0, dtype=np.int64)

    def probe(self, query_code: np.ndarray, radius: int) -> BallProbe:
        """All rows whose code is at Hamming distance exactly `radius`, by bit flips."""
        query_key = codes_to_keys(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
        mask_keys = mask_keys_for(self.bits, radius)
        probes = query_key ^ mask_keys  # broadcasts for single- and multi-word keys
        found = find_keys(self.keys, probes)
        buckets = found[found >= 0]
        probe_count = mask_keys.shape[-1]
        return BallProbe(rows=self.rows_of_buckets(buckets), buckets=buckets, probes=probe_count)


@lru_cache(maxsize=64)
def mask_keys_for(bits: int, radius: int) -> np.ndarray:
    """Flip masks of weight `radius` as table keys (cached per bits and radius)."""
    return codes_to_keys(hamming_ball_masks(bits, radius))
