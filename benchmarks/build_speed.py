"""Build throughput: each stage on the bundled sample, and encode + write on N synthetic
384-d embeddings (default 1M). Writes benchmarks/results/build_speed.md.

    python -m benchmarks.build_speed [--synthetic 1000000] [--skip-sample]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa

from hashindex.encoding import encode_codes
from hashindex.models import DEFAULT_VARIANT
from hashindex.segments.writing import SegmentSettings, SegmentWriter
from hashindex.store.layout import segment_folder
from hashindex.training import TrainConfig, train
from indexer.bench.datasets import clustered_embeddings
from indexer.bench.measure import Timer, machine_record, peak_rss_mib

RESULTS = Path(__file__).resolve().parent / "results"


def sample_stages(work: Path) -> list[str]:
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions
    from indexer.samples import SAMPLE_PATH

    config = BuildConfig(input=str(SAMPLE_PATH), out=str(work / "sample-index"),
                         columns=ColumnOptions(id_column="id"), store_embeddings=True,
                         use_cache=False, show_progress=False)
    report = build_index(config)
    lines = ["| stage | seconds | documents/s |", "|---|---:|---:|"]
    for stage, seconds in report.stage_seconds.items():
        lines.append(f"| {stage} | {seconds:.2f} | {report.documents / seconds:,.0f} |")
    return [f"Bundled sample ({report.documents} documents, {DEFAULT_VARIANT} variant, 64 bits, "
            "all-MiniLM-L6-v2 on the CPU):", "", *lines]


def synthetic_encode_write(n: int, bits: int, work: Path, shard_rows: int) -> list[str]:
    embeddings, _ = clustered_embeddings(n)
    model = train(embeddings[:50_000], DEFAULT_VARIANT, bits,
                  TrainConfig(epochs=3, show_progress=False)).model
    with Timer() as encode:
        codes = encode_codes(model, embeddings)
    out = work / "synthetic-index"
    with Timer() as write:  # what a build writes: one segment (shards, table, FAISS flat)
        writer = SegmentWriter(out, segment_folder(1), pa.schema([]),
                               SegmentSettings(bits, "flat", {}, shard_rows=shard_rows))
        empty = pa.table({})
        for start in range(0, n, shard_rows):
            end = min(start + shard_rows, n)
            ids = [str(i) for i in range(start, end)]
            writer.write(ids, [""] * (end - start), empty, codes[start:end])
        writer.finish(codes)
    total = encode.seconds + write.seconds
    return [
        f"{n:,} synthetic 384-d embeddings, {DEFAULT_VARIANT} variant, {bits} bits, shards of "
        f"{shard_rows:,} rows (ids, empty text, codes), table and FAISS flat index:",
        "",
        "| stage | seconds | embeddings/s |",
        "|---|---:|---:|",
        f"| encode | {encode.seconds:.2f} | {n / encode.seconds:,.0f} |",
        f"| write | {write.seconds:.2f} | {n / write.seconds:,.0f} |",
        f"| encode + write | {total:.2f} | {n / total:,.0f} |",
        "",
        f"Peak resident memory of the benchmark process: {peak_rss_mib():,.0f} MiB "
        f"(the {n:,} float32 embeddings alone take {embeddings.nbytes / 2**20:,.0f} MiB).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hashindex-bench-"))
    try:
        lines = ["# Build throughput", "", machine_record(), ""]
        if not args.skip_sample:
            lines += sample_stages(work) + [""]
        lines += synthetic_encode_write(args.synthetic, args.bits, work, args.shard_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
