"""`hashindex bench`: run the protocol over methods × bits × seeds, in parallel processes if
asked, and hand the figures to the report (report.py)."""

from __future__ import annotations

import errno
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from tqdm.auto import tqdm

from hashindex.baselines import METHODS, create_method, split_method
from hashindex.codes import check_bits
from hashindex.errors import HashIndexError
from hashindex.models import VARIANTS
from hashindex.models.config import variant_options
from indexer.bench.datasets import (
    UserDataset,
    dataset_sequences,
    embedding_rate,
    load_dataset,
    load_user_dataset,
    text_embedder,
)
from indexer.bench.protocol import (
    MIN_DATABASE,
    evaluate,
    float_upper_bound,
    make_split,
    query_count,
    tuning_split,
)
from indexer.bench.report import plot, write_csv, write_markdown

# the sequence variants need a named text dataset and a pass over its tokens: asked by name
DEFAULT_METHODS = ("sign", "pca-sign", "lsh", "itq", "spectral",
                   *(m for m in METHODS if m.startswith("ae:") and not VARIANTS[m[3:]].tokens))


@dataclass(frozen=True)
class BenchConfig:
    dataset: str | UserDataset  # a named dataset (datasets.py) or a user's labelled file
    methods: tuple[str, ...]
    bits: tuple[int, ...]
    out: Path
    cache_dir: Path
    seeds: int = 3
    size: int = 100_000  # documents of the synthetic dataset
    model: str | None = None  # the text model (default: the packaged MiniLM)
    jobs: int = 1  # parallel single-threaded processes
    tuning: bool = False  # evaluate on a re-split of the database part only
    show_progress: bool = True


def run_bench(config: BenchConfig, embedder=None) -> Path:
    """Run every method × bits × seed of `config` and write the report into config.out."""
    methods, bits_list, seeds = config.methods, config.bits, config.seeds
    user = config.dataset if isinstance(config.dataset, UserDataset) else None
    dataset = user.path if user else config.dataset
    out, jobs = config.out, config.jobs
    if not methods:
        raise HashIndexError("--methods lists no method")
    for name in methods:
        base, pairs = split_method(name)
        if pairs:
            variant_options(base[3:], pairs)  # a bad option fails now, not after the data
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
        check_split_size(config.size, max(bits_list), "--size")
    if user is None or user.embedding_column is None:  # texts: one model for every step
        embedder = text_embedder(config.model, embedder)
    data = (load_user_dataset(user, config.model, embedder) if user
            else load_dataset(dataset, config.cache_dir, config.model, config.size, embedder))
    check_split_size(len(data.embeddings), max(bits_list), f"dataset {dataset}")
    sequences = None
    token_counts = [create_method(m, 16, 0).options.max_tokens for m in methods
                    if m.startswith("ae:") and VARIANTS[split_method(m)[0][3:]].tokens]
    if len(set(token_counts)) > 1:
        raise HashIndexError("the sequence variants of one bench read the same tokens: give "
                             f"them one max_tokens (got {sorted(set(token_counts))})")
    if token_counts:  # the sequence variants read token embeddings (one more pass)
        if user:
            raise HashIndexError("the sequence variants read token embeddings; bench them on a "
                                 "named text dataset (bbc-news, stdlib-docs, debian-packages)")
        sequences = dataset_sequences(data, dataset, max(token_counts), config.model, embedder)
    embed_rate = None if user else embedding_rate(dataset, config.model, embedder)
    split = make_split(data.embeddings, data.labels, sequences=sequences)
    if config.tuning:
        split = tuning_split(split)
    upper = float_upper_bound(split)
    summaries, engine_rows = [], []
    work = [(m, b, s) for m in methods for b in bits_list for s in range(seeds)
            if not (m == "sign" and b != bits_list[0])]  # sign ignores bits: run it once
    failures = []
    bar = tqdm(total=len(work), desc=f"bench {dataset}", disable=not config.show_progress)
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
    write_markdown(out / "report.md", data=data, split=split, upper=upper, summaries=summaries,
                   engine_rows=engine_rows, failures=failures, jobs=jobs,
                   embed_rate=embed_rate)
    plot(out, upper, summaries, engine_rows)
    return out


def check_out_folder(out: Path) -> None:
    """--out must be a folder we can write into: checked before minutes of benchmarking, but
    made only when the report is written, so a bench refused or failed on its dataset leaves no
    empty folder behind. Checked on the nearest folder that exists: it must be a folder we may
    write into."""
    from hashindex.store.fsutil import path_error

    if out.exists() and not out.is_dir():
        raise HashIndexError(f"--out {out} is a file, not a folder; choose a folder for the report")
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise path_error(OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(out)),
                         f"--out {out}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise path_error(PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                         str(existing)), f"--out {out}")


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


