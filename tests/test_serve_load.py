"""The load benchmark end to end at toy size: it starts the service, drives it from several
clients, stops by itself and writes its report, with no errors (it exits 1 on any)."""

import subprocess
import sys


def test_serve_load_runs_end_to_end_and_stops_by_itself(tmp_path):
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.serve_load", "--quick", "--indexes", "synthetic",
         "--documents", "3000", "--clients", "1", "4", "--seconds", "0.5", "--warmup", "0.1",
         "--no-compare-httpx", "--work", str(tmp_path / "work"), "--out", str(out),
         "--timeout", "400"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (out / "serve_load.md").read_text()
    assert "| synthetic" in report and "errors" in report
    assert (out / "serve_load.csv").read_text().count("\n") >= 6  # 3 kinds × 2 client counts
