"""The hash table itself as a backend: exact Hamming-ball search through the multi-index over
16-bit substrings where the table has one, else by bit flips radius by radius; one scan of the
codes when either would touch too many of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashindex.search_backend import Backend, Candidates
from hashindex.table.keys import codes_to_keys
from hashindex.table.search import scan_codes, search_substrings
from hashindex.table.table import HashTable

# A substring-index candidate costs a random read of its key, a scanned code a sequential one,
# over ten times cheaper: a search whose probes meet codes of more than 1/SCAN_DIVISOR of the
# documents gives up, before computing their distances, for one compiled scan. Measured at 1M
# codes (k = 1 000 and 5 000 at 64 and 128 bits, where the scan is the better choice): the scan
# alone ~3 ms, this search then ~7–10 ms at 1/16, 12–15 ms at 1/8; at 1/32 it hands over
# searches for k ≈ 300 that it would have finished in 2 ms (5–7 ms).
SCAN_DIVISOR = 16


class TableBackend(Backend):
    name = "table"

    def __init__(self, bits: int, table: HashTable):
        super().__init__(bits)
        self.table = table

    @classmethod
    def build(cls, codes, bits, options=None, embeddings=None):
        substring_index = options.substring_index if options is not None else True
        return cls(bits, HashTable.build(codes, bits, substring_index))

    def save(self, directory: Path) -> list[Path]:
        return self.table.save(directory)

    @classmethod
    def load(cls, directory: Path, bits: int):
        return cls(bits, HashTable.load(directory, bits))

    def search(self, query_code, k, max_radius, options=None):
        """With a substring index, its compiled search takes every radius from 0 up to the one
        that holds k. Without one, probe radius 0, 1, … by bit flips and stop once k documents
        are found (the radius completes), or scan every code once flips would cost more."""
        if self.table.substrings is not None:
            return self.candidates(*self.multi_index(query_code, 0, max_radius, k))
        table = self.table
        rows, distances = [], []
        found = buckets = 0
        radius = -1
        while radius < max_radius and found < k:
            radius += 1
            if not table.flips_cheaper_than_scan(radius):
                scan_rows, scan_distances, radius, buckets, documents, scanned = self.scan(
                    query_code, radius, max_radius, k - found)
                rows.append(scan_rows)
                distances.append(scan_distances)
                break  # the scan re-examines the codes the flips found: they count once
            probe = table.probe(query_code, radius)
            rows.append(probe.rows)
            distances.append(np.full(len(probe.rows), radius, dtype=np.int64))
            found += len(probe.rows)
            buckets += len(probe.buckets)
        else:
            documents, scanned = found, False
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        all_distances = np.concatenate(distances) if distances else all_rows.copy()
        return self.candidates(all_rows, all_distances, max(radius, 0), buckets, documents,
                               scanned)

    @staticmethod
    def candidates(rows, distances, radius, buckets, documents, scanned) -> Candidates:
        return Candidates.ranked(rows, distances, radius=radius, buckets=buckets,
                                 documents=documents, exact=True, scanned=scanned)

    def scan(self, query_code, first_radius, max_radius, still_wanted):
        """Rows at distance first_radius..R from one pass over every code, R the smallest
        radius (≤ max_radius) that brings `still_wanted` more documents; every code examined."""
        table = self.table
        positions, distances, last = scan_codes(
            self.key_words(), self.query_words(query_code), first_radius, max_radius,
            still_wanted)
        return (np.asarray(table.rows[positions], dtype=np.int64), distances, last,
                table.distinct_codes, table.documents, True)

    def multi_index(self, query_code, first_radius, max_radius, still_wanted):
        """As `scan`, from the substring index (substring_search.py); falls back to the scan
        once the probes have met codes of 1/SCAN_DIVISOR of the documents."""
        table = self.table
        found = search_substrings(
            self.key_words(), table.rows, table.substrings,
            query_words=self.query_words(query_code),
            query_values=table.substrings.query_values(query_code), first_radius=first_radius,
            max_radius=max_radius, wanted=still_wanted,
            scan_limit=table.documents // SCAN_DIVISOR)
        if found is None:
            return self.scan(query_code, first_radius, max_radius, still_wanted)
        return (found.rows, found.distances, found.radius, found.buckets_touched,
                found.documents_touched, False)

    def key_words(self) -> np.ndarray:
        """The sorted keys as (W, N) words, the shape the compiled searches take."""
        keys = np.asarray(self.table.keys)
        return keys.reshape(1, -1) if keys.ndim == 1 else keys

    @staticmethod
    def query_words(query_code) -> np.ndarray:
        query_key = codes_to_keys(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
        return query_key.reshape(-1).astype(np.uint64)
