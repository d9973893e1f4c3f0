"""Bit arithmetic shared by the compiled searches: a 64-bit popcount that numba inlines, and
packed codes viewed as uint64 words for Hamming distances (word order is irrelevant there)."""

from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True, inline="always")
def popcount(x):
    """Set bits of one uint64 (SWAR; numba has no portable popcount intrinsic)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


def code_words(codes: np.ndarray) -> np.ndarray:
    """uint8 codes (n, B) → uint64 words (n, ⌈B/8⌉), zero-padded: XOR and popcount of the
    words give the codes' Hamming distance."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, code_bytes = codes.shape
    padded = -(-code_bytes // 8) * 8
    if padded != code_bytes:
        codes = np.concatenate([codes, np.zeros((n, padded - code_bytes), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(np.uint64)
