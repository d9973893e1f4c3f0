from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashindex.codes import (
    check_bits,
    hamming_ball_masks,
    hamming_distance,
    hamming_distance_matrix,
    pack_bits,
    unpack_bits,
)
from hashindex.errors import HashIndexError

bit_widths = st.sampled_from([8, 16, 24, 64, 128])


@st.composite
def code_sets(draw, max_rows=12):
    bits = draw(bit_widths)
    rows = draw(st.integers(1, max_rows))
    raw = draw(st.binary(min_size=rows * bits // 8, max_size=rows * bits // 8))
    return bits, np.frombuffer(raw, dtype=np.uint8).reshape(rows, bits // 8)


def python_hamming(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b))


@given(code_sets())
def test_pack_unpack_round_trip(data):
    bits, codes = data
    unpacked = unpack_bits(codes)
    assert unpacked.shape == (len(codes), bits)
    assert np.array_equal(pack_bits(unpacked), codes)


def test_pack_is_most_significant_bit_first():
    row = np.zeros((1, 8), dtype=np.uint8)
    row[0, 0] = 1
    assert pack_bits(row)[0, 0] == 0b1000_0000


@given(code_sets(), code_sets())
def test_hamming_matches_python_reference(left, right):
    bits, a = left
    _, b = right
    b = np.resize(b, (len(b), bits // 8))  # same width as a
    matrix = hamming_distance_matrix(a, b, block_rows=3)
    for i in range(len(a)):
        one_to_many = hamming_distance(a[i], b)
        for j in range(len(b)):
            expected = python_hamming(a[i].tobytes(), b[j].tobytes())
            assert matrix[i, j] == expected == one_to_many[j]


@settings(max_examples=30)
@given(st.sampled_from([8, 16, 32, 64]), st.integers(0, 3))
def test_flip_masks_are_distinct_complete_and_at_radius(bits, radius):
    masks = hamming_ball_masks(bits, radius)
    assert len(masks) == comb(bits, radius)
    assert len({m.tobytes() for m in masks}) == len(masks)
    zero = np.zeros(bits // 8, dtype=np.uint8)
    assert (hamming_distance(zero, masks) == radius).all()


@pytest.mark.parametrize("bits", [0, 7, 12, 1032, -8, 2.5, True])
def test_bad_bits_are_rejected_by_name(bits):
    with pytest.raises(HashIndexError, match="bits"):
        check_bits(bits)


def test_radius_out_of_range():
    with pytest.raises(HashIndexError, match="radius=9"):
        hamming_ball_masks(8, 9)
