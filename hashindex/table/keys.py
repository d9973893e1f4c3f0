"""Integer keys for packed codes, so a sorted table can be searched with np.searchsorted.

Codes of up to 8 bytes become one unsigned integer whose numeric order is the codes' byte
order (uint8/16/32/64, zero-padded on the right); longer codes become W uint64 words stored
word-major, shape (W, n), compared lexicographically. XOR of keys equals the key of the XOR.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SINGLE_WORD_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def key_width(code_bytes: int) -> int:
    """Bytes per key word after padding: 1, 2, 4 or 8."""
    for width in (1, 2, 4, 8):
        if code_bytes <= width:
            return width
    return 8


def codes_to_keys(codes: np.ndarray) -> np.ndarray:
    """(n, B) uint8 → (n,) unsigned ints when B ≤ 8, else (W, n) uint64 word-major."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, code_bytes = codes.shape
    width = key_width(code_bytes)
    words = -(-code_bytes // width)
    padded_bytes = words * width
    if padded_bytes != code_bytes:
        padded = np.zeros((n, padded_bytes), dtype=np.uint8)
        padded[:, :code_bytes] = codes
        codes = padded
    big_endian = np.dtype(SINGLE_WORD_DTYPES[width]).newbyteorder(">")
    values = codes.view(big_endian).astype(SINGLE_WORD_DTYPES[width])  # (n, words)
    if code_bytes <= 8:
        return values.reshape(n)
    return np.ascontiguousarray(values.T)


def keys_to_codes(keys: np.ndarray, code_bytes: int) -> np.ndarray:
    """Inverse of codes_to_keys."""
    width = key_width(code_bytes)
    big_endian = np.dtype(SINGLE_WORD_DTYPES[width]).newbyteorder(">")
    values = keys.reshape(-1, 1) if keys.ndim == 1 else keys.T
    raw = np.ascontiguousarray(values.astype(big_endian)).view(np.uint8)
    return np.ascontiguousarray(raw[:, :code_bytes])


def sort_order(keys: np.ndarray) -> np.ndarray:
    """Stable order that sorts keys ascending (lexicographic over words)."""
    if keys.ndim == 1:
        return np.argsort(keys, kind="stable")
    return np.lexsort(keys[::-1])


def find_runs(sorted_keys: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each probe's run of equal keys starts in the sorted keys, and how long it is
    (0 where the probe is absent). Compiled: a handful of numpy calls per lookup cost more
    than the binary searches themselves."""
    keys = np.asarray(sorted_keys)
    probes = np.asarray(probes)
    if keys.ndim == 1:
        keys, probes = keys.reshape(1, -1), probes.reshape(1, -1)
    return _find_runs(keys, probes.astype(keys.dtype, copy=False))


@njit(cache=True, nogil=True)
def compare_keys(keys, position, probes, probe):
    """−1, 0 or 1 as keys[:, position] is below, equal to or above probes[:, probe]."""
    for w in range(keys.shape[0]):
        if keys[w, position] != probes[w, probe]:
            return -1 if keys[w, position] < probes[w, probe] else 1
    return 0


@njit(cache=True, nogil=True)
def _find_runs(keys, probes):
    count = keys.shape[1]
    starts = np.zeros(probes.shape[1], dtype=np.int64)
    lengths = np.zeros(probes.shape[1], dtype=np.int64)
    for p in range(probes.shape[1]):
        low, high = 0, count  # first key ≥ probe
        while low < high:
            middle = (low + high) >> 1
            if compare_keys(keys, middle, probes, p) < 0:
                low = middle + 1
            else:
                high = middle
        end, high = low, count  # first key > probe
        while end < high:
            middle = (end + high) >> 1
            if compare_keys(keys, middle, probes, p) <= 0:
                end = middle + 1
            else:
                high = middle
        starts[p] = low
        lengths[p] = end - low
    return starts, lengths
