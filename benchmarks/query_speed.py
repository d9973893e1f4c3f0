"""Query latency on N synthetic documents (default 1M) at 32, 64 and 128 bits: the table's
Hamming ball at radius 0–3, top-10 by the table and by every FAISS backend, and exact float
search (FAISS IndexFlatIP on the 384-d embeddings), all in one run. Writes
benchmarks/results/query_speed.{md,csv,png}.

    python -m benchmarks.query_speed [--documents 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

from hashindex.backends import backend_class
from hashindex.encoding import encode_codes
from hashindex.models import DEFAULT_VARIANT
from hashindex.table.table import MIN_SUBSTRING_CODES, TABLE_FILES
from hashindex.training import TrainConfig, train
from indexer.bench.datasets import clustered_embeddings
from indexer.bench.measure import machine_record
from indexer.bench.report import write_csv

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
SLOW_QUERIES = 10


def latencies(search, queries) -> np.ndarray:
    search(queries[0])  # untimed: the first call loads (or compiles) the table's numba kernel
    out = np.empty(len(queries))
    for i, query in enumerate(queries):
        start = time.perf_counter()
        search(query)
        out[i] = time.perf_counter() - start
    return out


def row(bits, method, seconds, extra="") -> dict:
    return {"bits": bits, "method": method, "p50_ms": 1000 * np.percentile(seconds, 50),
            "p99_ms": 1000 * np.percentile(seconds, 99), "qps": len(seconds) / seconds.sum(),
            "note": extra}


def run_bits(bits, embeddings, queries, rows, backends):
    n = len(embeddings)
    model = train(embeddings[:50_000], DEFAULT_VARIANT, bits,
                  TrainConfig(epochs=5, show_progress=False)).model
    codes = encode_codes(model, embeddings)
    query_codes = encode_codes(model, queries)
    table = backend_class("table").build(codes, bits)
    for radius in range(4):
        found: list[int] = []
        seconds = latencies(lambda q, r=radius, out=found: out.append(
            len(table.search(q, n + 1, r).rows)), query_codes)
        rows.append(row(bits, f"table ball r={radius}", seconds,
                        f"mean {np.mean(found):.1f} documents in the ball"))
    reached = []
    seconds = latencies(lambda q: reached.append(table.search(q, K, bits).radius), query_codes)
    rows.append(row(bits, "table top-10", seconds, f"mean radius {np.mean(reached):.2f}"))
    for name in backends:
        backend = backend_class(name).build(codes, bits)
        # the FAISS hash indexes probe every flip of their keys up to the k-th distance, which
        # takes seconds per query here: they get a subset of the queries to bound the run
        subset = query_codes[:SLOW_QUERIES] if name in ("hash", "multihash") else query_codes
        seconds = latencies(lambda q, b=backend: b.search(q, K, bits), subset)
        rows.append(row(bits, f"{name} top-10", seconds,
                        ("exact" if backend.exact else "approximate") + f", {len(subset)} queries"))
    hashed = table.table
    raw_bytes = codes.nbytes + n * hashed.rows.dtype.itemsize
    without = sum(array.nbytes for name, array in hashed.arrays().items() if name in TABLE_FILES)
    return hashed.nbytes / raw_bytes, without / raw_bytes, hashed.distinct_codes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--backends", nargs="+", default=["flat", "hash", "multihash", "ivf",
                                                          "hnsw"])
    parser.add_argument("--name", default="query_speed", help="Results file name stem.")
    args = parser.parse_args()
    embeddings, _ = clustered_embeddings(args.documents + args.queries)
    queries, embeddings = embeddings[: args.queries], embeddings[args.queries :]
    rows: list[dict] = []
    flat_ip = faiss.IndexFlatIP(embeddings.shape[1])
    flat_ip.add(embeddings)
    seconds = latencies(lambda q: flat_ip.search(q[None], K), queries)
    rows.append(row("float", "exact float IndexFlatIP top-10", seconds, "384-d float32"))
    memory = {}
    for bits in args.bits:
        memory[bits] = run_bits(bits, embeddings, queries, rows, args.backends)
    write_report(rows, memory, args)


def write_report(rows, memory, args) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_csv(RESULTS / f"{args.name}.csv", rows)
    float_p50 = rows[0]["p50_ms"]
    lines = [f"# Query latency, {args.documents:,} synthetic documents, {args.queries} queries",
             "", machine_record(), "",
             "Single-threaded-per-query latency (one query at a time), top-10 unless a radius "
             "is given. Speed-up is the exact float search p50 divided by the row's p50.", "",
             "| bits | method | p50 ms | p99 ms | queries/s | × float | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['bits']} | {r['method']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                     f"{r['qps']:,.0f} | {float_p50 / r['p50_ms']:,.1f} | {r['note']} |")
    lines += ["", "Table memory relative to the raw codes + row ids (both with row ids of the "
              "table's width, uint32 below 2^32 documents):", ""]
    for bits, (ratio, without, distinct) in memory.items():
        kept = (f"{ratio:.2f}× with the substring index" if ratio > without
                else f"no substring index below {MIN_SUBSTRING_CODES:,} distinct codes")
        lines.append(f"- {bits} bits: {kept}, {without:.2f}× for the sorted keys + row ids alone "
                     f"({distinct:,} distinct codes)")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, RESULTS / f"{args.name}.png")


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    labels = [f"{r['bits']}: {r['method']}" for r in rows]
    ax.barh(labels, [r["p50_ms"] for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per query (ms, log scale)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
