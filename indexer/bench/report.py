"""The bench report: CSVs with every figure, a Markdown summary with the machine and command
line, and PNG plots (precision by bits, recall by documents touched)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

METRICS = ("precision@10", "precision@100", "map", "recall@10", "recall@100")


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


def build_rates(rows: list[dict], embed_rate: float | None) -> str:
    """'encode docs/s | build docs/s' of one method: the database encoded by the fitted
    method, and a build's rate modelled from the parts measured in this run (each document
    through the text model once, twice for a sequence variant, then the fit and the encode);
    '—' where a part was not measured."""
    if not all("encode_seconds" in r for r in rows):
        return "— | —"
    documents = rows[0]["documents"]
    encode = float(np.mean([r["encode_seconds"] for r in rows]))
    fit = float(np.mean([r["fit_seconds"] for r in rows]))
    encode_rate = f"{documents / max(encode, 1e-9):,.0f}"
    if not embed_rate:
        return f"{encode_rate} | —"
    seconds = documents * rows[0]["embed_passes"] / embed_rate + fit + encode
    return f"{encode_rate} | {documents / seconds:,.0f}"


def write_markdown(path, *, data, split, upper, summaries, engine_rows, failures, jobs=1,
                   embed_rate: float | None = None) -> None:
    from indexer.bench.measure import machine_record

    lines = [
        f"# hashindex bench: {data.name}",
        "",
        f"- data: {data.source}; {len(data.label_names)} labels",
        f"- split: {split.description}; every method is fitted on the database part only",
        f"- relevance: a retrieved document shares the query's label; mAP over the top "
        f"{split.map_depth}; recall@k against exact float cosine top-k on the same embeddings",
        "- engine: the hash table's Hamming ball grown until it holds the candidate budget, "
        "re-ranked by cosine to the float embeddings; touched = documents examined / database",
        ("- build docs/s: database documents ÷ (their embedding at the text model's rate "
         f"measured here, {embed_rate:,.0f} docs/s on the dataset's first texts, twice for a "
         "sequence variant, whose build embeds each text again for its tokens; + fit s + "
         "encode s), each part measured in this run"
         if embed_rate else "- build docs/s: needs a named text dataset (the text model's "
         "rate is measured on its texts)"),
        f"- machine: {machine_record()}"
        + (f"; {jobs} parallel single-threaded jobs (queries/s measured under that load)"
           if jobs > 1 else ""),
        "",
        "## Ranking by Hamming distance (mean ± std over seeds)",
        "",
        "| method | bits | " + " | ".join(METRICS) + " | fit s | encode docs/s | "
        "build docs/s |",
        "|---|---:|" + "---:|" * (len(METRICS) + 3),
        "| exact float cosine | — | " + " | ".join(f"{upper[m]:.3f}" for m in METRICS)
        + " | — | — | — |",
    ]
    for (method, bits), rows in grouped(summaries, ("method", "bits")).items():
        fit = np.mean([r["fit_seconds"] for r in rows]) if all(
            "fit_seconds" in r for r in rows) else float("nan")
        lines.append(f"| {method} | {bits} | "
                     + " | ".join(mean_std([r[m] for r in rows]) for m in METRICS)
                     + f" | {fit:.1f} | {build_rates(rows, embed_rate)} |")
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
    from hashindex.baselines import describe_method

    methods = list(dict.fromkeys(method for (method,) in grouped(summaries, ("method",))))
    lines += ["", "## The methods", ""] + [f"- `{m}`: {describe_method(m)}" for m in methods]
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
