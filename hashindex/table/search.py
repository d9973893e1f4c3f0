"""k-NN through the substring index, compiled with numba.

The search steps substring by substring: probe substring 0, 1, …, m−1 at radius 0, then each at
radius 1, …; every candidate code met for the first time gets its Hamming distance computed
once and the documents of its run counted per distance. After substring j at substring radius
s the ball of radius m·s + j is complete (substrings.py), so the search stops as soon as the
radius that holds the wanted documents lies inside it. Written as one compiled loop because
the per-step work is small (tens of probes, a few hundred candidates) and numpy's per-call
overhead made the interpreted version several times slower than the FAISS flat scan it should beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

from hashindex.bitops import popcount
from hashindex.table.keys import compare_keys
from hashindex.table.substrings import SUBSTRING_BITS, SubstringIndex, substring_masks


@dataclass
class BallRows:
    rows: np.ndarray  # int64 row ids at distance first_radius..radius
    distances: np.ndarray  # int64, aligned with rows
    radius: int  # the radius that holds the wanted documents (or max_radius)
    buckets_touched: int  # distinct codes whose distance was computed
    documents_touched: int  # documents carrying those codes


@lru_cache(maxsize=1)
def all_masks() -> tuple[np.ndarray, np.ndarray]:
    """Every 16-bit flip mask ordered by weight, and where each weight starts."""
    masks = [substring_masks(s) for s in range(SUBSTRING_BITS + 1)]
    starts = np.cumsum([0] + [len(m) for m in masks]).astype(np.int64)
    return np.concatenate(masks), starts


def search_substrings(keys: np.ndarray, rows: np.ndarray, index: SubstringIndex, *,
                      query_words: np.ndarray, query_values: np.ndarray, first_radius: int,
                      max_radius: int, wanted: int, scan_limit: int) -> BallRows | None:
    """Rows at distance first_radius..R, R the smallest radius (≤ max_radius) bringing `wanted`
    documents; None as soon as the probes meet more than `scan_limit` codes, before their
    distances are computed (a scan of all of them is cheaper than going on).

    keys are (W, N) words of the sorted codes, query_words (W,) uint64."""
    masks, starts = all_masks()
    found_rows, distances, radius, touched, examined, complete = _search(
        keys, np.asarray(rows), np.asarray(index.positions), np.asarray(index.offsets),
        query_words, query_values, masks, starts, first_radius, max_radius, wanted, scan_limit)
    if not complete:
        return None
    return BallRows(found_rows, distances, int(radius), int(touched), int(examined))


@njit(cache=True, nogil=True)
def radius_holding(per_radius, first_radius, max_radius, wanted):
    """The smallest radius ≥ first_radius whose ball adds `wanted` rows, given int64 rows per
    distance (or max_radius when none does). Shared with the table's scan."""
    total = 0
    for r in range(first_radius, max_radius + 1):
        total += per_radius[r]
        if total >= wanted:
            return r
    return max_radius


@njit(cache=True, nogil=True)
def _grow(array, needed):
    if needed <= array.shape[0]:
        return array
    bigger = np.empty(max(needed, 2 * array.shape[0]), dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


@njit(cache=True, nogil=True)
def _run_end(keys, start, limit):
    """Where the run of keys equal to keys[start] ends (≤ limit): galloping, so a run of n
    equal codes costs O(log n) comparisons, one for a code that occurs once."""
    step = 1
    while start + step < limit and compare_keys(keys, start + step, keys, start) == 0:
        step *= 2
    low = start + step // 2 + 1  # keys[start + step // 2] is known equal (or is start)
    high = min(start + step, limit)  # first position known different, or the limit
    while low < high:
        middle = (low + high) >> 1
        if compare_keys(keys, middle, keys, start) == 0:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True, nogil=True, inline="always")
def _position(positions, j, entry):
    """The little-endian position stored in positions[j, entry]."""
    if positions.shape[2] == 3:  # the common width, spelled out so it compiles to three loads
        return (np.int64(positions[j, entry, 0]) | (np.int64(positions[j, entry, 1]) << 8)
                | (np.int64(positions[j, entry, 2]) << 16))
    value = np.int64(0)
    for b in range(positions.shape[2]):
        value |= np.int64(positions[j, entry, b]) << (8 * b)
    return value


