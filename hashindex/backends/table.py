"""The hash table itself as a backend: exact Hamming-ball search by bit flips, radius by radius;
multi-index hashing over 16-bit substrings once whole-code flips get expensive; one scan of the
distinct codes when even that would touch most of them."""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np

from hashindex.backends.base import Backend, Candidates
from hashindex.store.substrings import SUBSTRING_BITS
from hashindex.store.table import HashTable

# whole-code flips per radius above which the substring index takes over: its first probes
# (one per substring) already cover radius m − 1, cheaper than C(64, 2) = 2016 flips
FLIP_LIMIT = 64
# wanting more than 1/LARGE_K_FRACTION of the codes (re-rank budgets of thousands): one scan
LARGE_K_FRACTION = 200


class TableBackend(Backend):
    name = "table"
    description = ("hashindex hash table: exact code bucket, then Hamming neighbours by bit "
                   "flips and multi-index hashing")
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
        completes). When the next radius needs too many flips, the substring index (or, without
        one, a scan of the distinct codes) takes every radius up to the one that holds k."""
        table = self.table
        rows, distances = [], []
        found = buckets = 0
        radius = -1
        while radius < max_radius and found < k:
            radius += 1
            substrings = table.substrings is not None
            if (substrings and comb(self.bits, radius) > FLIP_LIMIT) \
                    or not table.flips_cheaper_than_scan(radius):
                many = (k - found) * LARGE_K_FRACTION > table.distinct_codes
                wide = self.multi_index if substrings and not many else self.scan
                scan_rows, scan_distances, radius, touched = wide(
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
        buckets = np.arange(table.distinct_codes)
        distance = table.bucket_distances(query_code)
        per_radius = np.bincount(distance, weights=table.bucket_sizes(), minlength=self.bits + 1)
        last = radius_holding(per_radius, first_radius, max_radius, still_wanted)
        return (*self.rows_between(buckets, distance, first_radius, last), last, len(buckets))

    def multi_index(self, query_code, first_radius, max_radius, still_wanted):
        """As `scan`, from the substring index: probe substring 0, 1, …, m−1 at radius 0, then
        each at radius 1, … (every new candidate's distance counted once), until the radius
        that holds the wanted documents lies inside the ball the probes have covered."""
        table, index = self.table, self.table.substrings
        values = index.query_values(query_code)
        seen = np.zeros(table.distinct_codes, dtype=bool)
        per_radius = np.zeros(self.bits + 1)
        buckets, distances = [], []
        gathered = 0
        for substring_radius in range(SUBSTRING_BITS + 1):
            for substring in range(index.substrings):
                if gathered > table.distinct_codes // 2:  # most codes: one scan is cheaper
                    return self.scan(query_code, first_radius, max_radius, still_wanted)
                new = index.substring_candidates(values, substring, substring_radius)
                gathered += len(new) + comb(SUBSTRING_BITS, substring_radius)
                new = distinct_sorted(new)
                new = new[~seen[new]]
                if len(new):
                    seen[new] = True
                    distance = table.bucket_distances(query_code, new)
                    per_radius += np.bincount(distance, weights=table.bucket_sizes(new),
                                              minlength=self.bits + 1)
                    buckets.append(new)
                    distances.append(distance)
                covered = index.covered_radius(substring_radius, substring)
                if covered < min(first_radius, max_radius):
                    continue
                last = radius_holding(per_radius, first_radius, max_radius, still_wanted)
                if last <= covered:
                    found = np.concatenate(buckets) if buckets else np.zeros(0, np.int64)
                    distance = (np.concatenate(distances) if distances
                                else np.zeros(0, np.int64))
                    return (*self.rows_between(found, distance, first_radius, last), last,
                            len(found))
        raise AssertionError("16-bit substrings probed to radius 16 cover every code")

    def rows_between(self, buckets, distance, first_radius, last):
        chosen = (distance >= first_radius) & (distance <= last)
        sizes = self.table.bucket_sizes(buckets[chosen])
        return (self.table.rows_of_buckets(buckets[chosen]),
                np.repeat(distance[chosen], sizes))


def radius_holding(per_radius, first_radius, max_radius, still_wanted) -> int:
    """The smallest radius ≥ first_radius whose ball adds `still_wanted` rows, given rows per
    distance (or max_radius when none does)."""
    cumulative = np.cumsum(per_radius[first_radius : max_radius + 1])
    enough = np.flatnonzero(cumulative >= still_wanted)
    return first_radius + (int(enough[0]) if len(enough) else max_radius - first_radius)


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort and a neighbour compare, which beats np.unique's hashing
    on the few thousand candidates of a query."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values
