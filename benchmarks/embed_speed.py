"""Embedding throughput, memory and quality per runtime × quantization × workers, same
documents, same thread budget (every setting gets all the cores: workers × threads = cores).

Speed: each setting runs in a fresh process (its own model load, untimed) on the bundled
sample's short docstrings and on bbc-news articles (long texts, cut at the model's 256
tokens); docs/s over the texts after one untimed run over the same texts (workers started,
every input shape met once), peak RSS of the process and its workers. The reference is
sentence-transformers' own `encode` in torch fp32, as a user calls it.
Quality: cosine of each setting's vectors to torch fp32's (mean and 1st percentile), and the
bench's P@100 / R@10 on bbc-news with ae:vanilla 64-bit codes trained on each setting's vectors.
Writes benchmarks/results/embed_speed.{md,csv,png}.

    python -m benchmarks.embed_speed [--texts 1000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = [("torch", "none"), ("onnx", "none"), ("onnx", "int8"), ("openvino", "none"),
            ("openvino", "int8")]


def corpus(name: str, limit: int) -> tuple[list[str], list[str]]:
    from indexer.bench.datasets import bbc_news_texts, stdlib_docs_texts

    texts, labels = stdlib_docs_texts() if name == "stdlib-docs" else bbc_news_texts()
    return texts[:limit] if limit else texts, labels[:limit] if limit else labels


def child(spec: dict) -> None:
    """One setting in this fresh process: print docs/s, peak RSS and the vectors' file."""
    from hashindex.embedding.embedder import Embedder

    texts, _ = corpus(spec["corpus"], spec["texts"])
    calibration = corpus("stdlib-docs", 0)[0][-256:]  # never the texts measured
    cores = os.cpu_count() or 1
    if spec["backend"] == "st-encode":
        import torch
        from sentence_transformers import SentenceTransformer

        from hashindex.embedding.embedder import DEFAULT_MODEL, resolve_model_path

        torch.set_num_threads(cores)
        model = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")

        def embed(batch):  # encode's own defaults (32 texts a batch, length-sorted)
            return model.encode(batch, normalize_embeddings=True)
    else:
        embedder = Embedder(backend=spec["backend"], quantize=spec["quantize"],
                            workers=spec["workers"], calibration_texts=calibration)
        embed = embedder.embed
    # one untimed run over the same texts: the workers start, and every runtime meets each
    # input shape once (a long build pays that once; a 600-text timing would pay it each time)
    embed(texts)
    timings = []
    for _ in range(spec.get("repeats", 1)):  # short texts take < 1 s: one run is noise
        started = time.perf_counter()
        vectors = embed(texts)
        timings.append(time.perf_counter() - started)
    seconds = float(np.median(timings))
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss +
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    np.save(spec["vectors"], np.asarray(vectors, dtype=np.float32))
    print(json.dumps({"docs_per_s": len(texts) / seconds, "peak_mib": peak}))


