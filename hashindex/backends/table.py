"""The hash table itself as a backend: exact Hamming-ball search by bit flips, radius by radius."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashindex.backends.base import Backend, Candidates
from hashindex.store.table import HashTable


class TableBackend(Backend):
    name = "table"
    description = "hashindex hash table: exact code bucket, then Hamming neighbours by bit flips"
    exact = True

    def __init__(self, bits: int, table: HashTable):
        super().__init__(bits)
        self.table = table

    @classmethod
    def build(cls, codes, bits):
        return cls(bits, HashTable.build(codes, bits))

    def save(self, directory: Path) -> list[Path]:
        return self.table.save(directory)

    @classmethod
    def load(cls, directory: Path, bits: int):
        return cls(bits, HashTable.load(directory, bits))

    def search(self, query_code, k, max_radius):
        """Probe radius 0, 1, … by bit flips and stop once k documents are found (the radius
        completes). When the next radius needs more flips than there are distinct codes, scan
        the distinct codes once instead and take every radius up to the one that holds k."""
        table = self.table
        rows, distances = [], []
        found = buckets = 0
        radius = -1
        while radius < max_radius and found < k:
            radius += 1
            if not table.flips_cheaper_than_scan(radius):
                scan_rows, scan_distances, radius, touched = self.scan(
                    query_code, radius, max_radius, k - found)
                rows.append(scan_rows)
                distances.append(scan_distances)
                found += len(scan_rows)
                buckets += touched
                break
            probe = table.probe(query_code, radius)
            rows.append(probe.rows)
            distances.append(np.full(len(probe.rows), radius, dtype=np.int64))
            found += len(probe.rows)
            buckets += len(probe.buckets)
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        all_distances = np.concatenate(distances) if distances else all_rows.copy()
        order = np.lexsort((all_rows, all_distances))
        return Candidates(
            rows=all_rows[order],
            distances=all_distances[order],
            radius=max(radius, 0),
            buckets_touched=buckets,
            documents_touched=found,
            exact=True,
        )

    def scan(self, query_code, first_radius, max_radius, still_wanted):
        """Rows at distance first_radius..R from one pass over the distinct codes, R the
        smallest radius (≤ max_radius) that brings `still_wanted` more documents."""
        table = self.table
        bucket_distance = table.bucket_distances(query_code)
        sizes = table.bucket_sizes()
        per_radius = np.bincount(bucket_distance, weights=sizes, minlength=self.bits + 1)
        cumulative = np.cumsum(per_radius[first_radius : max_radius + 1])
        enough = np.flatnonzero(cumulative >= still_wanted)
        last = first_radius + (int(enough[0]) if len(enough) else max_radius - first_radius)
        chosen = np.flatnonzero((bucket_distance >= first_radius) & (bucket_distance <= last))
        rows = table.rows_of_buckets(chosen)
        distances = np.repeat(bucket_distance[chosen], sizes[chosen])
        return rows, distances, last, table.distinct_codes
