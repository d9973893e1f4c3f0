"""Headroom of the codes' Hamming-rank recall@10 on one corpus (issue 18's 1.3× ITQ target):
for each number of bits, the bench's precision@100 and recall@10 against the exact float
top-10 of
- ITQ and our autoencoder, on unseen queries (the bench's figures) and, for the autoencoder,
  on its own training documents (each database document as a query against the others);
- a float ceiling: cosine over the top b principal projections (no binarisation);
- sign bits of the whole centred embedding (d bits);
- free codes: every document's code, queries' too, optimised directly for its float top-10
  (transductive, not a method: whether b bits can hold these top-10s at all).
Writes benchmarks/results/code-headroom/<dataset>/{results.csv, report.md}.

    python -m benchmarks.code_headroom [--dataset bbc-news] [--bits 64 128 256]
                                       [--split full|tuning] [--steps 400] [--size N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import bits_argument
from hashindex.baselines import create_method
from hashindex.baselines.autoencoder import AutoencoderMethod
from hashindex.embedding.cache import default_cache_dir
from hashindex.training import TrainConfig
from indexer.bench.datasets import DATASETS, load_dataset
from indexer.bench.headroom import (
    centred_sign_codes,
    free_codes,
    in_sample_recall,
    projected_float_ranking,
)
from indexer.bench.measure import machine_record
from indexer.bench.protocol import (
    float_upper_bound,
    hamming_ranking,
    make_split,
    ranking_metrics,
    tuning_split,
)
from indexer.bench.report import write_csv

RESULTS = Path(__file__).resolve().parent / "results" / "code-headroom"
TARGET = 1.3  # × ITQ's recall@10 at the same bits


def row(bits, method, documents, metrics, itq_recall=None, seconds=None) -> dict:
    recall = metrics["recall@10"]
    return {"bits": bits, "method": method, "documents": documents,
            "precision@100": round(metrics["precision@100"], 4), "recall@10": round(recall, 4),
            "x_itq": round(recall / itq_recall, 3) if itq_recall else "",
            "seconds": round(seconds, 1) if seconds is not None else ""}


def rows_for_bits(split, bits: int, variant: str, steps: int) -> list[dict]:
    metrics = lambda ranked: ranking_metrics(ranked, split)  # noqa: E731
    depth = split.map_depth
    itq = create_method("itq", bits, 0).fit(split.database)
    itq_db, itq_queries = itq.encode(split.database), itq.encode(split.queries)
    itq_metrics = metrics(hamming_ranking(itq_db, itq_queries, bits, depth))
    base = itq_metrics["recall@10"]
    out = [row(bits, "itq", "unseen queries", itq_metrics, base)]
    started = time.perf_counter()
    model = AutoencoderMethod(bits, 0, variant, train_config=TrainConfig(show_progress=False))
    model.fit(split.database)
    seconds = time.perf_counter() - started
    db_codes = model.encode(split.database)
    ours = metrics(hamming_ranking(db_codes, model.encode(split.queries), bits, depth))
    out.append(row(bits, f"ae:{variant}", "unseen queries", ours, base, seconds))
    in_sample = {"precision@100": float("nan"),
                 "recall@10": in_sample_recall(split.database, db_codes, bits)}
    out.append(row(bits, f"ae:{variant}", "its training documents (10 % of them held out "
                   "for early stopping)", in_sample, base))
    out.append(row(bits, f"float cosine over {bits} principal projections", "unseen queries",
                   metrics(projected_float_ranking(split.database, split.queries, bits, depth)),
                   base))
    started = time.perf_counter()
    packed = free_codes(split.database, split.queries,
                        np.vstack([itq_db, itq_queries]), bits, steps=steps)
    free = metrics(hamming_ranking(packed[: len(split.database)],
                                   packed[len(split.database):], bits, depth))
    out.append(row(bits, "free codes, each optimised for its float top-10",
                   "transductive (queries' own neighbours used)", free, base,
                   time.perf_counter() - started))
    return out


def write_report(out: Path, rows: list[dict], args, split, float_metrics) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", rows)
    lines = [f"# Code headroom: {args.dataset}", "",
             f"`python -m benchmarks.code_headroom --dataset {args.dataset} --split {args.split} "
             f"--bits {' '.join(map(str, args.bits))} --steps {args.steps}`", "",
             f"Split: {split.description}. Exact float: precision@100 "
             f"{float_metrics['precision@100']:.3f}, recall@10 1.000. Target: recall@10 ≥ "
             f"{TARGET}× ITQ's at the same bits.", "",
             "| bits | method | documents | precision@100 | recall@10 | × ITQ | fit s |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        precision = "" if np.isnan(r["precision@100"]) else f"{r['precision@100']:.3f}"
        lines.append(f"| {r['bits']} | {r['method']} | {r['documents']} | {precision} | "
                     f"{r['recall@10']:.3f} | {r['x_itq']} | {r['seconds']} |")
    for bits in args.bits:
        itq = next(r for r in rows if r["bits"] == bits and r["method"] == "itq")
        lines.append(f"\n{bits} bits: the target is recall@10 ≥ {TARGET * itq['recall@10']:.3f}.")
    lines += ["", f"Machine: {machine_record()}"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="bbc-news", choices=DATASETS)
    parser.add_argument("--size", type=int, default=20_000, help="synthetic dataset only")
    parser.add_argument("--bits", type=bits_argument, nargs="+", default=[64, 128, 256])
    parser.add_argument("--split", choices=("full", "tuning"), default="full",
                        help="full: the bench's database / queries; tuning: the database "
                        "part re-split")
    parser.add_argument("--variant", default="deep")
    parser.add_argument("--steps", type=int, default=400, help="free codes' optimiser steps")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, default_cache_dir() / "bench", size=args.size)
    split = make_split(data.embeddings, data.labels)
    if args.split == "tuning":
        split = tuning_split(split)
    rows = []
    for bits in args.bits:
        for r in rows_for_bits(split, bits, args.variant, args.steps):
            rows.append(r)
            print(r, flush=True)
    sign_db, sign_q, sign_bits = centred_sign_codes(split.database, split.queries)
    sign = ranking_metrics(hamming_ranking(sign_db, sign_q, sign_bits, split.map_depth), split)
    rows.append(row(sign_bits, "sign bits of the centred embedding", "unseen queries", sign))
    write_report(Path(args.out) if args.out else RESULTS / f"{args.dataset}-{args.split}", rows,
                 args, split, float_upper_bound(split))


if __name__ == "__main__":
    main()
