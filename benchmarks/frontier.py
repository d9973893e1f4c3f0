"""The recall / speed / memory frontier, ann-benchmarks style: for every method and every
setting of its knob, recall@10 against the exact float top-10, single-thread queries per
second (one query at a time) and the RAM bytes per document a query keeps hot (memory-mapped
files counted at their size). Peers in the same run: exact float search, float HNSW, and the
sentence-transformers / Qdrant binary recipe (sign bits of the embedding, searched by FAISS
IndexBinaryFlat or IndexBinaryHNSW, the oversampled candidates rescored with float vectors);
ours: hashindex indexes (built on disk by the build pipeline) searched through the table and
through its FAISS binary backends, with their re-rank budgets. Writes
benchmarks/results/frontier/{results.csv, report.md, frontier.png}.

    python -m benchmarks.frontier [--dataset debian-packages] [--bits 64 128 256]
                                  [--variant deep --option hidden=512] [--queries 1000]
                                  [--out benchmarks/results/frontier] [--quick]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"  # one thread, every library, before any of them loads

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks import bits_argument  # noqa: E402
from hashindex.embedding.cache import default_cache_dir  # noqa: E402
from hashindex.engine import HashIndex  # noqa: E402
from hashindex.metrics import recall_at_k  # noqa: E402
from hashindex.models.config import variant_options  # noqa: E402
from hashindex.store.layout import MANIFEST_FILE, TABLE_DIR, VECTORS_DIR, bytes_in  # noqa: E402
from hashindex.training import TrainConfig  # noqa: E402
from indexer.bench.datasets import DATASETS, load_dataset  # noqa: E402
from indexer.bench.measure import machine_record  # noqa: E402
from indexer.bench.report import write_csv  # noqa: E402
from indexer.build import BuildConfig, build_index  # noqa: E402
from indexer.documents import ColumnOptions  # noqa: E402

K = 10
RESULTS = Path(__file__).resolve().parent / "results" / "frontier"
THRESHOLDS = (0.90, 0.95, 0.99)


class Method:
    """One method behind one interface (ann-benchmarks' fit / query): `settings` is the knob
    sweep, `prepare` applies one setting, `query` answers one query embedding."""

    family = ""

    def fit(self, database: np.ndarray) -> None:
        raise NotImplementedError

    def settings(self, quick: bool) -> list[dict]:
        return [{}]

    def prepare(self, setting: dict) -> None:
        pass

    def query(self, vector: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def bytes_per_document(self) -> float:
        raise NotImplementedError


class ExactFloat(Method):
    family = "exact float (IndexFlatIP)"

    def fit(self, database):
        self.index = faiss.IndexFlatIP(database.shape[1])
        self.index.add(database)
        self.n = len(database)

    def query(self, vector):
        return self.index.search(vector[None], K)[1][0]

    def bytes_per_document(self):
        return self.index.d * 4


class FloatHNSW(Method):
    family = "float HNSW (IndexHNSWFlat, M 32)"

    def fit(self, database):
        self.index = faiss.IndexHNSWFlat(database.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 200
        self.index.add(database)
        self.n = len(database)

    def settings(self, quick):
        return [{"ef_search": e} for e in ((16, 64) if quick else
                                           (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512))]

    def prepare(self, setting):
        self.index.hnsw.efSearch = setting["ef_search"]

    def query(self, vector):
        return self.index.search(vector[None], K)[1][0]

    def bytes_per_document(self):
        return len(faiss.serialize_index(self.index)) / self.n


class SignRescore(Method):
    """Sign bits of the embedding searched by a FAISS binary index; K × oversample candidates
    rescored with the float32 vectors (sentence-transformers' quantization recipe, Qdrant's
    oversampling and rescoring)."""

    def __init__(self, graph: bool):
        self.graph = graph
        self.family = ("sign bits + IndexBinaryHNSW" if graph else
                       "sign bits + IndexBinaryFlat") + ", float32 rescoring"

    def fit(self, database):
        self.vectors = database
        bits = database.shape[1] - database.shape[1] % 8
        self.bits = bits
        codes = np.packbits(database[:, :bits] > 0, axis=1)
        if self.graph:
            self.index = faiss.IndexBinaryHNSW(bits, 32)
            self.index.hnsw.efConstruction = 200
        else:
            self.index = faiss.IndexBinaryFlat(bits)
        self.index.add(codes)

    def settings(self, quick):
        return [{"oversample": o} for o in ((2, 8) if quick else (1, 2, 3, 4, 6, 8, 12, 16, 32))]

    def prepare(self, setting):
        self.candidates = K * setting["oversample"]
        if self.graph:
            self.index.hnsw.efSearch = max(2 * self.candidates, 32)

    def query(self, vector):
        code = np.packbits(vector[None, : self.bits] > 0, axis=1)
        rows = self.index.search(code, self.candidates)[1][0]
        rows = rows[rows >= 0]
        scores = self.vectors[rows] @ vector
        return rows[np.argsort(-scores)[:K]]

    def bytes_per_document(self):
        graph = (len(faiss.serialize_index_binary(self.index)) / len(self.vectors)
                 if self.graph else self.bits / 8)
        return graph + self.vectors.shape[1] * 4


def build_hashindex(database: np.ndarray, bits: int, work: Path, train: TrainConfig,
                    variant: str = "vanilla", options: list[str] = ()
                    ) -> tuple[HashIndex, float]:
    """An index built by the build pipeline from the database's embeddings (int8 vectors
    kept for re-ranking); the seconds it took (training included)."""
    source = work / "database.parquet"
    if not source.exists():
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(database.reshape(-1)),
                                                    database.shape[1])
        pq.write_table(pa.table({"id": [str(i) for i in range(len(database))], "vec": vectors}),
                       source)
    out = work / f"index-{bits}"
    seconds_file = work / f"index-{bits}.build-seconds"
    if (out / MANIFEST_FILE).exists():  # --work: an index of an earlier run, reused
        seconds = float(seconds_file.read_text()) if seconds_file.exists() else float("nan")
        return HashIndex.open(out), seconds
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # training may use every core; queries one
    started = time.perf_counter()
    build_index(BuildConfig(input=str(source), out=str(out),
                            columns=ColumnOptions(embedding_column="vec"), variant=variant,
                            variant_options=variant_options(variant, list(options)),
                            bits=bits, store_embeddings=True, overwrite=True,
                            show_progress=False), train_config=train)
    seconds = time.perf_counter() - started
    seconds_file.write_text(f"{seconds:.1f}\n")
    torch.set_num_threads(1)
    return HashIndex.open(out), seconds


class HashIndexMethod(Method):
    """A hashindex index searched through `backend` (the table, or a FAISS binary index over
    the same codes) with a re-rank budget: the candidates scored with the int8 vectors."""

    def __init__(self, index: HashIndex, backend: str):
        # "graph" walks by the codes and re-ranks; "graph-vectors" walks by the int8 vectors
        self.backend, _, self.walk = backend.partition("-")
        self.index, self.bits = index, index.bits
        knob = {"table": "", "ivf": " (nprobe)", "hnsw": " (ef_search)",
                "graph": " (ef_search)"}[self.backend]
        self.family = (f"hashindex {self.bits} bits, graph walked by int8 vectors (ef_search)"
                       if self.walk else
                       f"hashindex {self.bits} bits, {self.backend}{knob} + int8 re-rank")

    def fit(self, database):
        self.index.backend(self.backend)  # FAISS backends are built from the table's codes

    def settings(self, quick):
        if self.walk:  # the beam is ranked by the int8 scores already
            beams = (16, 32) if quick else (10, 12, 16, 20, 24, 32, 48, 64, 96, 128)
            return [{"ef_search": e, "walk": "vectors"} for e in beams]
        if self.backend == "graph":  # the walk's beam is the candidate list: re-rank all of it
            beams = (16, 64) if quick else (16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
            return [{"rerank": e, "ef_search": e, "walk": "codes"} for e in beams]
        budgets = (10, 50, 200) if quick else (10, 20, 40, 80, 160, 320, 640, 1280, 2560)
        knobs = {"table": [{}], "ivf": [{"nprobe": p} for p in (1, 4, 16)],
                 "hnsw": [{"ef_search": e} for e in (64, 256)]}[self.backend]
        if quick:
            knobs = knobs[:1]
        return [{"rerank": c, **knob} for knob in knobs for c in budgets]

    def prepare(self, setting):
        knobs = {k: v for k, v in setting.items() if k != "rerank"}
        if self.backend in ("hnsw", "graph") and "rerank" in setting:
            knobs["ef_search"] = max(knobs["ef_search"], setting["rerank"])
        self.request = self.index.request(K, backend=self.backend,
                                          rerank_candidates=setting.get("rerank"),
                                          backend_options=knobs)

    def query(self, vector):
        return self.index.top_rows(vector, self.request)[0]

    def bytes_per_document(self):
        files = self.index.manifest.files
        kept = bytes_in(files, VECTORS_DIR)
        if self.backend == "table":
            kept += bytes_in(files, TABLE_DIR)
        elif self.backend == "graph":
            kept += self.index.backend("graph").nbytes()
        else:
            kept += len(faiss.serialize_index_binary(self.index.backend(self.backend).index))
        return kept / len(self.index)


def measure(method: Method, setting: dict, queries: np.ndarray, truth: np.ndarray) -> dict:
    method.prepare(setting)
    method.query(queries[0])  # untimed: first-call compilation and caches
    found = np.empty((len(queries), K), dtype=np.int64)
    started = time.perf_counter()
    for i, vector in enumerate(queries):
        rows = method.query(vector)
        found[i, : len(rows)] = rows[:K]
        found[i, len(rows):] = -1
    seconds = time.perf_counter() - started
    recall = recall_at_k(found, truth, K)
    return {"method": method.family, "setting": " ".join(f"{k}={v}" for k, v in setting.items()),
            "recall@10": round(recall, 4), "qps": round(len(queries) / seconds, 1),
            "bytes_per_doc": round(method.bytes_per_document(), 1)}


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both recall and queries/s."""
    ordered = sorted(rows, key=lambda r: (-r["recall@10"], -r["qps"]))
    front, best_qps = [], -1.0
    for row in ordered:
        if row["qps"] > best_qps:
            front.append(row)
            best_qps = row["qps"]
    return front


