"""The ray engine against the local engine on the same data, in one run: documents per second
per stage, with 1 and 2 embedding actors. Writes benchmarks/results/ray_build.{md,csv}.

    python -m benchmarks.ray_build [--input PATH --text-column text --id-column id]

Default input: the bundled sample (3 190 docstring paragraphs) with the default text model;
the embedding cache is off, so every engine embeds every document.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from indexer.bench.measure import machine_record
from indexer.bench.report import write_csv
from indexer.build import BuildConfig, build_index
from indexer.documents import ColumnOptions
from indexer.samples import SAMPLE_PATH

RESULTS = Path(__file__).resolve().parent / "results"
# how each engine's stages line up: the local engine reads and embeds in one pass and writes
# the shards and the indexes in one step; the ray engine reads inside its embedding actors
STAGES = {"local": {"read": ("read",), "embed": ("embed",), "read + embed": ("read", "embed"),
                    "train": ("train",), "encode + write": ("encode", "write"),
                    "table + index": ("index",)},
          "ray": {"read": (), "embed": (), "read + embed": ("embed",), "train": ("train",),
                  "encode + write": ("encode+write",), "table + index": ("index",)}}


def run(engine: str, workers: int, args, work: Path) -> dict:
    config = BuildConfig(input=str(args.input), out=str(work / f"{engine}-{workers}"),
                         columns=ColumnOptions(text_column=args.text_column,
                                               id_column=args.id_column),
                         engine=engine, embed_workers=workers, use_cache=False,
                         store_embeddings=True, show_progress=False, overwrite=True,
                         batch_rows=args.part_rows)
    started = time.perf_counter()
    report = build_index(config)
    wall = time.perf_counter() - started
    row = {"engine": engine, "workers": workers, "documents": report.documents,
           "wall_s": round(wall, 2), "docs_per_s": round(report.documents / wall, 1)}
    for stage, parts in STAGES[engine].items():
        if not parts:  # the ray engine reads inside its embedding actors: one figure
            row[f"{stage} s"] = row[f"{stage} docs/s"] = None
            continue
        seconds = sum(report.stage_seconds.get(p, 0.0) for p in parts)
        row[f"{stage} s"] = round(seconds, 2)
        row[f"{stage} docs/s"] = round(report.documents / seconds, 1) if seconds else None
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=SAMPLE_PATH)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--part-rows", type=int, default=500,
                        help="rows per part (the ray engine's unit of work)")
    parser.add_argument("--out", type=Path, default=RESULTS / "ray_build")
    args = parser.parse_args()
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray_start = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="hashindex-ray-bench-"))
    try:
        rows = [run("local", 1, args, work), run("ray", 1, args, work),
                run("ray", 2, args, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out.with_suffix(".csv"), rows)
    stages = list(STAGES["local"])
    lines = [f"# Build engines on {args.input.name} ({rows[0]['documents']:,} documents)", "",
             "The same input, model, seed and settings (embeddings stored, cache off) built by "
             f"the local engine and by the ray engine with 1 and 2 embedding actors "
             f"(parts of {args.part_rows} rows), on a local Ray started once "
             f"({ray_start:.1f} s, not counted). `python -m benchmarks.ray_build`.", "",
             f"Machine: {machine_record()}", "",
             "| engine | actors | wall s | docs/s | " + " | ".join(
                 f"{s} s (docs/s)" for s in stages) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(stages)]
    for row in rows:
        cells = [f"{row[f'{s} s']:.2f} ({row[f'{s} docs/s'] or 0:,.0f})"
                 if row[f"{s} s"] is not None else "— (in the actors)" for s in stages]
        lines.append(f"| {row['engine']} | {row['workers']} | {row['wall_s']:.1f} | "
                     f"{row['docs_per_s']:,.0f} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
