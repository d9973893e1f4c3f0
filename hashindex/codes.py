"""Binary codes: packing, Hamming distances and Hamming-ball flip masks.

A code of `bits` bits is stored as `uint8[bits // 8]`, most significant bit first, so the same
bytes appear in Parquet, the hash table and FAISS.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

from hashindex.errors import HashIndexError

MIN_BITS = 8
MAX_BITS = 1024


def check_bits(bits: int) -> int:
    """Return `bits` if it is a valid code length, else raise naming what is allowed."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise HashIndexError(f"bits must be an integer, got {bits!r}")
    if bits % 8 or not MIN_BITS <= bits <= MAX_BITS:
        raise HashIndexError(
            f"bits={bits} is not allowed: use a multiple of 8 from {MIN_BITS} to {MAX_BITS}"
        )
    return int(bits)


def code_bytes(bits: int) -> int:
    return check_bits(bits) // 8


def pack_bits(bits_array: np.ndarray) -> np.ndarray:
    """(n, bits) array of 0/1 (or bool) → (n, bits/8) uint8, MSB first."""
    bits_array = np.asarray(bits_array)
    if bits_array.ndim != 2:
        raise HashIndexError(f"expected a 2-d array of bits, got shape {bits_array.shape}")
    check_bits(bits_array.shape[1])
    return np.packbits(bits_array.astype(bool), axis=1, bitorder="big")


def unpack_bits(codes: np.ndarray) -> np.ndarray:
    """(n, bits/8) uint8 → (n, bits) uint8 of 0/1, MSB first."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise HashIndexError(f"expected a 2-d array of codes, got shape {codes.shape}")
    return np.unpackbits(codes, axis=1, bitorder="big")


def hamming_distance(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Distances from one code (bits/8,) to many (n, bits/8) → int64 (n,)."""
    query = np.asarray(query, dtype=np.uint8).reshape(1, -1)
    codes = np.asarray(codes, dtype=np.uint8)
    return np.bitwise_count(np.bitwise_xor(codes, query)).sum(axis=1, dtype=np.int64)


def hamming_distance_matrix(
    queries: np.ndarray, codes: np.ndarray, block_rows: int = 1024
) -> np.ndarray:
    """All-pairs distances (q, bits/8) × (n, bits/8) → int64 (q, n), in blocks of queries."""
    queries = np.asarray(queries, dtype=np.uint8)
    codes = np.asarray(codes, dtype=np.uint8)
    out = np.empty((len(queries), len(codes)), dtype=np.int64)
    for start in range(0, len(queries), block_rows):
        block = queries[start : start + block_rows, None, :]
        out[start : start + block_rows] = np.bitwise_count(
            np.bitwise_xor(block, codes[None, :, :])
        ).sum(axis=2, dtype=np.int64)
    return out


@lru_cache(maxsize=64)
def hamming_ball_masks(bits: int, radius: int) -> np.ndarray:
    """The C(bits, radius) flip masks of weight exactly `radius`, packed (C, bits/8) uint8.

    XOR-ing a code with every mask enumerates the codes at Hamming distance exactly `radius`.
    Cached and read-only: the same masks serve every query.
    """
    check_bits(bits)
    if not 0 <= radius <= bits:
        raise HashIndexError(f"radius={radius} is out of range: use 0 to {bits} for {bits} bits")
    count = comb(bits, radius)
    if count > 50_000_000:
        raise HashIndexError(
            f"radius={radius} at {bits} bits needs {count} flip masks; use a smaller radius "
            "or a FAISS backend"
        )
    positions = np.fromiter(
        (p for combo in combinations(range(bits), radius) for p in combo),
        dtype=np.int64,
        count=count * radius,
    ).reshape(count, radius)
    unpacked = np.zeros((count, bits), dtype=np.uint8)
    np.put_along_axis(unpacked, positions, 1, axis=1)
    masks = np.packbits(unpacked, axis=1, bitorder="big")
    masks.setflags(write=False)
    return masks
