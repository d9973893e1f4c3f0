"""`hashindex bench`: run the protocol over methods × bits × seeds and write the report
(Markdown table, CSVs with every figure, PNG plots, machine and command line)."""

from __future__ import annotations

import csv
import os
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hashindex.baselines import METHODS
from hashindex.codes import check_bits
from hashindex.errors import HashIndexError
from indexer.bench.datasets import load_dataset
from indexer.bench.protocol import (
    MIN_DATABASE,
    evaluate,
    float_upper_bound,
    make_split,
    query_count,
    tuning_split,
)

DEFAULT_METHODS = ("sign", "pca-sign", "lsh", "itq", *(m for m in METHODS if m.startswith("ae:")))
METRICS = ("precision@10", "precision@100", "map", "recall@10", "recall@100")


def run_bench(dataset: str, methods: list[str], bits_list: list[int], seeds: int, out: Path,
              cache_dir: Path, size: int = 100_000, show_progress: bool = True,
              embedder=None, tuning: bool = False, jobs: int = 1) -> Path:
    if not methods:
        raise HashIndexError("--methods lists no method")
    for name in methods:
        if name not in METHODS:
            raise HashIndexError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    if not bits_list:
        raise HashIndexError("--bits lists no code length")
    for bits in bits_list:
        check_bits(bits)
    if seeds < 1:
        raise HashIndexError(f"--seeds {seeds} must be at least 1")
    if jobs < 1:
        raise HashIndexError(f"--jobs {jobs} must be at least 1")
    check_out_folder(out)
    if dataset == "synthetic":
        check_split_size(size, max(bits_list), "--size")
    data = load_dataset(dataset, cache_dir, size=size, embedder=embedder)
    check_split_size(len(data.embeddings), max(bits_list), f"dataset {dataset}")
    split = make_split(data.embeddings, data.labels)
    if tuning:
        split = tuning_split(split)
    upper = float_upper_bound(split)
    summaries, engine_rows = [], []
    work = [(m, b, s) for m in methods for b in bits_list for s in range(seeds)
            if not (m == "sign" and b != bits_list[0])]  # sign ignores bits: run it once
    failures = []
    bar = tqdm(total=len(work), desc=f"bench {dataset}", disable=not show_progress)
    # spawn, not fork: a forked child of a process that ran OpenMP (faiss, torch) can hang;
    # the children inherit the environment, which caps numpy's BLAS threads before it loads
    if jobs > 1:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
    with ProcessPoolExecutor(jobs, get_context("spawn"), set_up_worker, (split,)) \
            if jobs > 1 else nullcontext() as pool:
        outcomes = (pool.map(evaluate_or_fail, work) if pool
                    else (evaluate_or_fail(job, split) for job in work))
        for (method, bits, seed), outcome in zip(work, outcomes):
            bar.update()
            if isinstance(outcome, str):
                failures.append(f"{method} {bits} bits seed {seed}: {outcome}")
                continue
            summary, engine = outcome
            summaries.append(summary)
            engine_rows += [{"method": method, "bits": summary["bits"], "seed": seed, **row}
                            for row in engine]
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", summaries)
    write_csv(out / "engine.csv", engine_rows)
    write_markdown(out / "report.md", data, split, upper, summaries, engine_rows, failures, jobs)
    plot(out, upper, summaries, engine_rows)
    return out


def check_out_folder(out: Path) -> None:
    """--out must be a folder we can write into: checked before minutes of benchmarking."""
    if out.exists() and not out.is_dir():
        raise HashIndexError(f"--out {out} is a file, not a folder; choose a folder for the report")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        from hashindex.store.publish import path_error

        raise path_error(error, f"--out {out}") from None


def check_split_size(documents: int, bits: int, what: str) -> None:
    """The database part must hold the 100 exact neighbours recall@100 compares against, and
    one document per bit (PCA and ITQ need as many rows as directions)."""
    needed = max(MIN_DATABASE, bits)
    database = max(0, documents - query_count(documents))
    if database < needed:
        smallest = next(n for n in range(needed, 10 * needed + 10)
                        if n - query_count(n) >= needed)
        raise HashIndexError(
            f"{what} has {documents} documents, so its database part holds {database}; the "
            f"benchmark needs at least {needed} there (recall@100 and {bits} bits): use "
            f"{smallest} documents or more"
        )


