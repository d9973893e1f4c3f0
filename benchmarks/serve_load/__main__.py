"""The command line: `python -m benchmarks.serve_load [options]` (see the package's
docstring)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import benchmarks.serve_load as package
from benchmarks.serve_load.client import CLIENTS
from benchmarks.serve_load.driver import arm_hard_timeout, run_index
from benchmarks.serve_load.fixtures import sample_index, synthetic_index
from benchmarks.serve_load.kinds import sample_kinds, synthetic_kinds
from benchmarks.serve_load.report import write_report

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load",
                                     description=package.__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=None,
                        help="synthetic documents (default 1,000,000; --quick: 20,000)")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=None,
                        help="measured seconds per cell (default 10; --quick: 2)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="untimed seconds before each cell (default 1; --quick: 0.3)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="requests per cell at most")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1,
                        help="the service's worker processes (serve --workers)")
    parser.add_argument("--client", choices=CLIENTS, default="raw",
                        help="load client: asyncio streams with a fixed request head, or httpx")
    parser.add_argument("--compare-httpx", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the sample's embedding queries with httpx")
    parser.add_argument("--indexes", nargs="+", choices=("sample", "synthetic"),
                        default=["sample", "synthetic"])
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "serve-load"),
                        help="built indexes (reused by later runs) and server logs")
    parser.add_argument("--out", default=None,
                        help="results folder (default benchmarks/results; --quick: WORK/results)")
    parser.add_argument("--timeout", type=float, default=2400,
                        help="hard limit in seconds on the whole run, builds included")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: 20,000 synthetic documents, 2 s per cell")
    args = parser.parse_args(argv)
    arm_hard_timeout(args.timeout)
    args.documents = args.documents or (20_000 if args.quick else 1_000_000)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else (work / "results" if args.quick else RESULTS)
    from indexer.bench.measure import machine_record

    command = " ".join(["python -m benchmarks.serve_load", *sys.argv[1:]])
    machine = machine_record().split("; command:")[0] + f"; command: `{command}`"
    started = time.perf_counter()
    rows: list[dict] = []
    offline: list[dict] = []
    if "sample" in args.indexes:
        index = sample_index(work)
        run_index("sample", index, sample_kinds(index, work, args.quick), args,
                  work / "serve-sample.log", rows, offline)
    if "synthetic" in args.indexes:
        index, queries = synthetic_index(work, args.documents, args.bits,
                                         256 if args.quick else 4096)
        run_index("synthetic", index, synthetic_kinds(index, queries), args,
                  work / "serve-synthetic.log", rows, offline)
    write_report(out, rows, offline, machine, args, time.perf_counter() - started)
    errors = sum(row["errors"] for row in rows)
    print(f"errors over all cells: {errors}", flush=True)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
