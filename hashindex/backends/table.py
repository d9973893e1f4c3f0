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
        """Probe radius 0, 1, … and stop once k documents are found (the radius completes)."""
        rows, distances = [], []
        found = buckets = 0
        radius = 0
        scanned = None  # distances to every distinct code, once flips get dearer than a scan
        for radius in range(max_radius + 1):
            if scanned is None and not self.table.flips_cheaper_than_scan(radius):
                scanned = self.table.bucket_distances(query_code)
            probe = self.table.probe(query_code, radius, scanned)
            rows.append(probe.rows)
            distances.append(np.full(len(probe.rows), radius, dtype=np.int64))
            found += len(probe.rows)
            buckets += len(probe.buckets)
            if found >= k:
                break
        all_rows = np.concatenate(rows)
        all_distances = np.concatenate(distances)
        order = np.lexsort((all_rows, all_distances))
        return Candidates(
            rows=all_rows[order],
            distances=all_distances[order],
            radius=radius,
            buckets_touched=buckets,
            documents_touched=found,
            exact=True,
        )