def run_setting(spec: dict) -> dict:
    result = subprocess.run([sys.executable, "-m", "benchmarks.embed_speed", "--child",
                             json.dumps(spec)], capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def quality(vectors: np.ndarray, labels: list[str]) -> dict:
    """The bench's P@100 and R@10 (ae:vanilla, 64 bits, seed 0) on these vectors."""
    from indexer.bench.protocol import evaluate, float_upper_bound, make_split

    names = sorted(set(labels))
    split = make_split(vectors, np.array([names.index(x) for x in labels]))
    summary, _ = evaluate("ae:vanilla", 64, 0, split)
    upper = float_upper_bound(split)
    return {"P@100 float": upper["precision@100"], "P@100 ae:vanilla-64": summary["precision@100"],
            "R@10 ae:vanilla-64": summary["recall@10"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=int, default=1000, help="texts per corpus for speed")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting "
                        "(their median is reported)")
    parser.add_argument("--quick", action="store_true", help="fewer texts, no quality pass")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    from indexer.bench.measure import machine_record

    cores = os.cpu_count() or 1
    texts = 120 if args.quick else args.texts
    rows, work = [], Path(tempfile.mkdtemp(prefix="embed-speed-"))
    plans = [("st-encode", "none", 1)] + [(b, q, w) for b, q in SETTINGS
                                          for w in sorted({1, cores})]
    reference = {}
    for name in ("stdlib-docs", "bbc-news"):
        for backend, quantize, workers in plans:
            vectors_file = work / f"{name}-{backend}-{quantize}-{workers}.npy"
            spec = {"corpus": name, "texts": texts, "backend": backend, "quantize": quantize,
                    "workers": workers, "vectors": str(vectors_file), "repeats": args.repeats}
            measured = run_setting(spec)
            vectors = np.load(vectors_file)
            if backend == "st-encode":
                reference[name] = vectors
            cosine = np.sum(vectors * reference[name], axis=1)
            row = {"corpus": name, "runtime": backend, "quantize": quantize,
                   "workers": workers, "threads_per_worker": max(1, cores // workers),
                   "docs_per_s": round(measured["docs_per_s"], 1),
                   "speedup": 0.0, "peak_mib": round(measured["peak_mib"]),
                   "cosine_mean": round(float(cosine.mean()), 5),
                   "cosine_p1": round(float(np.percentile(cosine, 1)), 5)}
            base = next(r for r in rows + [row] if r["corpus"] == name
                        and r["runtime"] == "st-encode")
            row["speedup"] = round(row["docs_per_s"] / base["docs_per_s"], 2)
            rows.append(row)
            print(row, flush=True)
    quality_rows = [] if args.quick else quality_pass(work)
    write_report(Path(args.out), rows, quality_rows, machine_record(), texts, args.repeats)


def quality_pass(work: Path) -> list[dict]:
    """Every setting's vectors of all of bbc-news and of the stdlib-docs corpus, and the
    bench's figures on them."""
    out = []
    for name in ("bbc-news", "stdlib-docs"):
        _, labels = corpus(name, 0)
        for backend, quantize in [("st-encode", "none"), *SETTINGS]:
            vectors_file = work / f"quality-{name}-{backend}-{quantize}.npy"
            run_setting({"corpus": name, "texts": 0, "backend": backend,
                         "quantize": quantize, "workers": 1, "vectors": str(vectors_file)})
            row = {"corpus": name, "runtime": backend, "quantize": quantize,
                   **quality(np.load(vectors_file), labels)}
            out.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
            print(out[-1], flush=True)
    return out


def write_report(out: Path, rows: list[dict], quality_rows: list[dict], machine: str,
                 texts: int, repeats: int = 1) -> None:
    from indexer.bench.report import write_csv

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "embed_speed.csv", rows)
    lines = ["# Embedding throughput by runtime, quantization and workers", "",
             f"- {texts} texts per corpus: the bundled sample's docstring paragraphs (short) and "
             "bbc-news articles (long; cut at 256 tokens); all-MiniLM-L6-v2",
             "- every setting in a fresh process with all the cores (workers × threads = cores);"
             f" docs/s: the median of {repeats} runs over the texts after an untimed run over "
             "the same texts; "
             "peak RSS of the process and its workers",
             "- st-encode: sentence-transformers' own `encode`, torch fp32 (the reference); "
             "cosine: to its vectors; int8: NNCF static quantization with SmoothQuant, "
             "calibrated on 256 other sample texts; our batches: length-sorted, ≤ 64 texts and "
             "≤ 4 096 padded tokens; openvino runs in OpenVINO's default CPU "
             "precision (bf16 where the CPU has AVX512_BF16 or AMX, as here)",
             f"- machine: {machine}", "",
             "| corpus | runtime | quantize | workers × threads | docs/s | × st-encode | "
             "peak MiB | cosine mean | cosine p1 |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['runtime']} | {r['quantize']} | {r['workers']} × "
                     f"{r['threads_per_worker']} | {r['docs_per_s']:,.1f} | {r['speedup']:.2f} | "
                     f"{r['peak_mib']:,} | {r['cosine_mean']:.5f} | {r['cosine_p1']:.5f} |")
    if quality_rows:
        lines += ["", "## Retrieval quality with each setting's vectors", "",
                  "The bench's split and protocol on all of each corpus (bbc-news: 2 225 "
                  "articles, 5 topics; stdlib-docs: 3 190 paragraphs, 117 modules); codes: "
                  "ae:vanilla, 64 bits, seed 0. The int8 calibration texts are 256 of the "
                  "stdlib-docs paragraphs.", "",
                  "| corpus | runtime | quantize | P@100 exact float | P@100 ae:vanilla-64 | "
                  "R@10 ae:vanilla-64 |", "|---|---|---|---:|---:|---:|"]
        for r in quality_rows:
            lines.append(f"| {r['corpus']} | {r['runtime']} | {r['quantize']} | "
                         f"{r['P@100 float']:.4f} | "
                         f"{r['P@100 ae:vanilla-64']:.4f} | {r['R@10 ae:vanilla-64']:.4f} |")
    (out / "embed_speed.md").write_text("\n".join(lines) + "\n")
    plot(out / "embed_speed.png", rows)
    print("\n".join(lines))


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, name in zip(axes, ("stdlib-docs", "bbc-news")):
        mine = [r for r in rows if r["corpus"] == name]
        labels = [f"{r['runtime']}\n{r['quantize']} ×{r['workers']}" for r in mine]
        ax.bar(range(len(mine)), [r["docs_per_s"] for r in mine])
        ax.set_xticks(range(len(mine)), labels, fontsize=6)
        ax.set_title(name)
        ax.set_ylabel("docs/s")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