def best_at(rows: list[dict], threshold: float) -> dict | None:
    reached = [r for r in rows if r["recall@10"] >= threshold]
    return max(reached, key=lambda r: r["qps"]) if reached else None


def write_report(out: Path, rows: list[dict], args, data, n_database: int,
                 build_seconds: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", rows)
    families = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"# Frontier: recall@10 against queries/s and bytes per document, {data.name}",
             "", f"- data: {data.source}; {n_database} database documents, {args.queries} "
             "queries (the bench's seeded split); truth: exact float inner-product top-10",
             "- one query at a time, one thread (every library pinned to 1 thread); "
             "queries/s over all queries of a setting, after one untimed query",
             "- bytes per document: what a query keeps hot (index files and re-rank vectors; "
             "memory-mapped files at their size)",
             f"- machine: {machine_record()}", "",
             "## Best queries/s at a recall@10 of at least", "",
             "| method | " + " | ".join(f"≥ {t:.2f}" for t in THRESHOLDS) + " | bytes/doc |",
             "|---|" + "---:|" * (len(THRESHOLDS) + 1)]
    for family in families:
        mine = [r for r in rows if r["method"] == family]
        cells = []
        for threshold in THRESHOLDS:
            best = best_at(mine, threshold)
            cells.append(f"{best['qps']:,.0f} ({best['setting'] or 'default'})" if best else "—")
        lines.append(f"| {family} | " + " | ".join(cells) + f" | {mine[0]['bytes_per_doc']:,.0f} |")
    lines += ["", "## Every setting (Pareto-optimal ones in bold)", "",
              "| method | setting | recall@10 | queries/s | bytes/doc |",
              "|---|---|---:|---:|---:|"]
    front = {id(r) for r in pareto(rows)}
    for row in rows:
        bold = "**" if id(row) in front else ""
        lines.append(f"| {row['method']} | {row['setting'] or 'default'} | "
                     f"{bold}{row['recall@10']:.4f}{bold} | {bold}{row['qps']:,.0f}{bold} | "
                     f"{row['bytes_per_doc']:,.0f} |")
    if build_seconds:
        lines += ["", "Build seconds of the hashindex indexes (embeddings given; training "
                  "included, every core): " + ", ".join(f"{k} {v:.0f} s" for k, v in
                                                       build_seconds.items() if v == v)]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot(out / "frontier.png", rows, families)
    print("\n".join(lines))


