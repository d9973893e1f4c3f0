"""The hash table itself as a backend: exact Hamming-ball search through the multi-index over
16-bit substrings where the table has one, else by bit flips radius by radius; one scan of the
codes when either would touch too many of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashindex.backends.base import Backend, Candidates
from hashindex.store.keys import codes_to_keys
from hashindex.store.substring_search import radius_holding, search_substrings
from hashindex.store.table import HashTable

# A substring-index candidate costs a random read of its key, a scanned code a sequential one,
# several times cheaper: a search that has computed distances for 1/SCAN_DIVISOR of the codes
# gives up for one scan. Measured at 1M codes, this costs at most ~1.7× the scan where the scan
# was the better choice (k in the thousands at 64–128 bits), where a rule on k alone cost up to
# 15× (k = 1 000 at 32 bits: 1.2 ms by the substring index, 18 ms by the scan).
SCAN_DIVISOR = 8


class TableBackend(Backend):
    name = "table"
    description = ("hashindex hash table: exact code bucket, then Hamming neighbours by bit "
                   "flips and multi-index hashing")
    exact = True

    def __init__(self, bits: int, table: HashTable):
        super().__init__(bits)
        self.table = table

    @classmethod
    def build(cls, codes, bits, substring_index: bool = True):
        return cls(bits, HashTable.build(codes, bits, substring_index))

    def save(self, directory: Path) -> list[Path]:
        return self.table.save(directory)

    @classmethod
    def load(cls, directory: Path, bits: int):
        return cls(bits, HashTable.load(directory, bits))

    def search(self, query_code, k, max_radius):
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
                scan_rows, scan_distances, radius, buckets = self.scan(
                    query_code, radius, max_radius, k - found)
                rows.append(scan_rows)
                distances.append(scan_distances)
                break  # the scan re-examines the codes the flips found: they count once
            probe = table.probe(query_code, radius)
            rows.append(probe.rows)
            distances.append(np.full(len(probe.rows), radius, dtype=np.int64))
            found += len(probe.rows)
            buckets += len(probe.buckets)
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        all_distances = np.concatenate(distances) if distances else all_rows.copy()
        return self.candidates(all_rows, all_distances, max(radius, 0), buckets)

    @staticmethod
    def candidates(rows, distances, radius, buckets) -> Candidates:
        """Rows ranked by distance, then row id."""
        order = np.lexsort((rows, distances))
        return Candidates(rows=rows[order], distances=distances[order], radius=radius,
                          buckets_touched=buckets, documents_touched=len(rows), exact=True)

    def scan(self, query_code, first_radius, max_radius, still_wanted):
        """Rows at distance first_radius..R from one pass over every code, R the smallest
        radius (≤ max_radius) that brings `still_wanted` more documents."""
        table = self.table
        distance = table.distances(query_code)
        per_radius = np.bincount(distance, minlength=self.bits + 1)
        last = radius_holding(per_radius.astype(np.int64), first_radius, max_radius, still_wanted)
        chosen = np.flatnonzero((distance >= first_radius) & (distance <= last))
        return (np.asarray(table.rows[chosen], dtype=np.int64), distance[chosen], last,
                table.distinct_codes)

    def multi_index(self, query_code, first_radius, max_radius, still_wanted):
        """As `scan`, from the substring index (substring_search.py); falls back to the scan
        once the probes have met codes of 1/SCAN_DIVISOR of the documents."""
        table = self.table
        query_key = codes_to_keys(np.asarray(query_code, dtype=np.uint8).reshape(1, -1))
        keys = np.asarray(table.keys)
        found = search_substrings(
            keys.reshape(1, -1) if keys.ndim == 1 else keys, table.rows,
            table.substrings, query_key.reshape(-1).astype(np.uint64),
            table.substrings.query_values(query_code), first_radius, max_radius,
            still_wanted, table.documents // SCAN_DIVISOR)
        if found is None:
            return self.scan(query_code, first_radius, max_radius, still_wanted)
        return found.rows, found.distances, found.radius, found.buckets_touched
