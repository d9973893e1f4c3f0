"""The frontier benchmark's smallest configuration, end to end, as a smoke test."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_frontier_smallest_configuration(tmp_path):
    out = tmp_path / "frontier"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.frontier", "--dataset", "synthetic", "--size", "3000",
         "--queries", "30", "--bits", "64", "--backends", "table", "graph", "graph-vectors",
         "--quick",
         "--out", out],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HASHINDEX_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("results.csv", "report.md", "frontier.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "results.csv")))
    exact = [r for r in rows if r["method"].startswith("exact float")]
    assert len(exact) == 1 and float(exact[0]["recall@10"]) == 1.0
    ours = [r for r in rows if r["method"].startswith("hashindex 64 bits, table")]
    assert len(ours) == 3 and all(0 < float(r["recall@10"]) <= 1 for r in ours)
    recalls = [float(r["recall@10"]) for r in ours]  # budgets 10, 50, 200
    assert recalls[-1] > recalls[0]
    for family in ("hashindex 64 bits, graph (ef_search)",
                   "hashindex 64 bits, graph walked by int8 vectors"):
        walk = [r for r in rows if r["method"].startswith(family)]
        assert len(walk) == 2 and all(0 < float(r["recall@10"]) <= 1 for r in walk), family
    assert all(float(r["qps"]) > 0 and float(r["bytes_per_doc"]) > 0 for r in rows)
    report = (out / "report.md").read_text()
    assert "Best queries/s at a recall@10 of at least" in report
    assert "sign bits + IndexBinaryFlat, float32 rescoring" in report
