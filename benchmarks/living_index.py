"""The living index at scale: on N synthetic documents (default 1M, 64 bits, precomputed
384-d embeddings, int8 vectors stored), add batches of new documents, delete 1 % of them by id,
compact, and compare top-10 latency with many segments and deletions against the compacted
index; also the open time (cheap checks) against a full sha256 verify. Writes
benchmarks/results/living_index.{md,csv}.

    python -m benchmarks.living_index [--documents 1000000] [--adds 9] [--add-size 10000]
                                      [--work /tmp/living-bench]

The base index is built once in --work and reused; each run works on a hard-linked copy
(segments are immutable and every commit writes new files, so the base is never changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.serve_load.fixtures import synthetic_index, write_parquet
from hashindex.engine import HashIndex
from hashindex.segments.writer import IndexWriter
from indexer.bench.datasets import clustered_embeddings
from indexer.bench.measure import machine_record
from indexer.bench.report import write_csv
from indexer.documents import ColumnOptions
from indexer.update import AddConfig, add_documents

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
COLUMNS = ColumnOptions(text_column="text", id_column="id", embedding_column="embedding")


def timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def latency(index: HashIndex, queries: np.ndarray, backend: str) -> dict:
    """p50/p99 ms of a top-10 (the lean path: rows and scores, as the service ranks) and of
    the full search (with the hits' ids, text and metadata)."""
    request = index.request(K, backend=backend)
    index.top_rows(queries[0], request)  # untimed: numba compile, first reads
    out = {}
    for name, call in (("lean", lambda q: index.top_rows(q, request)),
                       ("full", lambda q: index.run(q, request))):
        seconds = []
        for query in queries:
            started = time.perf_counter()
            call(query)
            seconds.append(time.perf_counter() - started)
        out[f"{name}_p50_ms"] = 1000 * float(np.percentile(seconds, 50))
        out[f"{name}_p99_ms"] = 1000 * float(np.percentile(seconds, 99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--adds", type=int, default=9, help="adds, each a new segment")
    parser.add_argument("--add-size", type=int, default=10_000)
    parser.add_argument("--delete-share", type=float, default=0.01)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/living-bench"))
    parser.add_argument("--out", type=Path, default=RESULTS / "living_index")
    args = parser.parse_args()

    base, queries = synthetic_index(args.work, args.documents, args.bits, args.queries)
    index_path = args.work / "living"
    shutil.rmtree(index_path, ignore_errors=True)
    shutil.copytree(base, index_path, copy_function=os.link)
    rows: list[dict] = []

    def note(step: str, seconds: float, detail: str = "") -> None:
        rows.append({"step": step, "seconds": round(seconds, 3), "detail": detail})
        print(f"{step:<40} {seconds:8.3f} s  {detail}", flush=True)

    if HashIndex.open(index_path).manifest.legacy:  # a base built before format 4

        def upgrade():
            with IndexWriter(index_path, allow_legacy=True) as writer:
                writer.upgrade()

        note("upgrade (format 3 → 4, in place)", timed(upgrade)[1], "links, then one commit")

    opens = [timed(lambda: HashIndex.open(index_path))[1] for _ in range(5)]
    note("open (manifest, sizes, footers)", statistics.median(opens), "median of 5")
    note("open --verify (sha256 of every file)",
         timed(lambda: HashIndex.open(index_path, verify=True))[1],
         "what every open cost before format 4")

    vectors, labels = clustered_embeddings(args.adds * args.add_size, seed=7)
    inputs = []
    for number in range(args.adds):
        part = slice(number * args.add_size, (number + 1) * args.add_size)
        path = args.work / f"add-{number}.parquet"
        write_parquet(path, vectors[part], labels[part])
        inputs.append(path)
    del vectors
    for number, path in enumerate(inputs):  # ids doc-0.. again: rename them to new ones
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        table = table.set_column(0, "id", pa.array([f"new-{number}-{i}"
                                                    for i in range(table.num_rows)]))
        pq.write_table(table, path)
    for number, path in enumerate(inputs):
        report, seconds = timed(lambda p=path: add_documents(AddConfig(
            index=str(index_path), input=str(p), columns=COLUMNS, show_progress=False)))
        stages = ", ".join(f"{k} {v:.2f}" for k, v in report.stage_seconds.items())
        note(f"add {args.add_size:,} documents (#{number + 1})", seconds,
             f"{report.segment}; stages: {stages} (read = the precomputed embeddings' read)")

    rng = np.random.default_rng(3)
    total = args.documents + args.adds * args.add_size
    count = int(args.delete_share * total)
    doomed = [f"doc-{i}" for i in rng.choice(args.documents, count, replace=False)]

    def delete():
        with IndexWriter(index_path) as writer:
            return writer.delete(doomed)

    report, seconds = timed(delete)
    note(f"delete {count:,} ids ({args.delete_share:.0%})", seconds,
         f"{report.deleted} deleted, generation {report.generation}")

    segmented = HashIndex.open(index_path)
    before = {backend: latency(segmented, queries, backend) for backend in ("table", "flat")}
    segments = len(segmented.manifest.segments)
    del segmented

    def compact():
        with IndexWriter(index_path) as writer:
            return writer.compact()

    report, seconds = timed(compact)
    note("compact", seconds, f"{report.segments_before} segments, {report.rows_before:,} rows "
         f"→ {report.documents:,} documents")
    compacted = HashIndex.open(index_path)
    after = {backend: latency(compacted, queries, backend) for backend in ("table", "flat")}
    for backend in before:
        for path in ("lean", "full"):
            ratio = before[backend][f"{path}_p50_ms"] / after[backend][f"{path}_p50_ms"]
            note(f"top-10 {backend} {path}: {segments} segments + deletions",
                 before[backend][f"{path}_p50_ms"] / 1000,
                 f"p50 {before[backend][f'{path}_p50_ms']:.3f} ms, p99 "
                 f"{before[backend][f'{path}_p99_ms']:.3f} ms; compacted p50 "
                 f"{after[backend][f'{path}_p50_ms']:.3f} ms, p99 "
                 f"{after[backend][f'{path}_p99_ms']:.3f} ms: {ratio:.2f}×")
    write_report(args, rows)


def write_report(args, rows: list[dict]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out.with_suffix(".csv"), rows)
    machine = machine_record()
    lines = [f"# Living index: {args.documents:,} synthetic documents, {args.bits} bits",
             "",
             f"Adds of {args.add_size:,} precomputed 384-d embeddings (no text model: the "
             "times exclude embedding), a delete of "
             f"{args.delete_share:.0%} of the documents by id, a compaction, and top-10 "
             f"latency over {args.queries} held-out queries (one thread) before and after it. "
             "`python -m benchmarks.living_index`.",
             "",
             f"Machine: {machine}",
             "",
             "| step | seconds | detail |", "|---|---:|---|"]
    lines += [f"| {r['step']} | {r['seconds']:.3f} | {r['detail']} |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