@njit(cache=True, nogil=True)
def _search(keys, rows, positions, sub_offsets, query_words, query_values, masks,
            mask_starts, first_radius, max_radius, wanted, scan_limit):
    """Each step first collects the runs it meets for the first time (sequential reads of the
    substring table), then computes their codes' distances in a tight loop whose random key
    reads overlap. A code farther than the radius that already holds the wanted rows (`bound`,
    which only shrinks as codes are found) can never be returned: only the others are kept and
    have their runs measured and counted."""
    words, count = keys.shape
    substrings = sub_offsets.shape[0]
    per_radius = np.zeros(64 * words + 1, dtype=np.int64)
    seen = np.zeros((count + 63) // 64, dtype=np.uint64)
    batch = np.empty(1024, dtype=np.int64)
    batch_distance = np.empty(1024, dtype=np.int64)
    found = np.empty(1024, dtype=np.int64)
    found_length = np.empty(1024, dtype=np.int64)
    found_distance = np.empty(1024, dtype=np.int64)
    n_found = 0
    touched = 0
    examined = 0
    bound = max_radius
    least = min(first_radius, max_radius)
    for radius in range(mask_starts.shape[0] - 1):
        for j in range(substrings):
            n_batch = 0
            for t in range(mask_starts[radius], mask_starts[radius + 1]):
                value = np.int64(query_values[j] ^ masks[t])
                start = np.int64(sub_offsets[j, value])
                stop = np.int64(sub_offsets[j, value + 1])
                batch = _grow(batch, n_batch + stop - start)
                entry = start
                while entry < stop:
                    if j == 0:  # a range of the sorted keys, run by run (one per code)
                        position = entry
                        entry = _run_end(keys, position, stop)
                    else:
                        position = _position(positions, j - 1, entry)
                        entry += 1
                    word = position >> 6
                    bit = np.uint64(1) << np.uint64(position & 63)
                    if not seen[word] & bit:
                        seen[word] |= bit
                        batch[n_batch] = position
                        n_batch += 1
                if touched + n_batch > scan_limit:  # before their distances cost anything
                    return (found[:0], found_distance[:0], max_radius, touched + n_batch,
                            examined, False)
            touched += n_batch
            batch_distance = _grow(batch_distance, n_batch)
            for i in range(n_batch):
                distance = 0
                for w in range(words):
                    distance += popcount(np.uint64(keys[w, batch[i]]) ^ query_words[w])
                batch_distance[i] = distance
            found = _grow(found, n_found + n_batch)
            found_length = _grow(found_length, n_found + n_batch)
            found_distance = _grow(found_distance, n_found + n_batch)
            for i in range(n_batch):
                distance = batch_distance[i]
                position = batch[i]
                end = _run_end(keys, position, count)
                examined += end - position
                if distance < first_radius or distance > bound:
                    continue
                found[n_found] = position
                found_length[n_found] = end - position
                found_distance[n_found] = distance
                n_found += 1
                per_radius[distance] += end - position
            bound = radius_holding(per_radius, first_radius, max_radius, wanted)
            # substrings 0..j probed to `radius`, the others to radius − 1: a code outside the
            # ball of m·radius + j would differ in every substring by more, m·radius + j + 1 bits
            covered = substrings * radius + j
            if covered < least or bound > covered:
                continue
            total = per_radius[first_radius: bound + 1].sum()
            out_rows = np.empty(total, dtype=np.int64)
            out_distance = np.empty(total, dtype=np.int64)
            filled = 0
            for i in range(n_found):
                distance = found_distance[i]
                if distance > bound:
                    continue
                for position in range(found[i], found[i] + found_length[i]):
                    out_rows[filled] = np.int64(rows[position])
                    out_distance[filled] = distance
                    filled += 1
            return out_rows, out_distance, bound, touched, examined, True
    raise AssertionError("16-bit substrings probed to radius 16 cover every code")


@njit(cache=True, nogil=True)
def scan_codes(keys, query_words, first_radius, max_radius, wanted):
    """One pass over every code (keys (W, N), query_words (W,) uint64): the positions at
    distance first_radius..R and their distances, R the smallest radius (≤ max_radius) that
    brings `wanted` documents. Compiled so the scan is one sequential pass over the keys and one
    over their distances: the fallback when the substring index would meet too many codes."""
    words, count = keys.shape
    distance = np.empty(count, dtype=np.uint16)  # up to 256
    per_radius = np.zeros(64 * words + 1, dtype=np.int64)
    for i in range(count):
        d = 0
        for w in range(words):
            d += popcount(np.uint64(keys[w, i]) ^ query_words[w])
        distance[i] = d
        per_radius[d] += 1
    last = radius_holding(per_radius, first_radius, max_radius, wanted)
    total = per_radius[first_radius: last + 1].sum()
    positions = np.empty(total, dtype=np.int64)
    distances = np.empty(total, dtype=np.int64)
    filled = 0
    for i in range(count):
        if first_radius <= distance[i] <= last:
            positions[filled] = i
            distances[filled] = distance[i]
            filled += 1
    return positions, distances, last

