"""Every backend against a brute-force Hamming scan (hypothesis)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashindex.backends import BACKENDS, backend_class
from hashindex.codes import hamming_distance
from hashindex.table import backend as table_backend
from hashindex.table import table as table_store
from hashindex.table.keys import codes_to_keys, find_runs, keys_to_codes


@st.composite
def code_sets(draw):
    bits = draw(st.sampled_from([8, 16, 24, 32, 64, 128]))
    n = draw(st.integers(1, 150))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # few distinct prototypes with few flipped bits: many duplicates and near neighbours
    prototypes = rng.integers(0, 256, (max(1, n // 10), bits // 8), dtype=np.uint8)
    codes = prototypes[rng.integers(0, len(prototypes), n)]
    flips = rng.random((n, bits // 8)) < 0.05
    codes = codes ^ (flips * (1 << rng.integers(0, 8, (n, bits // 8)))).astype(np.uint8)
    if draw(st.booleans()):
        query = codes[rng.integers(0, n)]
    else:
        query = rng.integers(0, 256, bits // 8, dtype=np.uint8)
    k = draw(st.integers(1, 20))
    max_radius = draw(st.integers(0, min(bits, 12)))
    return bits, codes, query, k, max_radius


def brute_force(codes, query, k, max_radius):
    distances = hamming_distance(query, codes)
    within = np.sort(distances[distances <= max_radius])
    radius = max_radius if len(within) < k else int(within[k - 1])
    return set(np.flatnonzero(distances <= radius).tolist()), distances


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(code_sets())
def test_every_backend_against_brute_force(data):
    bits, codes, query, k, max_radius = data
    expected, distances = brute_force(codes, query, k, max_radius)
    signs = np.unpackbits(codes, axis=1).astype(np.float32) * 2 - 1  # cosine = Hamming order
    for name, entry in BACKENDS.items():
        result = entry.backend_class().build(codes, bits, embeddings=signs).search(
            query, k, max_radius)
        got = result.rows.tolist()
        assert len(got) == len(set(got)), name
        assert np.array_equal(result.distances, distances[result.rows]), name
        assert (np.diff(result.distances) >= 0).all(), name
        if entry.exact:
            assert set(got) == expected, name
            assert result.exact
        else:
            assert set(got) <= set(np.flatnonzero(distances <= max_radius).tolist()), name
            assert not result.exact


@given(st.sampled_from([8, 16, 24, 40, 64, 96, 128]), st.integers(0, 2**32 - 1))
def test_keys_round_trip_and_lookup(bits, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (30, bits // 8), dtype=np.uint8)
    keys = codes_to_keys(codes)
    assert np.array_equal(keys_to_codes(keys, bits // 8), codes)
    codes[10:20] = codes[0]  # a run of equal codes
    keys = codes_to_keys(codes)
    table = backend_class("table").build(codes, bits).table
    starts, lengths = find_runs(table.keys, keys)
    assert np.array_equal(keys_to_codes(np.asarray(table.keys)[..., starts], bits // 8), codes)
    expected_lengths = [int((codes == code).all(axis=1).sum()) for code in codes]
    assert lengths.tolist() == expected_lengths
    absent = codes_to_keys(np.full((1, bits // 8), 255, dtype=np.uint8) ^ codes[:1])
    if not (codes == ~codes[0]).all(axis=1).any():
        assert find_runs(table.keys, absent)[1][0] == 0


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_empty_index(name):
    backend = backend_class(name).build(np.zeros((0, 2), dtype=np.uint8), 16,
                                        embeddings=np.zeros((0, 16), dtype=np.float32))
    result = backend.search(np.zeros(2, dtype=np.uint8), 5, 16)
    assert len(result.rows) == 0


def test_table_switches_to_scan_for_large_radii():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (50, 8), dtype=np.uint8)
    query = rng.integers(0, 256, 8, dtype=np.uint8)
    result = backend_class("table").build(codes, 64).search(query, 3, 64)
    expected, _ = brute_force(codes, query, 3, 64)
    assert set(result.rows.tolist()) == expected and result.radius > 5


@settings(max_examples=40)
@given(st.sampled_from([16, 24, 64, 128]), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_substring_candidates_are_exactly_the_substring_ball(bits, radius, seed):
    from hashindex.table.substrings import SubstringIndex, substring_values

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (300, bits // 8), dtype=np.uint8)
    codes[:100] = codes[0] ^ (rng.random((100, bits // 8)) < 0.03).astype(np.uint8)
    table = backend_class("table").build(codes, bits).table
    distinct = table.bucket_codes()
    query = distinct[rng.integers(0, len(distinct))] ^ rng.integers(0, 2, bits // 8, dtype=np.uint8)
    index = SubstringIndex.build(distinct, table.run_starts, table.documents)
    found = index.candidates(query, radius)
    # every position of a code with some substring at that distance, substring 0 by its
    # whole run, the others by the run's start
    pieces = substring_values(codes[table.rows]) ^ substring_values(query.reshape(1, -1))
    close = np.bitwise_count(pieces) == radius
    starts = np.zeros(len(codes), dtype=bool)
    starts[table.run_starts] = True
    expected = np.flatnonzero(close[0] | (close[1:].any(axis=0) & starts))
    assert set(found.tolist()) == set(expected.tolist())


@pytest.mark.parametrize("bits", [64, 128])
def test_multi_index_search_equals_brute_force_without_scanning(bits, monkeypatch):
    monkeypatch.setattr(table_store, "MIN_SUBSTRING_CODES", 1)
    # enough distinct codes that the substring index, not a scan, answers radii beyond flips
    rng = np.random.default_rng(bits)
    centres = rng.integers(0, 256, (200, bits // 8), dtype=np.uint8)
    noise = np.packbits(rng.random((40_000, bits)) < 0.06, axis=1)
    codes = centres[rng.integers(0, 200, 40_000)] ^ noise
    backend = backend_class("table").build(codes, bits)
    assert backend.table.substrings is not None
    radii = []
    for _ in range(5):
        query = codes[rng.integers(0, len(codes))] ^ np.packbits(rng.random(bits) < 0.05)
        for k in (1, 10, 100):
            result = backend.search(query, k, bits)
            expected, distances = brute_force(codes, query, k, bits)
            assert set(result.rows.tolist()) == expected
            assert np.array_equal(result.distances, np.sort(distances[result.rows]))
            assert result.buckets_touched < backend.table.distinct_codes
            radii.append(result.radius)
    assert max(radii) > 3  # beyond whole-code flips: the substring index answered


def test_multi_index_that_gives_up_answers_by_scan(monkeypatch):
    # a search that meets too many codes hands over to one scan: same answer as brute force
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (20_000, 8), dtype=np.uint8)
    monkeypatch.setattr(table_store, "MIN_SUBSTRING_CODES", 1)
    backend = backend_class("table").build(codes, 64)
    monkeypatch.setattr(table_backend, "SCAN_DIVISOR", len(codes))
    query = rng.integers(0, 256, 8, dtype=np.uint8)
    result = backend.search(query, 5, 64)
    expected, distances = brute_force(codes, query, 5, 64)
    assert set(result.rows.tolist()) == expected
    assert result.buckets_touched == backend.table.distinct_codes  # the scan answered


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(code_sets())
def test_substring_search_against_brute_force(data):
    # small tables scan; here the substring index is built and answers every k and radius
    # without ever handing over to the scan
    bits, codes, query, k, max_radius = data
    saved = table_store.MIN_SUBSTRING_CODES, table_backend.SCAN_DIVISOR
    table_store.MIN_SUBSTRING_CODES, table_backend.SCAN_DIVISOR = 1, 1
    try:
        backend = backend_class("table").build(codes, bits)
        result = backend.search(query, k, max_radius)
    finally:
        table_store.MIN_SUBSTRING_CODES, table_backend.SCAN_DIVISOR = saved
    expected, distances = brute_force(codes, query, k, max_radius)
    assert backend.table.substrings is not None
    assert set(result.rows.tolist()) == expected
    assert np.array_equal(result.distances, distances[result.rows])
    assert result.buckets_touched <= backend.table.distinct_codes


@pytest.mark.parametrize("bits", [32, 128])
def test_table_saved_and_memory_mapped_answers_the_same(bits, tmp_path, monkeypatch):
    # multi-word keys are stored row-major and read back as (W, N) views: same answers
    monkeypatch.setattr(table_store, "MIN_SUBSTRING_CODES", 1)
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 256, (2_000, bits // 8), dtype=np.uint8)
    codes[1_000:1_100] = codes[0]
    built = backend_class("table").build(codes, bits)
    built.save(tmp_path)
    loaded = table_backend.TableBackend.load(tmp_path, bits)
    stored = np.load(tmp_path / "keys.npy")
    assert stored.shape == ((2_000,) if bits <= 64 else (2_000, bits // 64))
    for query in codes[:5] ^ np.uint8(1):
        for k in (1, 150):
            a, b = built.search(query, k, bits), loaded.search(query, k, bits)
            assert np.array_equal(a.rows, b.rows) and np.array_equal(a.distances, b.distances)
            expected, _ = brute_force(codes, query, k, bits)
            assert set(b.rows.tolist()) == expected


def test_multi_index_with_long_runs_of_equal_codes(monkeypatch):
    # runs of thousands of equal codes: each counts all its documents, found once
    monkeypatch.setattr(table_store, "MIN_SUBSTRING_CODES", 1)
    rng = np.random.default_rng(11)
    popular = rng.integers(0, 256, (5, 8), dtype=np.uint8)
    codes = np.concatenate([popular[rng.integers(0, 5, 30_000)],
                            rng.integers(0, 256, (10_000, 8), dtype=np.uint8)])
    backend = backend_class("table").build(codes, 64)
    assert backend.table.substrings is not None
    for query in [popular[0], popular[1] ^ np.uint8(3), rng.integers(0, 256, 8, dtype=np.uint8)]:
        for k in (1, 7_000, 20_000):
            result = backend.search(query, k, 64)
            expected, distances = brute_force(codes, query, k, 64)
            assert set(result.rows.tolist()) == expected
            assert np.array_equal(result.distances, np.sort(distances[result.rows]))


def test_graph_walk_finds_the_nearest_codes():
    """On codes whose embeddings are their ±1 bits, the graph's beam of width ef holds the
    ef nearest codes for nearly every query (the walk is approximate, not exact)."""
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 2, (20, 64))
    bits = centres[rng.integers(0, 20, 3000)] ^ (rng.random((3000, 64)) < 0.08)
    codes = np.packbits(bits.astype(bool), axis=1)
    graph = backend_class("graph").build(codes, 64, embeddings=bits.astype(np.float32) * 2 - 1)
    found = []
    for query in codes[:50]:
        result = graph.search(query, 10, 64)
        distances = np.sort(hamming_distance(query, codes))
        assert np.array_equal(result.distances, hamming_distance(query, codes[result.rows]))
        assert not result.exact and len(result.rows) >= 10
        found.append(result.distances[:10].tolist() == distances[:10].tolist())
    assert np.mean(found) > 0.9


def test_every_backend_class_says_what_its_registry_line_says():
    from hashindex.backends import BACKENDS

    for name, entry in BACKENDS.items():
        backend = entry.backend_class()
        assert backend.name == name and backend.exact == entry.exact, name
