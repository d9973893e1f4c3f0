"""The code-headroom benchmark end to end on a small synthetic corpus, and its probes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexer.bench.headroom import in_sample_recall, top_neighbours

ROOT = Path(__file__).resolve().parent.parent


def test_code_headroom_smallest_configuration(tmp_path):
    out = tmp_path / "headroom"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.code_headroom", "--dataset", "synthetic",
         "--size", "1500", "--bits", "16", "--steps", "60", "--out", out],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HASHINDEX_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {(r["bits"], r["method"].split(",")[0]): r
            for r in csv.DictReader(open(out / "results.csv"))}
    assert all(0 <= float(r["recall@10"]) <= 1 for r in rows.values())
    itq = float(rows[("16", "itq")]["recall@10"])
    assert float(rows[("16", "free codes")]["recall@10"]) > itq  # started from ITQ's codes
    assert float(rows[("16", "float cosine over 16 principal projections")]["recall@10"]) > itq
    assert ("384", "sign bits of the centred embedding") in rows
    assert "16 bits: the target is recall@10 ≥" in (out / "report.md").read_text()


def test_in_sample_recall_is_one_for_codes_that_keep_the_order_and_low_for_shuffled_ones():
    angles = np.arange(100) * 0.01  # points along an arc: cosine order is |i - j|
    database = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    thermometer = np.packbits(np.arange(104)[None, :] < np.arange(100)[:, None], axis=1)
    assert in_sample_recall(database, thermometer, 104) == 1.0  # Hamming distance |i - j|
    shuffled = thermometer[np.random.default_rng(0).permutation(100)]
    assert in_sample_recall(database, shuffled, 104) < 0.3
    top = top_neighbours(database, database)
    assert top.shape == (100, 10) and not (top == np.arange(100)[:, None]).any()
    assert set(top[50]) == {45, 46, 47, 48, 49, 51, 52, 53, 54, 55}


def test_code_headroom_refuses_bad_bits_and_datasets_in_one_line(tmp_path):
    for flag, value, said in (("--bits", "12", "bits=12 is not allowed"),
                              ("--bits", "abc", "bits must be an integer"),
                              ("--dataset", "nope", "invalid choice: 'nope'")):
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.code_headroom", flag, value, "--out",
             tmp_path / "out"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        assert said in result.stderr.strip().splitlines()[-1]
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "out").exists()
