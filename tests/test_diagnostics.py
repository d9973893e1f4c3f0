import numpy as np

from hashindex.codes import pack_bits
from hashindex.diagnostics import bucket_sizes, code_diagnostics


def test_diagnostics_on_known_codes():
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 0]] * 3 + [[0, 1, 0, 0, 0, 0, 0, 0]], dtype=np.uint8)
    codes = pack_bits(bits)
    stats = code_diagnostics(codes)
    assert stats["distinct_codes"] == 2
    assert stats["largest_bucket"] == 3
    assert stats["mean_bucket_size"] == 2.0
    assert stats["bit_balance"][:2] == [0.75, 0.25]
    assert stats["constant_bits"] == 6
    assert stats["mean_abs_bit_correlation"] == 1.0  # the two varying bits are anti-correlated
    assert sorted(bucket_sizes(codes).tolist()) == [1, 3]