_worker_split = None


def set_up_worker(split) -> None:
    """A parallel job's process: the split sent once, one thread, so jobs do not fight over
    cores."""
    import faiss
    import torch

    global _worker_split
    _worker_split = split
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def evaluate_or_fail(job: tuple[str, int, int], split=None) -> tuple[dict, list[dict]] | str:
    """One method × bits × seed; a diverging method becomes a line in the report, not a crash."""
    method, bits, seed = job
    try:
        return evaluate(method, bits, seed, split if split is not None else _worker_split)
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def grouped(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def write_markdown(path, data, split, upper, summaries, engine_rows, failures, jobs=1) -> None:
    import faiss
    import torch

    lines = [
        f"# hashindex bench: {data.name}",
        "",
        f"- data: {data.source}; {len(data.label_names)} labels",
        f"- split: {split.description}; every method is fitted on the database part only",
        f"- relevance: a retrieved document shares the query's label; mAP over the top "
        f"{split.map_depth}; recall@k against exact float cosine top-k on the same embeddings",
        "- engine: the hash table's Hamming ball grown until it holds the candidate budget, "
        "re-ranked by cosine to the float embeddings; touched = documents examined / database",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, faiss {faiss.__version__}"
        + (f"; {jobs} parallel single-threaded jobs (queries/s measured under that load)"
           if jobs > 1 else ""),
        f"- command: `hashindex {' '.join(sys.argv[1:])}`",
        "",
        "## Ranking by Hamming distance (mean ± std over seeds)",
        "",
        "| method | bits | " + " | ".join(METRICS) + " |",
        "|---|---:|" + "---:|" * len(METRICS),
        "| exact float cosine | — | " + " | ".join(f"{upper[m]:.3f}" for m in METRICS) + " |",
    ]
    for (method, bits), rows in grouped(summaries, ("method", "bits")).items():
        lines.append(f"| {method} | {bits} | "
                     + " | ".join(mean_std([r[m] for r in rows]) for m in METRICS) + " |")
    lines += ["", "## Hamming-ball engine with cosine re-ranking (mean over seeds)", "",
              "| method | bits | candidates (share of DB) | touched | radius | recall@10 | "
              "queries/s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for (method, bits, budget), rows in grouped(
            engine_rows, ("method", "bits", "rerank_budget")).items():
        label = "top-10, no re-rank" if budget == 0 else f"{budget:.1%}"
        lines.append(
            f"| {method} | {bits} | {label} | "
            f"{np.mean([r['touched_fraction'] for r in rows]):.2%} | "
            f"{np.mean([r['radius'] for r in rows]):.1f} | "
            f"{mean_std([r['engine_recall@10'] for r in rows])} | "
            f"{np.mean([r['queries_per_second'] for r in rows]):,.0f} |")
    if failures:
        lines += ["", "## Runs that failed", ""] + [f"- {f}" for f in failures]
    path.write_text("\n".join(lines) + "\n")


def plot(out: Path, upper: dict, summaries: list[dict], engine_rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for method, rows in grouped(summaries, ("method",)).items():
        by_bits = grouped(rows, ("bits",))
        bits = sorted(b for (b,) in by_bits)
        means = [np.mean([r["precision@100"] for r in by_bits[(b,)]]) for b in bits]
        ax.plot(bits, means, marker="o", label=method[0])
    ax.axhline(upper["precision@100"], color="black", linestyle="--", label="exact float")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits")
    ax.set_ylabel("label precision@100")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "precision_vs_bits.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for (method, bits), rows in grouped(engine_rows, ("method", "bits")).items():
        by_budget = grouped(rows, ("rerank_budget",))
        budgets = sorted(b for (b,) in by_budget)
        touched = [np.mean([r["touched_fraction"] for r in by_budget[(b,)]]) for b in budgets]
        recall = [np.mean([r["engine_recall@10"] for r in by_budget[(b,)]]) for b in budgets]
        ax.plot(touched, recall, marker=".", label=f"{method} {bits}b", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the database touched per query")
    ax.set_ylabel("recall@10 vs exact float search")
    ax.legend(fontsize=5, ncol=3)
    fig.tight_layout()
    fig.savefig(out / "recall_vs_touched.png", dpi=120)
    plt.close(fig)