def plot(path: Path, rows: list[dict], families: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6))
    for family in families:
        front = pareto([r for r in rows if r["method"] == family])
        front.sort(key=lambda r: r["recall@10"])
        label = f"{family} ({front[0]['bytes_per_doc']:,.0f} B/doc)"
        style = "-" if family.startswith("hashindex") else "--"
        ax.plot([r["recall@10"] for r in front], [r["qps"] for r in front], style, marker=".",
                label=label, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 against exact float top-10")
    ax.set_ylabel("queries/s, one thread, one query at a time (log)")
    ax.axvline(0.95, color="grey", linewidth=0.5)
    ax.legend(fontsize=6)
    ax.grid(True, which="both", linewidth=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="debian-packages", choices=DATASETS)
    parser.add_argument("--size", type=int, default=20_000, help="synthetic dataset only")
    parser.add_argument("--bits", type=bits_argument, nargs="*", default=[64, 128, 256])
    parser.add_argument("--backends", nargs="+",
                        default=["table", "ivf", "hnsw", "graph", "graph-vectors"])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--variant", default="deep", help="the autoencoder of our indexes")
    parser.add_argument("--option", action="append", default=["hidden=512"],
                        help="the variant's options, KEY=VALUE (default hidden=512)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--quick", action="store_true", help="few settings, short training")
    parser.add_argument("--work", default=None, help="keep the built indexes here and reuse "
                        "them on the next run (default: a temporary folder)")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)
    data = load_dataset(args.dataset, default_cache_dir() / "bench", size=args.size)
    rng = np.random.default_rng(12345)  # the bench's split seed
    order = rng.permutation(len(data.embeddings))
    queries = np.ascontiguousarray(data.embeddings[order[: args.queries]])
    database = np.ascontiguousarray(data.embeddings[order[args.queries :]])
    truth = ExactFloat()
    truth.fit(database)
    _, true_top = truth.index.search(queries, K)
    train = TrainConfig(show_progress=False, **({"epochs": 3} if args.quick else {}))
    methods: list[Method] = [truth, FloatHNSW(), SignRescore(graph=False), SignRescore(graph=True)]
    rows, build_seconds = [], {}
    with tempfile.TemporaryDirectory(prefix="hashindex-frontier-") as scratch:
        work = args.work or scratch
        Path(work).mkdir(parents=True, exist_ok=True)
        for bits in args.bits:
            index, build_seconds[f"{bits} bits"] = build_hashindex(
                database, bits, Path(work), train, args.variant, args.option)
            methods += [HashIndexMethod(index, backend) for backend in args.backends]
        for method in methods:
            if method is not truth:
                method.fit(database)
            for setting in method.settings(args.quick):
                row = measure(method, setting, queries, true_top)
                rows.append(row)
                print(row, flush=True)
    write_report(Path(args.out), rows, args, data, len(database), build_seconds)


if __name__ == "__main__":
    main()
