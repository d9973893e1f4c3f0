"""Training cost of the default model (issue 30, item 5): train seconds, steps, and the
Hamming recall@10 of the codes against exact cosine top-10 on held-out queries.

Trains the way `hashindex build` does (indexer/build/skeleton.py: `sample_rows` then `train` with
the build's variant and bits) on a corpus's cached vectors, with ~1 000 of its rows held out
as queries. `--busy N` keeps N other processes spinning on the CPU while it trains (the
"another process keeps both cores busy" case); they are stopped afterwards.

    python -m benchmarks.training_speed VECTORS.npy [--subset 30000] [--busy 2]
        [--train-option batch_size=1024 ...]

Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from hashindex.encoding import encode_codes
from hashindex.models import DEFAULT_VARIANT
from hashindex.training import TrainConfig

SEED = 7


def spin() -> None:
    while True:
        pass


def hamming_top(query_codes: np.ndarray, doc_codes: np.ndarray, k: int) -> np.ndarray:
    """(queries, k) document rows by Hamming distance, ties by row (a stable sort)."""
    bits = doc_codes.shape[1] * 8
    docs = np.unpackbits(doc_codes, axis=1).astype(np.float32) * 2 - 1
    queries = np.unpackbits(query_codes, axis=1).astype(np.float32) * 2 - 1
    distance = np.rint((bits - queries @ docs.T) / 2).astype(np.int32)
    return np.argsort(distance, axis=1, kind="stable")[:, :k]


def exact_top(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ docs.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))


def parse_value(field, text: str):
    kind = type(field.default)
    if kind is bool:
        return text.lower() in ("1", "true", "yes")
    return kind(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors", type=Path, help="float32 (n, d) .npy, rows normalised")
    parser.add_argument("--subset", type=int, default=0, help="seeded sample of this many rows")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=64, help="the build's default: 64")
    parser.add_argument("--variant", default=DEFAULT_VARIANT)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes while training")
    parser.add_argument("--train-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default="")
    parser.add_argument("--exact-mining", action="store_true",
                        help="mine neighbours exactly at any size (the reference)")
    args = parser.parse_args(argv)

    from hashindex.training import train
    from indexer.build.passes import sample_rows

    vectors = np.load(args.vectors, mmap_mode="r")
    rng = np.random.default_rng(SEED)
    rows = np.arange(len(vectors))
    if args.subset and args.subset < len(vectors):
        rows = np.sort(rng.choice(len(vectors), args.subset, replace=False))
    rows = rng.permutation(rows)
    queries = np.ascontiguousarray(vectors[np.sort(rows[: args.queries])], dtype=np.float32)
    docs = np.ascontiguousarray(vectors[np.sort(rows[args.queries :])], dtype=np.float32)

    if args.exact_mining:
        import hashindex.training

        hashindex.training.EXACT_MINING_ROWS = len(vectors)
    known = {f.name: f for f in fields(TrainConfig)}
    overrides = {}
    for pair in args.train_option:
        key, _, value = pair.partition("=")
        overrides[key] = parse_value(known[key], value)
    config = TrainConfig(show_progress=False, **overrides)

    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = train(sample_rows(docs, config), args.variant, args.bits, config)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        for process in spinners:
            process.terminate()
            process.join()

    model = result.model
    found = hamming_top(encode_codes(model, queries), encode_codes(model, docs), 10)
    truth = exact_top(queries, docs, 10)
    steps = sum(record.get("steps", 0) for record in result.history)
    if not steps:  # a training.py that does not count them: one per batch of anchors
        n_fit = len(docs) - int(round(len(docs) * config.val_fraction))
        groups = max(1, config.batch_size // min(config.neighbourhood, config.batch_size))
        steps = len(result.history) * -(-n_fit // groups)
    print(json.dumps({
        "label": args.label, "corpus": args.vectors.name.split("--")[0], "docs": len(docs),
        "queries": len(queries), "busy": args.busy, "train_s": round(seconds, 2),
        "cpu_s": round(cpu, 2), "epochs": len(result.history), "best_epoch": result.best_epoch,
        "steps": steps, "hamming_recall@10": round(recall(found, truth), 4),
        "mine_s": round(getattr(result, "seconds", {}).get("mine", 0.0), 2),
        "overrides": overrides,
        "config": {k: v for k, v in asdict(config).items() if k != "show_progress"},
    }), flush=True)


if __name__ == "__main__":
    main()
