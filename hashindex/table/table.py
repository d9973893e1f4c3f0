"""The hash table: every document's code key in sorted order, and the row ids in that order.

Equal codes sit in one run (a bucket): the sorted keys and row ids are the raw codes and row ids
themselves, rearranged, so the table alone costs no more than they do. A Hamming ball of
radius r is searched by XOR-ing the query key with every flip mask of weight r and finding all
the probes' runs at once. For radii where whole-code flips explode, a substring index
(multi-index hashing, substrings.py) finds every code of the ball from 16-bit pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from math import comb
from pathlib import Path

import numpy as np

from hashindex.array_files import check_row_ids, damaged, load_array
from hashindex.codes import code_bytes as bytes_for_bits
from hashindex.codes import hamming_ball_masks
from hashindex.store.layout import SUBSTRING_FILES, TABLE_FILES, row_id_bytes
from hashindex.table.keys import (
    SINGLE_WORD_DTYPES,
    codes_to_keys,
    find_runs,
    key_width,
    keys_to_codes,
    sort_order,
)
from hashindex.table.substrings import SubstringIndex, ranges_index

# Below one distinct code per 16-bit substring value the substring index is mostly empty
# offsets (1 MiB at 64 bits, whatever the size), and one scan of the codes takes well under a
# millisecond: smaller tables are built without it.
MIN_SUBSTRING_CODES = 1 << 16


def row_dtype(count: int):
    return np.uint32 if row_id_bytes(count) == 4 else np.uint64


@dataclass
class BallProbe:
    """Result of probing the table at one radius."""

    rows: np.ndarray  # row ids found at exactly this radius
    buckets: np.ndarray  # where the runs (buckets) hit start in the sorted keys
    probes: int  # codes looked up


class HashTable:
    def __init__(self, bits: int, keys: np.ndarray, rows: np.ndarray,
                 substrings: SubstringIndex | None = None):
        self.bits = bits
        self.code_bytes = bytes_for_bits(bits)
        # (N,) or (W, N) sorted, one per document; multi-word keys are stored row-major, so
        # the words of one code share a cache line for the search's random reads
        self.keys = keys
        self.rows = rows  # (N,) row ids in key order
        self.substrings = substrings

    @classmethod
    def build(cls, codes: np.ndarray, bits: int, substring_index: bool = True) -> HashTable:
        """Sort row ids 0..n-1 by code; with `substring_index` (and at least
        MIN_SUBSTRING_CODES distinct codes), also the multi-index over 16-bit substrings
        ((m − 1)·3 more bytes per distinct code up to 16.7M documents, m = bits / 16)."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        keys = codes_to_keys(codes)
        order = sort_order(keys)
        if keys.ndim == 1:
            sorted_keys = np.ascontiguousarray(keys[order])
        else:
            sorted_keys = np.ascontiguousarray(keys[:, order].T).T
        table = cls(bits, sorted_keys, order.astype(row_dtype(len(codes))))
        if substring_index and table.distinct_codes >= MIN_SUBSTRING_CODES:
            table.substrings = SubstringIndex.build(
                table.bucket_codes(), table.run_starts, table.documents)
        return table

    def arrays(self) -> dict[str, np.ndarray]:
        keys = self.keys if self.keys.ndim == 1 else self.keys.T
        out = dict(zip(TABLE_FILES, (keys, self.rows)))
        if self.substrings is not None:
            out.update(zip(SUBSTRING_FILES, (self.substrings.positions, self.substrings.offsets)))
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
        """The table's arrays, each checked as it is opened (array_files.py): keys and rows
        of the dtypes and shapes `bits` makes, every row id below the row count."""
        code_bytes = bytes_for_bits(bits)
        words = -(-code_bytes // 8)
        keys_path, rows_path = (directory / name for name in TABLE_FILES)
        keys = load_array(keys_path, mmap=mmap, ndim=1 if words == 1 else 2,
                          dtypes=(SINGLE_WORD_DTYPES[key_width(code_bytes)],))
        if keys.ndim == 2 and keys.shape[1] != words:
            raise damaged(keys_path, f"its keys have {keys.shape[1]} words, not the {words} of "
                                     f"{bits}-bit codes")
        rows = load_array(rows_path, mmap=mmap, ndim=1, rows=len(keys),
                          dtypes=(np.uint32, np.uint64))
        check_row_ids(rows_path, rows, len(rows))
        substrings = None
        if all((directory / name).is_file() for name in SUBSTRING_FILES):
            substrings = SubstringIndex(*(load_array(directory / name, mmap=mmap, ndim=ndim)
                                          for name, ndim in zip(SUBSTRING_FILES, (3, 2))))
        return cls(bits, keys if keys.ndim == 1 else keys.T, rows, substrings=substrings)

    @property
    def documents(self) -> int:
        return len(self.rows)

    @cached_property
    def run_starts(self) -> np.ndarray:
        """Where each distinct code's run starts in the sorted keys (one pass, then kept)."""
        keys = np.asarray(self.keys)
        if keys.shape[-1] == 0:
            return np.zeros(0, dtype=np.int64)
        changed = keys[..., 1:] != keys[..., :-1]
        if changed.ndim == 2:
            changed = changed.any(axis=0)
        return np.flatnonzero(np.r_[True, changed])

    @property
    def distinct_codes(self) -> int:
        return len(self.run_starts)

    def bucket_codes(self) -> np.ndarray:
        """Distinct codes (M, bits/8) in key order."""
        return keys_to_codes(np.asarray(self.keys)[..., self.run_starts], self.code_bytes)

    def bucket_sizes(self) -> np.ndarray:
        return np.diff(np.r_[self.run_starts, self.documents])

    def rows_of_buckets(self, buckets: np.ndarray) -> np.ndarray:
        """Concatenated row ids of the given buckets (indices among the distinct codes)."""
        starts = self.run_starts[buckets]
        return self.rows_of_runs(starts, self.bucket_sizes()[buckets])

    def rows_of_runs(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Concatenated row ids of the runs starting at `starts` (vectorised gather)."""
        if len(starts) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.rows[ranges_index(starts, lengths)], dtype=np.int64)

    def flips_cheaper_than_scan(self, radius: int) -> bool:
        """Probing C(bits, r) flipped codes beats scanning the N codes while C·PROBE_COST ≤ N:
        a probe is a binary search (~60 ns on 59k 256-bit keys), a code of the compiled scan
        ~1.4 ns. (With C ≤ N alone, radius 2 at 256 bits sent 32 640 probes, 2.2 ms, where
        the scan takes 0.085 ms.)"""
        return comb(self.bits, radius) * PROBE_COST <= max(self.documents, 1)

    def probe(self, query_code: np.ndarray, radius: int) -> BallProbe:
        """All rows whose code is at Hamming distance exactly `radius`, by bit flips."""
        query_key = codes_to_keys(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
        mask_keys = mask_keys_for(self.bits, radius)
        probes = query_key ^ mask_keys  # broadcasts for single- and multi-word keys
        starts, lengths = find_runs(self.keys, probes)
        hit = lengths > 0
        return BallProbe(rows=self.rows_of_runs(starts[hit], lengths[hit]), buckets=starts[hit],
                         probes=mask_keys.shape[-1])


PROBE_COST = 40  # one flip probe, in codes of the compiled scan (measured, see above)


@lru_cache(maxsize=64)
def mask_keys_for(bits: int, radius: int) -> np.ndarray:
    """Flip masks of weight `radius` as table keys (cached per bits and radius)."""
    return codes_to_keys(hamming_ball_masks(bits, radius))
