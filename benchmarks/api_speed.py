"""What the API costs beyond the engine (issue 30, item 3), on a built index: the lean path
(`top_rows`: rows and scores) against `search()` and `search_batch` (hits with id, text and
metadata) under the default request, by vector; and for text, `search(text)` against
embedding the text alone. One thread, one query at a time, best of PASSES passes.

    python -m benchmarks.api_speed INDEX [--queries 500] [--out benchmarks/results/api_speed.md]

Query vectors: stored documents' vectors with a little noise (no text model needed); text
queries (where the index has a text model): the stored texts of the same rows.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from hashindex.engine import HashIndex  # noqa: E402
from hashindex.store.layout import PRECOMPUTED_MODEL  # noqa: E402
from indexer.bench.measure import machine_record  # noqa: E402

PASSES = 5
K = 10


def best_seconds(run, items) -> float:
    """Best of PASSES passes over every item, one call each (one untimed call first)."""
    run(items[0])
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        for item in items:
            run(item)
        best = min(best, time.perf_counter() - start)
    return best


def fields(result) -> list:
    return [(hit.id, hit.text, hit.metadata) for hit in result.hits]


def measure(index: HashIndex, count: int) -> dict:
    rng = np.random.default_rng(0)
    rows = rng.choice(index.row_count, min(count, index.row_count), replace=False)
    vectors = index.vectors.rows(rows).astype(np.float32)
    vectors += 0.05 * rng.normal(size=vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = list(vectors)
    request = index.request(K)
    index.documents.hold()  # what 16 queries would do: measured in steady state
    out = {"setting": request.setting or request.backend, "queries": len(queries)}
    out["lean_us"] = 1e6 * best_seconds(lambda q: index.top_rows(q, request),
                                        queries) / len(queries)
    out["search_us"] = 1e6 * best_seconds(lambda q: fields(index.search(q, k=K)),
                                          queries) / len(queries)
    batches = [queries[i : i + 32] for i in range(0, len(queries), 32)]
    out["batch_us"] = 1e6 * best_seconds(
        lambda b: [fields(r) for r in index.search_batch(b, k=K)], batches) / len(queries)
    if index.model_name != PRECOMPUTED_MODEL:
        _, texts, _ = index.documents.fetch(rows[:200])
        texts = [text for text in texts if text and text.strip()]
        embedder = index.embedder()
        out["embed_us"] = 1e6 * best_seconds(lambda t: embedder.embed([t]), texts) / len(texts)
        out["text_us"] = 1e6 * best_seconds(lambda t: fields(index.search(t, k=K)),
                                            texts) / len(texts)
        # the rest alone: the same texts embedded first (EmbeddedText, as the service's
        # batcher hands them over), then searched; the difference of the two totals above
        # carries the embedding's own noise (± several times the rest on a busy machine)
        embedded = index.embed_texts(texts)
        out["rest_us"] = 1e6 * best_seconds(lambda e: fields(index.search(e, k=K)),
                                            embedded) / len(texts)
    return out


def report(path: Path, figures: dict) -> str:
    lines = [f"# The API against the lean path: `{path}`", "",
             f"- machine: {machine_record()}",
             f"- default request: {figures['setting']}; {figures['queries']} vector queries, "
             f"k={K}, one thread, best of {PASSES} passes", "",
             "| path | µs/query | queries/s | against top_rows |", "|---|---:|---:|---:|"]
    lean = figures["lean_us"]
    for name, key in (("`top_rows` (rows, scores)", "lean_us"),
                      ("`search()` (id, text, metadata)", "search_us"),
                      ("`search_batch` of 32", "batch_us")):
        lines.append(f"| {name} | {figures[key]:.1f} | {1e6 / figures[key]:,.0f} | "
                     f"{lean / figures[key]:.2f}× |")
    if "text_us" in figures:
        lines += ["", f"- text: `search(text)` {figures['text_us']:.0f} µs, embedding the text "
                  f"alone {figures['embed_us']:.0f} µs (the difference, noisy: "
                  f"{(figures['text_us'] - figures['embed_us']) / 1000:.3f} ms); the search "
                  f"of the embedded text alone: **{figures['rest_us'] / 1000:.3f} ms**"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    index = HashIndex.open(args.index)
    if index.vectors is None:
        raise SystemExit(f"{args.index} keeps no vectors: build it without "
                         "--no-store-embeddings")
    text = report(args.index, measure(index, args.queries))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
